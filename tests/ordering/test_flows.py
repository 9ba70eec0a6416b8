"""The state machines end to end: seller actions, cancellation, delivery-date changes, charges and timeouts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden
from sonata_dlt.sonata.ordering import charges, seller
from sonata_dlt.storage.types import utcnow

from .conftest import BASE, BUYER, CONTACT, SELLER

Order = dict[str, Any]
CHARGE_ITEM = {
    "id": "c1",
    "activityType": "new",
    "blocking": True,
    "price": {"dutyFreeAmount": {"unit": "EUR", "value": "120.50"}},
    "priceType": "nonRecurring",
    "priceCategory": "construction",
}


@pytest.fixture
def hub(client: Any, buyer_headers: dict[str, str]) -> str:
    response = client.post(f"{BASE}/hub", json={"callback": "https://buyer.example/listener"}, headers=buyer_headers)
    assert response.status_code == 201
    return str(response.json()["id"])


@pytest.fixture
def started(runtime: Runtime, make_order: Callable[..., Order]) -> Callable[..., Order]:
    """Factory: an order the seller accepted (inProgress), with two items unless told otherwise."""

    def factory(**overrides: Any) -> Order:
        items = [
            {"id": "1", "action": "add", "product": {"productConfiguration": {"@type": "urn:test:v1"}}},
            {
                "id": "2",
                "action": "add",
                "product": {"productConfiguration": {"@type": "urn:test:v1"}},
                "productOrderItemRelationship": [{"id": "1", "relationshipType": "reliesOn"}],
            },
        ]
        order = make_order(**{"productOrderItem": items, **overrides})
        return seller.accept_order(runtime, SELLER, order["id"])

    return factory


def get(client: Any, headers: dict[str, str], path: str) -> Order:
    response = client.get(f"{BASE}/{path}", headers=headers)
    assert response.status_code == 200, response.text
    document: Order = response.json()
    return document


def event_types(outbox: Callable[[], list[Any]]) -> list[str]:
    return [row.event_type for row in outbox()]


def test_accept_then_complete_every_item(
    client: Any,
    buyer_headers: dict[str, str],
    runtime: Runtime,
    make_order: Callable[..., Order],
    hub: str,
    leaves: Callable[[], int],
    outbox: Callable[[], list[Any]],
) -> None:
    order = make_order()
    before = leaves()
    accepted = seller.accept_order(runtime, SELLER, order["id"])
    assert accepted["state"] == "inProgress"
    item = accepted["productOrderItem"][0]
    assert item["state"] == "inProgress"
    assert item["expectedCompletionDate"] == "2099-01-01T00:00:00.000Z"  # the requested date
    assert leaves() == before + 1
    assert event_types(outbox) == ["productOrderStateChangeEvent", "productOrderItemStateChangeEvent"]
    assert all(row.stream_key == order["id"] for row in outbox())
    assert outbox()[1].payload["event"]["orderItemId"] == "1"

    seller.set_expected_completion_date(runtime, SELLER, order["id"], "1", utcnow() + timedelta(days=3), "parts late")
    seller.add_milestone(runtime, SELLER, order["id"], "1", "siteSurveyDone", "ok")
    seller.set_item_state(runtime, SELLER, order["id"], "1", "held", "waiting")
    seller.set_item_state(runtime, SELLER, order["id"], "1", "inProgress")
    done = seller.complete_item(runtime, SELLER, order["id"], "1")
    assert done["state"] == "completed"
    assert "completionDate" in done
    finished = done["productOrderItem"][0]
    assert finished["state"] == "completed" and "completionDate" in finished
    assert finished["product"]["href"].endswith(finished["product"]["id"])
    assert finished["milestone"][0]["name"] == "siteSurveyDone"
    assert get(client, buyer_headers, f"productOrder/{order['id']}") == done
    types = event_types(outbox)
    assert "productOrderItemExpectedCompletionDateSet" in types
    milestone = next(r for r in outbox() if r.event_type == "productSpecificProductOrderItemMilestoneEvent")
    assert milestone.payload["event"]["milestoneName"] == "siteSurveyDone"
    assert types[-1] == "productOrderStateChangeEvent"

    with pytest.raises(Conflict):
        seller.fail_item(runtime, SELLER, order["id"], "1", "too late")
    assert get(client, buyer_headers, f"productOrder/{order['id']}") == done


def test_partial_and_failed_endings(runtime: Runtime, started: Callable[..., Order]) -> None:
    order = started()
    seller.complete_item(runtime, SELLER, order["id"], "1")
    ended = seller.fail_item(runtime, SELLER, order["id"], "2", "no fibre")
    assert ended["state"] == "partial"
    other = started()
    seller.fail_item(runtime, SELLER, other["id"], "1", "no fibre")
    assert seller.fail_item(runtime, SELLER, other["id"], "2", "no fibre")["state"] == "failed"


def test_reject_order_marks_items(
    runtime: Runtime, make_order: Callable[..., Order], started: Callable[..., Order]
) -> None:
    order = make_order(
        productOrderItem=[
            {"id": "a", "action": "add", "product": {"productConfiguration": {"@type": "t"}}},
            {"id": "b", "action": "add", "product": {"productConfiguration": {"@type": "t"}}},
            {"id": "c", "action": "add", "product": {"productConfiguration": {"@type": "t"}}},
        ]
    )
    rejected = seller.reject_order(runtime, SELLER, order["id"], "bad site", {"a": "no site"}, validated=["b"])
    assert rejected["state"] == "rejected"
    assert [i["state"] for i in rejected["productOrderItem"]] == [
        "rejected",
        "rejected.validated",
        "rejected.unassessed",
    ]
    assert rejected["productOrderItem"][0]["terminationError"][0]["value"] == "no site"
    with pytest.raises(Conflict):
        seller.accept_order(runtime, SELLER, order["id"])
    with pytest.raises(Conflict):
        seller.reject_order(runtime, SELLER, started()["id"], "too late")


def test_forbidden_transitions_change_nothing(
    client: Any,
    buyer_headers: dict[str, str],
    runtime: Runtime,
    make_order: Callable[..., Order],
    leaves: Callable[[], int],
) -> None:
    order = make_order()
    before = leaves()
    for action in (
        lambda: seller.complete_item(runtime, SELLER, order["id"], "1"),
        lambda: seller.set_item_state(runtime, SELLER, order["id"], "1", "held"),
        lambda: seller.seller_cancel_order(runtime, SELLER, order["id"], "why"),
        lambda: seller.raise_charge(runtime, SELLER, order["id"], "1", [CHARGE_ITEM], utcnow() + timedelta(days=1)),
    ):
        with pytest.raises(Conflict):
            action()
    assert leaves() == before
    assert get(client, buyer_headers, f"productOrder/{order['id']}") == order
    with pytest.raises(Forbidden):
        seller.accept_order(runtime, BUYER, order["id"])


def test_cancellation_accepted(
    client: Any,
    buyer_headers: dict[str, str],
    runtime: Runtime,
    started: Callable[..., Order],
    hub: str,
    outbox: Callable[[], list[Any]],
) -> None:
    order = started()
    body = {
        "productOrder": {"productOrderId": order["id"]},
        "relatedContactInformation": [CONTACT],
        "cancellationReasonType": "commercial",
        "cancellationReason": "budget",
    }
    response = client.post(f"{BASE}/cancelProductOrder", json=body, headers=buyer_headers)
    assert response.status_code == 201, response.text
    cancel = response.json()
    assert cancel["state"] == "acknowledged"
    assessing = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert assessing["state"] == "assessingCancellation"
    assert {i["state"] for i in assessing["productOrderItem"]} == {"pending"}
    again = client.post(f"{BASE}/cancelProductOrder", json=body, headers=buyer_headers)
    assert again.status_code == 422

    seller.decide_cancellation(runtime, SELLER, cancel["id"], accept=True)
    cancelled = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert cancelled["state"] == "cancelled"
    assert [c["state"] for c in cancelled["stateChange"]][-2:] == ["pendingCancellation", "cancelled"]
    assert cancelled["cancellationReason"] == "budget"
    assert "cancellationDate" in cancelled
    assert all(i["state"] == "cancelled" and "expectedCompletionDate" not in i for i in cancelled["productOrderItem"])
    assert get(client, buyer_headers, f"cancelProductOrder/{cancel['id']}")["state"] == "done"
    assert "cancelProductOrderStateChangeEvent" in event_types(outbox)

    listed = client.get(
        f"{BASE}/cancelProductOrder",
        params={"productOrderId": order["id"], "state": "done", "cancellationReasonType": "commercial"},
        headers=buyer_headers,
    )
    assert [c["id"] for c in listed.json()] == [cancel["id"]]
    assert listed.headers["X-Total-Count"] == "1"
    none = client.get(
        f"{BASE}/cancelProductOrder", params={"cancellationReasonType": "technical"}, headers=buyer_headers
    )
    assert none.json() == []
    with pytest.raises(Conflict):
        seller.decide_cancellation(runtime, SELLER, cancel["id"], accept=False)


def test_cancellation_rejected_and_seller_cancel(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime, started: Callable[..., Order]
) -> None:
    order = started()
    body = {
        "productOrder": {"productOrderId": order["id"]},
        "relatedContactInformation": [CONTACT],
        "cancellationReasonType": "technical",
    }
    cancel = client.post(f"{BASE}/cancelProductOrder", json=body, headers=buyer_headers).json()
    denied = seller.decide_cancellation(runtime, SELLER, cancel["id"], accept=False, reason="already built")
    assert denied["state"] == "rejected"
    assert denied["cancellationDeniedReason"] == "already built"
    resumed = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert resumed["state"] == "inProgress"
    assert {i["state"] for i in resumed["productOrderItem"]} == {"inProgress"}

    ended = seller.seller_cancel_order(runtime, SELLER, order["id"], "site closed")
    assert ended["state"] == "cancelled"
    assert ended["cancellationReason"] == "site closed"


def test_delivery_date_change_accepted_and_rejected(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime, started: Callable[..., Order]
) -> None:
    order = started()
    body = {
        "productOrderItem": {"productOrderId": order["id"], "productOrderItemId": "1"},
        "requestedCompletionDate": "2030-05-01T00:00:00Z",
        "expediteIndicator": True,
    }
    response = client.post(f"{BASE}/modifyProductOrderItemRequestedDeliveryDate", json=body, headers=buyer_headers)
    assert response.status_code == 201, response.text
    change = response.json()
    assert change["state"] == "acknowledged" and "creationDate" in change
    pending = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert pending["state"] == "pending.assessingModification"
    assert pending["productOrderItem"][0]["state"] == "pending"

    seller.decide_delivery_date_change(runtime, SELLER, change["id"], accept=True)
    done = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert done["state"] == "inProgress"
    assert done["productOrderItem"][0]["requestedCompletionDate"] == "2030-05-01T00:00:00.000Z"
    assert done["productOrderItem"][0]["expediteAcceptedIndicator"] is True
    path = f"modifyProductOrderItemRequestedDeliveryDate/{change['id']}"
    assert get(client, buyer_headers, path)["state"] == "done"

    second = client.post(
        f"{BASE}/modifyProductOrderItemRequestedDeliveryDate",
        json={**body, "expediteIndicator": False},
        headers=buyer_headers,
    ).json()
    seller.decide_delivery_date_change(runtime, SELLER, second["id"], accept=False)
    assert get(client, buyer_headers, f"productOrder/{order['id']}")["productOrderItem"][0]["state"] == "inProgress"

    listed = client.get(
        f"{BASE}/modifyProductOrderItemRequestedDeliveryDate",
        params={"productOrderId": order["id"], "expediteIndicator": "true"},
        headers=buyer_headers,
    )
    assert [c["id"] for c in listed.json()] == [change["id"]]
    by_date = client.get(
        f"{BASE}/modifyProductOrderItemRequestedDeliveryDate",
        params={"requestedCompletionDate.gt": "2030-04-01T00:00:00Z", "state": "rejected"},
        headers=buyer_headers,
    )
    assert [c["id"] for c in by_date.json()] == [second["id"]]
    missing = client.post(
        f"{BASE}/modifyProductOrderItemRequestedDeliveryDate",
        json={
            "productOrderItem": {"productOrderId": order["id"], "productOrderItemId": "9"},
            "requestedCompletionDate": "2030-05-01T00:00:00Z",
        },
        headers=buyer_headers,
    )
    assert missing.status_code == 422
    assert missing.json()[0]["propertyPath"] == "/productOrderItem/productOrderItemId"


def test_item_charge_accepted_releases_the_hold(
    client: Any,
    buyer_headers: dict[str, str],
    seller_headers: dict[str, str],
    runtime: Runtime,
    started: Callable[..., Order],
    hub: str,
    outbox: Callable[[], list[Any]],
    leaves: Callable[[], int],
) -> None:
    order = started()
    charge = seller.raise_charge(runtime, SELLER, order["id"], "1", [CHARGE_ITEM], utcnow() + timedelta(days=2))
    assert charge["state"] == "awaitingResponse"
    assert charge["chargeItem"][0]["price"]["dutyFreeAmount"]["value"] == 120.5
    held = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert held["state"] == "held.assessingCharge"
    assert held["productOrderItem"][0]["state"] == "held"
    assert "chargeCreateEvent" in event_types(outbox)

    url = f"{BASE}/charge/{charge['id']}"
    answer = {"chargeItem": [{"id": "c1", "acceptanceIndicator": "accepted"}]}
    assert client.patch(url, json=answer, headers=seller_headers).status_code == 403
    before = leaves()
    response = client.patch(url, json=answer, headers=buyer_headers)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "completed"
    assert response.json()["chargeItem"][0]["state"] == "acceptedByBuyer"
    assert leaves() == before + 2  # the charge and the order
    resumed = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert resumed["state"] == "inProgress"
    assert resumed["productOrderItem"][0]["state"] == "inProgress"
    assert resumed["productOrderItem"][0]["charge"] == [{"id": charge["id"], "href": f"{BASE}/charge/{charge['id']}"}]
    assert client.patch(url, json=answer, headers=buyer_headers).status_code == 409

    listed = client.get(
        f"{BASE}/charge",
        params={"productOrderId": order["id"], "productOrderItemId": "1", "creationDate.gt": "2000-01-01T00:00:00Z"},
        headers=buyer_headers,
    )
    assert [c["id"] for c in listed.json()] == [charge["id"]]
    assert (
        client.get(
            f"{BASE}/charge", params={"responseDueDate.lt": "2000-01-01T00:00:00Z"}, headers=buyer_headers
        ).json()
        == []
    )
    assert get(client, buyer_headers, f"charge/{charge['id']}")["state"] == "completed"


def test_blocking_charge_declined_fails_the_item_and_related_items(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime, started: Callable[..., Order]
) -> None:
    order = started()
    charge = seller.raise_charge(runtime, SELLER, order["id"], "1", [CHARGE_ITEM], utcnow() + timedelta(days=2))
    response = client.patch(
        f"{BASE}/charge/{charge['id']}",
        json={"chargeItem": [{"id": "c1", "acceptanceIndicator": "rejected"}]},
        headers=buyer_headers,
    )
    assert response.status_code == 200
    ended = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert [i["state"] for i in ended["productOrderItem"]] == ["failed", "failed"]  # item 2 relies on item 1
    assert ended["state"] == "failed"
    assert [c["state"] for c in ended["stateChange"]][-2:] == ["inProgress", "failed"]


def test_charge_timeout_and_withdrawal(
    client: Any,
    buyer_headers: dict[str, str],
    runtime: Runtime,
    started: Callable[..., Order],
    hub: str,
    outbox: Callable[[], list[Any]],
) -> None:
    order = started()
    due = utcnow() + timedelta(hours=1)
    timed = seller.raise_charge(runtime, SELLER, order["id"], "1", [{**CHARGE_ITEM, "blocking": False}], due)
    assert charges.sweep_timeouts(runtime, now=due - timedelta(seconds=1)) == 0
    assert charges.sweep_timeouts(runtime, now=due + timedelta(seconds=1)) == 1
    after = get(client, buyer_headers, f"charge/{timed['id']}")
    assert after["state"] == "timeout"
    assert after["chargeItem"][0]["state"] == "declinedByBuyer"
    assert "chargeTimeoutEvent" in event_types(outbox)
    resumed = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert resumed["state"] == "inProgress"  # a non-blocking decline lets fulfilment go on
    assert charges.sweep_timeouts(runtime, now=due + timedelta(days=1)) == 0

    withdrawn = seller.raise_charge(runtime, SELLER, order["id"], "2", [CHARGE_ITEM], utcnow() + timedelta(days=1))
    seller.withdraw_charge(runtime, SELLER, withdrawn["id"])
    assert get(client, buyer_headers, f"charge/{withdrawn['id']}")["state"] == "withdrawnBySeller"
    again = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert again["state"] == "inProgress"
    assert again["productOrderItem"][1]["state"] == "inProgress"
    with pytest.raises(Conflict):
        seller.withdraw_charge(runtime, SELLER, withdrawn["id"])


def test_cancellation_charge(
    client: Any, buyer_headers: dict[str, str], runtime: Runtime, started: Callable[..., Order]
) -> None:
    order = started()
    body = {
        "productOrder": {"productOrderId": order["id"]},
        "relatedContactInformation": [CONTACT],
        "cancellationReasonType": "commercial",
    }
    cancel = client.post(f"{BASE}/cancelProductOrder", json=body, headers=buyer_headers).json()
    fee = {**CHARGE_ITEM, "priceCategory": "cancellation"}
    charge = seller.raise_charge(
        runtime, SELLER, order["id"], None, [fee], utcnow() + timedelta(days=1), cancel_product_order_id=cancel["id"]
    )
    assert charge["cancelProductOrder"]["id"] == cancel["id"]
    assert get(client, buyer_headers, f"cancelProductOrder/{cancel['id']}")["state"] == "inProgress.assessingCharge"
    with pytest.raises(Conflict):
        seller.decide_cancellation(runtime, SELLER, cancel["id"], accept=True)
    client.patch(
        f"{BASE}/charge/{charge['id']}",
        json={"chargeItem": [{"id": "c1", "acceptanceIndicator": "accepted"}]},
        headers=buyer_headers,
    )
    assert get(client, buyer_headers, f"cancelProductOrder/{cancel['id']}")["state"] == "done"
    cancelled = get(client, buyer_headers, f"productOrder/{order['id']}")
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancellationCharge"][0]["id"] == charge["id"]


def test_bad_charge_items_are_refused(runtime: Runtime, started: Callable[..., Order]) -> None:
    order = started()
    from sonata_dlt.errors import Unprocessable

    with pytest.raises(Unprocessable) as caught:
        seller.raise_charge(
            runtime,
            SELLER,
            order["id"],
            "1",
            [{**CHARGE_ITEM, "priceType": "x", "price": {"dutyFreeAmount": {"value": "0.1000000000000000000001"}}}],
            utcnow() + timedelta(days=1),
        )
    paths = {issue.property_path for issue in caught.value.issues}
    assert {"/chargeItem/0/priceType", "/chargeItem/0/price/dutyFreeAmount/value"} <= paths
