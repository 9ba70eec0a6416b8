"""Fixtures for inventory tests: a runtime with two bilaterals (BUYER-1 and BUYER-2 with SELLER-1) and a factory
that completes order items straight through the inventory service, as Ordering's complete_item does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.sonata import inventory

BUYER_2_TOKEN = "second-buyer-token-0123456789"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        tokens=[{"token": BUYER_2_TOKEN, "party_id": "BUYER-2", "role": "buyer"}],
        bilaterals=[{"buyer_id": "BUYER-2", "seller_id": "SELLER-1"}],
    )


def bilateral_of(runtime: Runtime, buyer_id: str) -> BilateralRef:
    return next(ref for ref in runtime.parties.bilaterals if ref.buyer_id == buyer_id)


Complete = Callable[..., "str | None"]


@pytest.fixture
def complete(runtime: Runtime) -> Complete:
    """complete(order, item_index=0, *, at, product=None, buyer="BUYER-1") -> the product id."""

    def factory(
        order: dict[str, Any],
        item_index: int = 0,
        *,
        at: datetime,
        product: Mapping[str, Any] | None = None,
        buyer: str = "BUYER-1",
    ) -> str | None:
        with runtime.db.write() as session:
            return inventory.apply_completed_item(
                session,
                bilateral_of(runtime, buyer),
                order=order,
                item=order["productOrderItem"][item_index],
                product=product,
                actor="seller:SELLER-1",
                at=at,
            )

    return factory


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)
