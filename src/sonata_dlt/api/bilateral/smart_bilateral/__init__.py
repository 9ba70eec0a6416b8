"""Handlers of the Smart Bilateral API (``openapi/smartBilateral.api.yaml``), one module per tag.

Streamed uploads (``/inventoryReport/upload``, ``/usageRecord/upload``) are ``async`` handlers that declare no
``body`` argument: connexion then never reads the body (it buffers only for a ``body`` parameter or ``**kwargs``,
and it has no validator for ``text/csv`` / ``application/x-ndjson``), so the handler copies the request stream to a
scratch file chunk by chunk (``receive_to_file``) and hands the file to the service in a worker thread. The auth
middleware's counting receive still enforces ``max_upload_bytes`` on the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from connexion import request

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import Page, request_page
from sonata_dlt.bilateral.reports.report_uploads import Upload
from sonata_dlt.core.parties import BilateralRef


def page(params: Mapping[str, Any]) -> Page:
    return request_page(params.get("offset"), params.get("limit"))


def bilateral(params: Mapping[str, Any]) -> BilateralRef:
    return runtime().parties.resolve(current_party(), params.get("buyerId"), params.get("sellerId"))


def scope(params: Mapping[str, Any]) -> dict[str, str | None]:
    return {"buyer_id": params.get("buyerId"), "seller_id": params.get("sellerId")}


def media_type() -> str:
    return str(request.headers.get("content-type") or "").split(";")[0].strip().lower()


async def receive_to_file(target: Path) -> Upload:
    """Copy the request body to ``target`` as it arrives, hashing it on the way (the report's content hash)."""
    digest = hashlib.sha256()
    async with await anyio.open_file(target, "wb") as handle:
        async for chunk in request.stream():
            if chunk:
                digest.update(chunk)
                await handle.write(chunk)
    return Upload(target, digest.hexdigest())
