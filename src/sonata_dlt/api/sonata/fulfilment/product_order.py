"""Tag ``productOrder``: list the orders to fulfil; accept, reject or cancel a whole order."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import runtime
from sonata_dlt.api.paging import list_response, raw_query, request_page
from sonata_dlt.api.responses import json_response
from sonata_dlt.api.sonata.fulfilment import body_datetime, seller
from sonata_dlt.sonata import auto_fulfilment
from sonata_dlt.sonata.ordering import seller as actions


def list_product_order(**params: Any) -> Any:
    party = seller()
    query = raw_query()
    page = request_page(params.get("offset"), params.get("limit"))
    items, total = auto_fulfilment.list_orders_for_seller(
        runtime(),
        party,
        state=query.get("state"),
        offset=page.offset,
        limit=page.limit,
        buyer_id=query.get("buyerId"),
        seller_id=query.get("sellerId"),
    )
    return list_response(items, total, page)


def accept_order(orderId: str, body: dict[str, Any] | None = None) -> Any:
    party = seller()
    dates = {
        entry["productOrderItemId"]: body_datetime("expectedCompletionDate", entry["expectedCompletionDate"])
        for entry in (body or {}).get("expectedCompletionDate", [])
    }
    return json_response(actions.accept_order(runtime(), party, orderId, dates or None))


def reject_order(orderId: str, body: dict[str, Any]) -> Any:
    party = seller()
    item_reasons = {entry["productOrderItemId"]: entry["reason"] for entry in body.get("itemReason", [])}
    return json_response(actions.reject_order(runtime(), party, orderId, body["reason"], item_reasons or None))


def seller_cancel_order(orderId: str, body: dict[str, Any]) -> Any:
    party = seller()
    return json_response(actions.seller_cancel_order(runtime(), party, orderId, body["reason"]))
