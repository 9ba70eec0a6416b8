"""Tag ``events subscription``: the Product Ordering hub."""

from __future__ import annotations

from typing import Any

from sonata_dlt.api.context import current_party, runtime
from sonata_dlt.api.responses import json_response, no_content
from sonata_dlt.notify.outbox import PRODUCT_ORDERING
from sonata_dlt.sonata import hubs
from sonata_dlt.sonata.ordering.common import EVENT_TYPES


def register_listener(body: dict[str, Any], buyerId: str | None = None, sellerId: str | None = None) -> Any:
    created = hubs.register(
        runtime(),
        current_party(),
        body,
        api=PRODUCT_ORDERING,
        event_types=EVENT_TYPES,
        buyer_id=buyerId,
        seller_id=sellerId,
    )
    return json_response(created, 201)


def retrieve_hub(id: str, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    found = hubs.retrieve(runtime(), current_party(), id, api=PRODUCT_ORDERING, buyer_id=buyerId, seller_id=sellerId)
    return json_response(found)


def unregister_listener(id: str, buyerId: str | None = None, sellerId: str | None = None) -> Any:
    hubs.unregister(runtime(), current_party(), id, api=PRODUCT_ORDERING, buyer_id=buyerId, seller_id=sellerId)
    return no_content()
