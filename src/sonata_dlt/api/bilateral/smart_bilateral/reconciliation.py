"""Tag ``reconciliation``: reconcile two inventory reports, read the summary, page through or export the results."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from sonata_dlt.api.bilateral.smart_bilateral import bilateral, page, scope
from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral.reconciliation import runs as reconciliation
from sonata_dlt.bilateral.reports import report_files


def create_reconciliation(body: dict[str, Any], **params: Any) -> Any:
    document = reconciliation.create(
        runtime(),
        current_party(),
        bilateral(params),
        buyer_report_id=body["buyerReportId"],
        seller_report_id=body.get("sellerReportId"),
        seller_source=body.get("sellerSource"),
    )
    return json_response(document, 201)


def list_reconciliation(**params: Any) -> Any:
    paging = page(params)
    items, total = reconciliation.list_reconciliations(
        runtime(),
        current_party(),
        offset=paging.offset,
        limit=paging.limit,
        buyer_id=params.get("buyerId"),
        seller_id=params.get("sellerId"),
    )
    return list_response(items, total, paging)


def retrieve_reconciliation(id: str, **params: Any) -> Any:
    return json_response(reconciliation.retrieve(runtime(), current_party(), id, **scope(params)))


def list_reconciliation_record(id: str, **params: Any) -> Any:
    paging = page(params)
    items, total = reconciliation.list_records(
        runtime(),
        current_party(),
        id,
        classification=params.get("classification"),
        service_key=params.get("serviceKey"),
        offset=paging.offset,
        limit=paging.limit,
        **scope(params),
    )
    return list_response(items, total, paging)


def export_reconciliation(id: str, **params: Any) -> Any:
    rt = runtime()
    # The file outlives this call: the response streams it, then the background task removes it.
    target = report_files.scratch_dir(rt.settings.data_dir) / f"export-{uuid.uuid4().hex}.csv"
    try:
        reconciliation.export_csv(
            rt, current_party(), id, target, classification=params.get("classification"), **scope(params)
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return FileResponse(
        target,
        media_type="text/csv; charset=utf-8",
        filename=f"reconciliation-{id}.csv",
        background=BackgroundTask(target.unlink, missing_ok=True),
    )
