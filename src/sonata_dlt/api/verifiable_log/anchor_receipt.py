"""Tag "anchorReceipt": ledger receipts of anchored checkpoints."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response, request_page
from sonata_dlt.api.verifiable_log.views import anchor_json
from sonata_dlt.verifiable_log import anchoring


def list_anchor_receipt(
    buyerId: str | None = None,
    sellerId: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    page = request_page(offset, limit)
    receipts, total = anchoring.receipts(rt.db, bilateral.id, offset=page.offset, limit=page.limit)
    return list_response([anchor_json(bilateral.origin, row, root) for row, root in receipts], total, page)
