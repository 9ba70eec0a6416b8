"""Tag "checkpoint": read checkpoints and cut one on demand."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.verifiable_log.views import checkpoint_json
from sonata_dlt.verifiable_log import checkpoints
from sonata_dlt.verifiable_log.keyring import KEYRING


def list_checkpoint(
    buyerId: str | None = None,
    sellerId: str | None = None,
    endorsed: bool | None = None,
    offset: int | None = None,
    limit: int | None = None,
) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    page = request_page(offset, limit)
    found, total = checkpoints.page(rt.db, bilateral, offset=page.offset, limit=page.limit, endorsed=endorsed)
    return list_response([checkpoint_json(view) for view in found], total, page)


def create_checkpoint(buyerId: str | None = None, sellerId: str | None = None) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    view, created = checkpoints.cut_now(rt.db, rt.components[KEYRING], bilateral)
    return json_response(checkpoint_json(view), 201 if created else 200)


def retrieve_latest_checkpoint(
    buyerId: str | None = None,
    sellerId: str | None = None,
    endorsed: bool | None = None,
) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    return json_response(checkpoint_json(checkpoints.latest(rt.db, bilateral, endorsed=bool(endorsed))))


def retrieve_checkpoint(treeSize: int, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    return json_response(checkpoint_json(checkpoints.at_size(rt.db, bilateral, treeSize)))
