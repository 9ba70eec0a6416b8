"""Tag ``usage``: submit usage records (JSON array or streamed NDJSON), read batches, reconcile usage."""

from __future__ import annotations

from typing import Any

import anyio

from sonata_dlt.api.bilateral.smart_bilateral import bilateral, receive_to_file, scope
from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import parse_datetime
from sonata_dlt.api.responses import json_response
from sonata_dlt.bilateral import usage
from sonata_dlt.bilateral.reports import report_files


def create_usage_records(body: list[Any], **params: Any) -> Any:
    records = ((f"/{index}", record) for index, record in enumerate(body))
    document, created = usage.ingest(runtime(), current_party(), bilateral(params), records)
    return json_response(document, 201 if created else 200)


async def upload_usage_records(buyerId: str | None = None, sellerId: str | None = None) -> Any:
    # No ``body`` parameter and no **kwargs: connexion must not buffer the upload (see the package docstring).
    rt, party = runtime(), current_party()
    ref = rt.parties.resolve(party, buyerId, sellerId)
    with report_files.scratch_file(rt.settings.data_dir, ".ndjson") as path:
        await receive_to_file(path)

        def ingest() -> tuple[dict[str, Any], bool]:
            return usage.ingest(rt, party, ref, usage.json_lines(report_files.iter_lines(path)))

        document, created = await anyio.to_thread.run_sync(ingest)
    return json_response(document, 201 if created else 200)


def retrieve_usage_batch(id: str, **params: Any) -> Any:
    return json_response(usage.retrieve(runtime(), current_party(), "usageBatch", id, **scope(params)))


def create_usage_reconciliation(body: dict[str, Any], **params: Any) -> Any:
    document = usage.reconcile(
        runtime(),
        current_party(),
        bilateral(params),
        parse_datetime("periodStart", body["periodStart"]),
        parse_datetime("periodEnd", body["periodEnd"]),
    )
    return json_response(document, 201)


def retrieve_usage_reconciliation(id: str, **params: Any) -> Any:
    return json_response(usage.retrieve(runtime(), current_party(), "usageReconciliation", id, **scope(params)))
