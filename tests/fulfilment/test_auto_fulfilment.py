"""The demo auto-fulfilment worker walks acknowledged orders to completion, one step per pass."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from inventory.factories import access_eline, add_item, operator_uni

from fulfilment.conftest import INVENTORY, ORDERING, PlaceOrder
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.sonata.auto_fulfilment import AUTO_MILESTONE, AutoFulfilment, auto_fulfilment_worker
from sonata_dlt.storage.types import utcnow


def test_worker_is_off_unless_configured(runtime: Runtime, make_settings: Callable[..., Settings]) -> None:
    assert auto_fulfilment_worker(runtime) is None
    runtime.settings = make_settings(fulfilment={"auto": True, "step_delay_seconds": 0})
    assert isinstance(auto_fulfilment_worker(runtime), AutoFulfilment)


def test_walks_an_order_step_by_step(
    api: Any, runtime: Runtime, place_order: PlaceOrder, buyer_headers: dict[str, str]
) -> None:
    ovc_item = add_item(
        "ovc", access_eline(), productOrderItemRelationship=[{"id": "uni", "relationshipType": "reliesOn"}]
    )
    order = place_order(add_item("uni", operator_uni()), ovc_item)
    worker = AutoFulfilment(runtime)
    runtime.settings.fulfilment.step_delay_seconds = 0

    def fetch() -> dict[str, Any]:
        document: dict[str, Any] = api.get(f"{ORDERING}/productOrder/{order['id']}", headers=buyer_headers).json()
        return document

    later = utcnow() + timedelta(seconds=1)
    assert worker.step(later) == 1
    assert fetch()["state"] == "inProgress"
    worker.step(later)
    uni = fetch()["productOrderItem"][0]
    assert uni["note"][-1]["source"] == "seller"
    worker.step(later)
    assert [m["name"] for m in fetch()["productOrderItem"][0]["milestone"]] == [AUTO_MILESTONE]
    worker.step(later)
    assert fetch()["productOrderItem"][0]["state"] == "completed"
    assert fetch()["state"] == "inProgress"
    for _ in range(3):
        assert worker.step(later) == 1
    finished = fetch()
    assert finished["state"] == "completed"
    assert worker.step(later) == 0  # nothing left to do
    ids = [item["product"]["id"] for item in finished["productOrderItem"]]
    ovc = api.get(f"{INVENTORY}/product/{ids[1]}", headers=buyer_headers).json()
    assert ovc["productConfiguration"] == access_eline()
    # The OVC relies on the UNI ordered beside it: the inventory links the two products.
    assert [(rel["id"], rel["relationshipType"]) for rel in ovc["productRelationship"]] == [(ids[0], "reliesOn")]


def test_respects_the_step_delay(
    api: Any, runtime: Runtime, place_order: PlaceOrder, buyer_headers: dict[str, str]
) -> None:
    order = place_order()
    runtime.settings.fulfilment.step_delay_seconds = 60
    worker = AutoFulfilment(runtime)
    assert worker.step(utcnow()) == 0  # the order changed less than a minute ago
    state = api.get(f"{ORDERING}/productOrder/{order['id']}", headers=buyer_headers).json()["state"]
    assert state == "acknowledged"
    assert worker.step(utcnow() + timedelta(minutes=2)) == 1
