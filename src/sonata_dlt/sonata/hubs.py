"""Hub subscriptions (TMF630 style ``/hub``), the same for every Sonata API that has one.

The caller passes the API (``notify.outbox.PRODUCT_ORDERING``, ``CUSTOMER_BILL``...) and the event types its
listener API defines, so Ordering and Billing share this module. A subscription belongs to one bilateral and is
found only from it (404 otherwise). ``query`` selects event types: ``eventType=a,b``, the repeated
``eventType=a&eventType=b`` form, spaces tolerated; empty means all. We remember whether ``buyerId`` / ``sellerId``
were sent so that events echo them (MEF R6).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select

from sonata_dlt.core.parties import Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import BadRequest, Forbidden, NotFound
from sonata_dlt.notify.delivery import forget_subscription
from sonata_dlt.notify.outbox import NotificationApi
from sonata_dlt.settings import Role
from sonata_dlt.storage.hub import HubSubscription


def parse_event_types(query: str | None, allowed: Collection[str]) -> list[str]:
    """The event types a ``query`` names (empty = all), or 400 invalidBody.

    registerListener documents no 422 in MEF's specs (201, 400, 401, 403, 500, 501), so an unusable registration is
    an invalid body."""
    if query is None or not query.strip():
        return []
    wanted: list[str] = []
    for clause in query.replace("&", ";").split(";"):
        if not clause.strip():
            continue
        name, sep, values = clause.partition("=")
        if not sep or name.strip() != "eventType":
            raise BadRequest("query must be eventType=<type>[,<type>...]", code="invalidBody")
        for value in values.split(","):
            event_type = value.strip()
            if event_type not in allowed:
                raise BadRequest(f"query names an unknown event type {event_type!r}", code="invalidBody")
            if event_type not in wanted:
                wanted.append(event_type)
    return wanted


def _check_callback(callback: str) -> None:
    parts = urlsplit(callback.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest("callback must be an absolute http(s) URL", code="invalidBody")


def _document(row: HubSubscription) -> dict[str, Any]:
    document: dict[str, Any] = {"id": row.id, "callback": row.callback}
    if row.query is not None:
        document["query"] = row.query
    return document


def register(
    runtime: Runtime,
    party: Party,
    body: dict[str, Any],
    *,
    api: NotificationApi,
    event_types: Collection[str],
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> dict[str, Any]:
    bilateral = runtime.parties.resolve(party, buyer_id, seller_id)
    if party.role is not Role.BUYER:
        raise Forbidden("notifications are for the buyer: only the buyer registers a listener", code="accessDenied")
    callback = str(body["callback"])
    _check_callback(callback)
    query = body.get("query")
    wanted = parse_event_types(query, event_types)
    row = HubSubscription(
        id=str(uuid.uuid4()),
        bilateral_id=bilateral.id,
        api=api.name,
        callback=callback.strip(),
        query=query,
        event_types=wanted,
        echo_party_ids=buyer_id is not None or seller_id is not None,
    )
    with runtime.db.write() as session:
        session.add(row)
    return _document(row)


def _find(runtime: Runtime, party: Party, hub_id: str, api: NotificationApi, scope: list[str]) -> HubSubscription:
    with runtime.db.read() as session:
        row = session.exec(
            select(HubSubscription).where(
                HubSubscription.id == hub_id,
                HubSubscription.api == api.name,
                col(HubSubscription.bilateral_id).in_(scope),
            )
        ).one_or_none()
    if row is None:
        raise NotFound(f"hub subscription {hub_id} not found")
    return row


def retrieve(
    runtime: Runtime,
    party: Party,
    hub_id: str,
    *,
    api: NotificationApi,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> dict[str, Any]:
    scope = [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]
    return _document(_find(runtime, party, hub_id, api, scope))


def unregister(
    runtime: Runtime,
    party: Party,
    hub_id: str,
    *,
    api: NotificationApi,
    buyer_id: str | None = None,
    seller_id: str | None = None,
) -> None:
    scope = [ref.id for ref in runtime.parties.scope(party, buyer_id, seller_id)]
    with runtime.db.write() as session:
        row = session.exec(
            select(HubSubscription)
            .where(
                HubSubscription.id == hub_id,
                HubSubscription.api == api.name,
                col(HubSubscription.bilateral_id).in_(scope),
            )
            .with_for_update()  # the row is deleted: a full row lock, not NO KEY UPDATE
        ).one_or_none()
        if row is None:
            raise NotFound(f"hub subscription {hub_id} not found")
        forget_subscription(session, row.id)  # queued rows reference the subscription
        session.delete(row)
