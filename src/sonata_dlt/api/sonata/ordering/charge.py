"""Tag ``charge``: the seller's charges and the buyer's answers."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.paging import datetime_filters, list_response, raw_query, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.sonata.ordering import charges


def list_charge(**params: Any) -> Any:
    rt = runtime()
    page = request_page(params.get("offset"), params.get("limit"))
    filters = charges.ChargeFilter(
        product_order_id=params.get("productOrderId"),
        product_order_item_id=params.get("productOrderItemId"),
        dates=datetime_filters(raw_query(), ("creationDate", "responseDueDate")),
    )
    items, total = charges.list_charges(
        rt,
        current_party(),
        filters,
        offset=page.offset,
        limit=page.limit,
        buyer_id=params.get("buyerId"),
        seller_id=params.get("sellerId"),
    )
    return list_response(items, total, page)


def retrieve_charge(id: str, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    return json_response(charges.retrieve_charge(runtime(), current_party(), id, buyer_id=buyerId, seller_id=sellerId))


def patch_charge(
    id: str,
    body: dict[str, Any],
    buyerId: str | None = None,
    sellerId: str | None = None,
) -> Any:
    answered = charges.respond(runtime(), current_party(), id, body, buyer_id=buyerId, seller_id=sellerId)
    return json_response(answered)
