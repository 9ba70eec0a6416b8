"""Builders for rating inputs, with hand-readable defaults (EUR, half-up, seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sonata_dlt.bilateral.rating.engine import Price, ProductVersion, TaxRule, Terms
from sonata_dlt.bilateral.rating.money import Rounding
from sonata_dlt.bilateral.rating.periods import Proration


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


MARCH = (utc(2025, 3, 1), utc(2025, 4, 1))


def make_terms(**overrides: Any) -> Terms:
    values: dict[str, Any] = {
        "agreement_id": "MSA-1",
        "agreement_version": 3,
        "currency": "EUR",
        "exponent": 2,
        "rounding": Rounding.HALF_UP,
        "proration": Proration.SECONDS,
        "prices": {
            ("accessEline", "100Mbps"): Price(Decimal("300.00"), Decimal("150.00")),
            ("accessEline", "1Gbps"): Price(Decimal("900.00"), Decimal("150.00")),
            ("uni", "10Gbps"): Price(Decimal("500.00")),
        },
        "taxes": (),
    }
    values.update(overrides)
    return Terms(**values)


VAT = TaxRule(category="country", description="VAT", rate=Decimal("20"))


def make_version(product_id: str = "P1", **overrides: Any) -> ProductVersion:
    values: dict[str, Any] = {
        "product_id": product_id,
        "version": 1,
        "product_type": "accessEline",
        "bandwidth": "100Mbps",
        "name": "Access E-Line",
        "start": utc(2025, 1, 1),
        "end": None,
        "order_id": f"PO-{product_id}",
        "order_item_id": "1",
    }
    values.update(overrides)
    return ProductVersion(**values)
