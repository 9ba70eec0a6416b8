"""The Product Ordering hub and the generic hub service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import select

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import BadRequest
from sonata_dlt.sonata.hubs import parse_event_types
from sonata_dlt.sonata.ordering import seller
from sonata_dlt.sonata.ordering.common import EVENT_TYPES
from sonata_dlt.storage.hub import HubSubscription

from .conftest import BASE, SELLER


def test_parse_event_types() -> None:
    assert parse_event_types(None, EVENT_TYPES) == []
    assert parse_event_types(" ", EVENT_TYPES) == []
    assert parse_event_types("eventType = chargeCreateEvent, chargeTimeoutEvent", EVENT_TYPES) == [
        "chargeCreateEvent",
        "chargeTimeoutEvent",
    ]
    assert parse_event_types(
        "eventType=chargeCreateEvent&eventType=chargeCreateEvent&eventType=chargeTimeoutEvent", EVENT_TYPES
    ) == ["chargeCreateEvent", "chargeTimeoutEvent"]
    for bad in ("eventType=nope", "state=done", "chargeCreateEvent"):
        with pytest.raises(BadRequest):
            parse_event_types(bad, EVENT_TYPES)


def test_register_retrieve_unregister(
    client: Any, buyer_headers: dict[str, str], seller_headers: dict[str, str]
) -> None:
    body = {"callback": "https://buyer.example/cb", "query": "eventType=productOrderStateChangeEvent"}
    response = client.post(f"{BASE}/hub", json=body, headers=buyer_headers)
    assert response.status_code == 201
    hub = response.json()
    assert hub == {"id": hub["id"], **body}
    assert client.get(f"{BASE}/hub/{hub['id']}", headers=buyer_headers).json() == hub
    assert client.post(f"{BASE}/hub", json=body, headers=seller_headers).status_code == 403
    assert client.delete(f"{BASE}/hub/{hub['id']}", headers=buyer_headers).status_code == 204
    assert client.get(f"{BASE}/hub/{hub['id']}", headers=buyer_headers).status_code == 404
    assert client.delete(f"{BASE}/hub/{hub['id']}", headers=buyer_headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"callback": "ftp://buyer.example/cb"}, "callback"),
        ({"callback": "not a url"}, "callback"),
        ({"callback": "https://buyer.example", "query": "eventType=bogus"}, "query"),
    ],
)
def test_register_refuses_bad_input(
    client: Any, buyer_headers: dict[str, str], body: dict[str, str], field: str, runtime: Runtime
) -> None:
    # registerListener documents no 422, so an unusable registration is a 400 invalidBody naming the field.
    response = client.post(f"{BASE}/hub", json=body, headers=buyer_headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalidBody"
    # The service or the schema (query has a pattern) refuses it; either way the reason starts with the field.
    assert response.json()["reason"].startswith(field)
    with runtime.db.read() as session:
        assert session.exec(select(HubSubscription)).all() == []


def test_events_follow_the_filter_and_echo_party_ids(
    client: Any,
    buyer_headers: dict[str, str],
    runtime: Runtime,
    make_order: Callable[..., dict[str, Any]],
    outbox: Callable[[], list[Any]],
) -> None:
    client.post(
        f"{BASE}/hub",
        json={"callback": "https://a.example", "query": "eventType=productOrderStateChangeEvent"},
        headers=buyer_headers,
    )
    client.post(
        f"{BASE}/hub", params={"sellerId": "SELLER-1"}, json={"callback": "https://b.example/"}, headers=buyer_headers
    )
    order = make_order()
    seller.accept_order(runtime, SELLER, order["id"])
    rows = outbox()
    to_a = [row for row in rows if row.url.startswith("https://a.example")]
    to_b = [row for row in rows if row.url.startswith("https://b.example")]
    assert [row.event_type for row in to_a] == ["productOrderStateChangeEvent"]
    assert to_a[0].url == (
        "https://a.example/mefApi/sonata/productOrderingNotification/v10/listener/productOrderStateChangeEvent"
    )
    assert "buyerId" not in to_a[0].payload["event"]
    assert len(to_b) == 2
    assert to_b[0].payload["event"]["buyerId"] == "BUYER-1"
    assert to_b[0].payload["event"]["sellerId"] == "SELLER-1"
