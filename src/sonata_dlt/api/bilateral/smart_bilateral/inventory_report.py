"""Tag ``inventoryReport``: submit (JSON rows or a streamed CSV / NDJSON upload) and read inventory reports."""

from __future__ import annotations

from typing import Any

import anyio

from sonata_dlt.api.bilateral.smart_bilateral import bilateral, media_type, page, receive_to_file, scope
from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response, parse_datetime
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral.reports import inventory_reports, report_files


def create_inventory_report(body: dict[str, Any], **params: Any) -> Any:
    document = inventory_reports.submit_rows(
        runtime(),
        current_party(),
        bilateral(params),
        parse_datetime("periodStart", body["periodStart"]),
        parse_datetime("periodEnd", body["periodEnd"]),
        body["rows"],
    )
    return json_response(document, 201)


async def upload_inventory_report(
    periodStart: str, periodEnd: str, buyerId: str | None = None, sellerId: str | None = None
) -> Any:
    # No ``body`` parameter and no **kwargs: connexion must not buffer the upload (see the package docstring).
    rt, party = runtime(), current_party()
    start, end = parse_datetime("periodStart", periodStart), parse_datetime("periodEnd", periodEnd)
    ref = rt.parties.resolve(party, buyerId, sellerId)
    media = media_type()
    with report_files.scratch_file(rt.settings.data_dir, ".upload") as path:
        upload = await receive_to_file(path)
        document = await anyio.to_thread.run_sync(
            lambda: inventory_reports.submit_file(rt, party, ref, start, end, upload, media)
        )
    return json_response(document, 201)


def list_inventory_report(**params: Any) -> Any:
    paging = page(params)
    items, total = inventory_reports.list_reports(
        runtime(),
        current_party(),
        role=params.get("role"),
        offset=paging.offset,
        limit=paging.limit,
        buyer_id=params.get("buyerId"),
        seller_id=params.get("sellerId"),
    )
    return list_response(items, total, paging)


def retrieve_inventory_report(id: str, **params: Any) -> Any:
    return json_response(inventory_reports.retrieve(runtime(), current_party(), id, **scope(params)))
