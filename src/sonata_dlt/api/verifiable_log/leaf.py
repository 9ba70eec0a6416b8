"""Tag "leaf": the log's leaf records."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.verifiable_log.views import leaf_json
from sonata_dlt.verifiable_log import proofs as log_proofs


def list_leaf(
    buyerId: str | None = None,
    sellerId: str | None = None,
    resourceType: str | None = None,
    resourceId: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    page = request_page(offset, limit)
    with rt.db.read() as session:
        leaves, total = log_proofs.list_leaves(
            session,
            bilateral.id,
            offset=page.offset,
            limit=page.limit,
            resource_type=resourceType,
            resource_id=resourceId,
        )
    return list_response([leaf_json(leaf) for leaf in leaves], total, page)


def retrieve_leaf(leafIndex: int, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    rt = runtime()
    bilateral = rt.parties.resolve(current_party(), buyerId, sellerId)
    with rt.db.read() as session:
        return json_response(leaf_json(log_proofs.leaf_at(session, bilateral.id, leafIndex)))
