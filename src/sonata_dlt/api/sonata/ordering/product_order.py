"""Tag ``productOrder``: create, list, retrieve and patch product orders."""

from __future__ import annotations

from typing import Any

from connexion.lifecycle import ConnexionResponse

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import datetime_filters, list_response, raw_query, request_page
from sonata_dlt.api.responses import JSON_UTF8, json_response
from sonata_dlt.sonata.ordering import orders

DATE_FILTERS = (
    "orderDate",
    "completionDate",
    "itemRequestedCompletionDate",
    "itemExpectedCompletionDate",
    "cancellationDate",
)


def list_product_order(**params: Any) -> Any:
    rt = runtime()
    query = raw_query()
    page = request_page(params.get("offset"), params.get("limit"))
    filters = orders.OrderFilter(
        state=query.get("state"),
        external_id=query.get("externalId"),
        project_id=query.get("projectId"),
        dates=datetime_filters(query, DATE_FILTERS),
    )
    items, total = orders.list_orders(
        rt,
        current_party(),
        filters,
        offset=page.offset,
        limit=page.limit,
        buyer_id=params.get("buyerId"),
        seller_id=params.get("sellerId"),
    )
    return list_response(items, total, page)


async def create_product_order(body: dict[str, Any], buyerId: str | None = None, sellerId: str | None = None) -> Any:
    # Async so the event loop awaits the group-commit writer directly instead of parking a pool thread per create.
    canonical = await orders.place_order(runtime(), current_party(), body, buyer_id=buyerId, seller_id=sellerId)
    return ConnexionResponse(status_code=201, body=canonical, content_type=JSON_UTF8)


def retrieve_product_order(id: str, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    return json_response(orders.retrieve_order(runtime(), current_party(), id, buyer_id=buyerId, seller_id=sellerId))


def patch_product_order(
    id: str,
    body: dict[str, Any],
    buyerId: str | None = None,
    sellerId: str | None = None,
) -> Any:
    order = orders.patch_order(runtime(), current_party(), id, body, buyer_id=buyerId, seller_id=sellerId)
    return json_response(order)
