"""Tag "Events Subscription": the bill hub, served by the generic hub service."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.responses import json_response, no_content
from sonata_dlt.notify.outbox import CUSTOMER_BILL
from sonata_dlt.sonata import hubs

EVENT_TYPES = ("customerBillCreateEvent", "customerBillStateChangeEvent")


def register_listener(body: dict[str, Any], buyerId: str | None = None, sellerId: str | None = None) -> Any:
    subscription = hubs.register(
        runtime(),
        current_party(),
        body,
        api=CUSTOMER_BILL,
        event_types=EVENT_TYPES,
        buyer_id=buyerId,
        seller_id=sellerId,
    )
    return json_response(subscription, 201)


def retrieve_hub(id: str, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    found = hubs.retrieve(runtime(), current_party(), id, api=CUSTOMER_BILL, buyer_id=buyerId, seller_id=sellerId)
    return json_response(found)


def unregister_listener(id: str, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    hubs.unregister(runtime(), current_party(), id, api=CUSTOMER_BILL, buyer_id=buyerId, seller_id=sellerId)
    return no_content()
