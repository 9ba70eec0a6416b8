"""Writing notifications to the durable outbox, inside the transaction of the change they report.

A Sonata event body carries only ids; the listener fetches details with a GET. Delivery goes to
``callback + <notification API base path> + /listener/<eventType>`` (MEF 123 §6.15, EventSubscriptionInput).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from sonata_dlt import base_paths
from sonata_dlt.storage.hub import HubSubscription, OutboxEvent
from sonata_dlt.storage.types import rfc3339, utcnow


@dataclass(frozen=True)
class NotificationApi:
    """A hub-bearing Sonata API and the buyer-side listener API its events are delivered to."""

    name: str
    listener_base_path: str


PRODUCT_ORDERING = NotificationApi("productOrdering", base_paths.PRODUCT_ORDERING_NOTIFICATION)
CUSTOMER_BILL = NotificationApi("customerBill", base_paths.CUSTOMER_BILL_NOTIFICATION)


def listener_url(callback: str, api: NotificationApi, event_type: str) -> str:
    return f"{callback.rstrip('/')}{api.listener_base_path}/listener/{event_type}"


def enqueue(
    session: Session,
    *,
    bilateral_id: str,
    buyer_id: str,
    seller_id: str,
    api: NotificationApi,
    event_type: str,
    event: Mapping[str, Any],
    stream_key: str,
) -> int:
    """Queue ``event`` (the ``event`` member: id, href, ...) for every matching subscription. Returns the count."""
    subscriptions = session.exec(
        select(HubSubscription).where(HubSubscription.bilateral_id == bilateral_id, HubSubscription.api == api.name)
    ).all()
    queued = 0
    now = utcnow()
    for subscription in subscriptions:
        if subscription.event_types and event_type not in subscription.event_types:
            continue
        payload_event = dict(event)
        if subscription.echo_party_ids:
            payload_event.setdefault("buyerId", buyer_id)
            payload_event.setdefault("sellerId", seller_id)
        payload = {
            "eventId": str(uuid.uuid4()),
            "eventTime": rfc3339(now),
            "eventType": event_type,
            "event": payload_event,
        }
        session.add(
            OutboxEvent(
                subscription_id=subscription.id,
                stream_key=stream_key,
                url=listener_url(subscription.callback, api, event_type),
                event_type=event_type,
                payload=payload,
                created_at=now,
                next_attempt_at=now,
            )
        )
        queued += 1
    return queued
