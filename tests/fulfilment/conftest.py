"""Fixtures for the seller's side: the full app on demo settings, a buyer order factory and API helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from inventory.factories import access_eline, add_item, order_create

from sonata_dlt.core.runtime import Runtime

ORDERING = "/mefApi/sonata/productOrderingManagement/v10"
FULFIL = "/mefApi/sonata/sellerFulfilment/v1"
INVENTORY = "/mefApi/sonata/productInventory/v7"


@pytest.fixture
def api(runtime: Runtime) -> Iterator[Any]:
    from sonata_dlt.api.app import create_app

    with create_app(runtime.settings, runtime, run_workers=False).test_client() as client:
        yield client


PlaceOrder = Callable[..., dict[str, Any]]


@pytest.fixture
def place_order(api: Any, buyer_headers: dict[str, str]) -> PlaceOrder:
    """place_order(*items) -> the ProductOrder the buyer created (default: one Access E-Line add item)."""

    def factory(*items: dict[str, Any]) -> dict[str, Any]:
        body = order_create(*(items or (add_item("1", access_eline()),)))
        response = api.post(f"{ORDERING}/productOrder", json=body, headers=buyer_headers)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return factory
