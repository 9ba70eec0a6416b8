"""Ordering fixtures: a runtime-backed app, party objects for service calls, and order factories."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlmodel import func, select

from sonata_dlt.core.parties import Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import DEMO_BUYER_ID, DEMO_SELLER_ID, Role, Settings
from sonata_dlt.storage.hub import OutboxEvent
from sonata_dlt.storage.log import LogLeaf

BASE = "/mefApi/sonata/productOrderingManagement/v10"
BUYER = Party(DEMO_BUYER_ID, Role.BUYER)
SELLER = Party(DEMO_SELLER_ID, Role.SELLER)
CONTACT = {
    "emailAddress": "noc@buyer.example",
    "name": "Buyer NOC",
    "number": "+1 555 0100",
    "role": "productOrderContact",
}
CONFIGURATION = {"@type": "urn:test:product:v1", "bandwidth": 100}


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "externalId": "EXT-1",
        "projectId": "PRJ-1",
        "relatedContactInformation": [copy.deepcopy(CONTACT)],
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "requestedCompletionDate": "2099-01-01T00:00:00.000Z",
                "product": {"productConfiguration": copy.deepcopy(CONFIGURATION)},
            }
        ],
    }
    body.update(overrides)
    return body


def ordering_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mount only the Product Ordering spec: these tests need no other API, and loading every spec is slow."""
    from sonata_dlt.api import app

    monkeypatch.setattr(app, "MOUNTS", tuple(m for m in app.MOUNTS if m.package == "sonata.ordering"))


@pytest.fixture
def runtime_app(
    settings: Settings, make_runtime: Callable[[Settings], Runtime], monkeypatch: pytest.MonkeyPatch
) -> tuple[Runtime, Any]:
    from sonata_dlt.api.app import create_app

    ordering_only(monkeypatch)
    runtime = make_runtime(settings)
    return runtime, create_app(settings, runtime, run_workers=False)


@pytest.fixture
def runtime(runtime_app: tuple[Runtime, Any]) -> Runtime:
    return runtime_app[0]


@pytest.fixture
def client(runtime_app: tuple[Runtime, Any]) -> Iterator[Any]:
    with runtime_app[1].test_client() as test_client:
        yield test_client


@pytest.fixture
def make_order(client: Any, buyer_headers: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Factory: POST an order (``order_body`` with overrides) and return the 201 document."""

    def factory(**overrides: Any) -> dict[str, Any]:
        response = client.post(f"{BASE}/productOrder", json=order_body(**overrides), headers=buyer_headers)
        assert response.status_code == 201, response.text
        document: dict[str, Any] = response.json()
        return document

    return factory


@pytest.fixture
def leaves(runtime: Runtime) -> Callable[[], int]:
    def count() -> int:
        with runtime.db.read() as session:
            return int(session.exec(select(func.count()).select_from(LogLeaf)).one())

    return count


@pytest.fixture
def outbox(runtime: Runtime) -> Callable[[], list[OutboxEvent]]:
    def rows() -> list[OutboxEvent]:
        with runtime.db.read() as session:
            return list(session.exec(select(OutboxEvent).order_by(OutboxEvent.id)).all())  # type: ignore[arg-type]

    return rows


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # Most tests order a made-up product type; schema checks of real MEF types have their own test.
    return make_settings(accept_unknown_product_types=True)
