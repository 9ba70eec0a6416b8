"""Tag ``modifyProductOrderItemRequestedDeliveryDate``: the buyer's requests to move an item's delivery date."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import datetime_filters, list_response, raw_query, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.sonata.ordering import tasks
from sonata_dlt.sonata.ordering.common import MODIFY


def list_modify_product_order_item_requested_delivery_date(**params: Any) -> Any:
    rt = runtime()
    page = request_page(params.get("offset"), params.get("limit"))
    filters = tasks.TaskFilter(
        product_order_id=params.get("productOrderId"),
        state=params.get("state"),
        expedite_indicator=params.get("expediteIndicator"),
        dates=datetime_filters(raw_query(), ("requestedCompletionDate", "creationDate")),
    )
    items, total = tasks.list_tasks(
        rt,
        current_party(),
        MODIFY,
        filters,
        offset=page.offset,
        limit=page.limit,
        buyer_id=params.get("buyerId"),
        seller_id=params.get("sellerId"),
    )
    return list_response(items, total, page)


def create_modify_product_order_item_requested_delivery_date(
    body: dict[str, Any],
    buyerId: str | None = None,
    sellerId: str | None = None,
) -> Any:
    created = tasks.create_delivery_date_change(runtime(), current_party(), body, buyer_id=buyerId, seller_id=sellerId)
    return json_response(created, 201)


def retrieve_modify_product_order_item_requested_delivery_date(
    id: str,
    buyerId: str | None = None,
    sellerId: str | None = None,
) -> Any:
    found = tasks.retrieve_task(runtime(), current_party(), MODIFY, id, buyer_id=buyerId, seller_id=sellerId)
    return json_response(found)
