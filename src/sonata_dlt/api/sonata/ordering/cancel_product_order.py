"""Tag ``cancelProductOrder``: the buyer's requests to cancel an order."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import list_response, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.sonata.ordering import tasks
from sonata_dlt.sonata.ordering.common import CANCEL


def list_cancel_product_order(**params: Any) -> Any:
    rt = runtime()
    page = request_page(params.get("offset"), params.get("limit"))
    filters = tasks.TaskFilter(
        product_order_id=params.get("productOrderId"),
        state=params.get("state"),
        cancellation_reason_type=params.get("cancellationReasonType"),
    )
    items, total = tasks.list_tasks(
        rt,
        current_party(),
        CANCEL,
        filters,
        offset=page.offset,
        limit=page.limit,
        buyer_id=params.get("buyerId"),
        seller_id=params.get("sellerId"),
    )
    return list_response(items, total, page)


def create_cancel_product_order(body: dict[str, Any], buyerId: str | None = None, sellerId: str | None = None) -> Any:
    created = tasks.create_cancellation(runtime(), current_party(), body, buyer_id=buyerId, seller_id=sellerId)
    return json_response(created, 201)


def retrieve_cancel_product_order(id: str, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    found = tasks.retrieve_task(runtime(), current_party(), CANCEL, id, buyer_id=buyerId, seller_id=sellerId)
    return json_response(found)
