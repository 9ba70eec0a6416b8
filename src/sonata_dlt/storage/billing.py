"""Tables of billing and settlement: billing runs, bills and their items, disputes, adjustments, settlements.

Every table here holds a recorded resource (``ResourceColumns``: the served document plus its logged version);
the other columns are copies of document fields for filtering and for the rules that must not parse JSON
(overlap of billing periods, amounts held by open disputes, bills a settlement covers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field

from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import UtcDateTime


def minor_units(default: int | None = None) -> Any:
    """A column of an amount in minor units: 64-bit, as a wholesale bill passes 2**31 cents (21 million EUR)."""
    if default is None:
        return Field(sa_column=Column(BigInteger, nullable=False))
    return Field(default=default, sa_column=Column(BigInteger, nullable=False))


class BillingRun(ResourceColumns, table=True):
    """One rating of one bilateral for one half-open period ``[period_start, period_end)``."""

    __tablename__ = "billing_run"
    __table_args__ = (Index("ix_billing_run_period", "bilateral_id", "period_start", "period_end"),)

    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
    customer_bill_id: str = Field(max_length=64)


class CustomerBill(ResourceColumns, table=True):
    __tablename__ = "customer_bill"
    __table_args__ = (Index("ix_customer_bill_period", "bilateral_id", "period_start", "period_end"),)

    billing_run_id: str = Field(max_length=64, index=True)
    state: str = Field(max_length=32, index=True)
    category: str = Field(max_length=32)
    billing_account_id: str = Field(max_length=128, index=True)
    currency: str = Field(max_length=8)
    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
    amount_due_minor: int = minor_units()
    remaining_minor: int = minor_units()


class CustomerBillItem(ResourceColumns, table=True):
    __tablename__ = "customer_bill_item"

    customer_bill_id: str = Field(max_length=64, index=True)
    position: int  # order of the item in its bill, so the bill reads the same every time
    state: str = Field(max_length=32)
    product_id: str = Field(max_length=128)
    amount_minor: int = minor_units()  # tax excluded
    tax_minor: int = minor_units()


class Dispute(ResourceColumns, table=True):
    __tablename__ = "dispute"

    state: str = Field(max_length=32, index=True)
    target_type: str = Field(max_length=32)  # customerBill | customerBillItem | reconciliationRecord
    target_id: str = Field(max_length=256, index=True)  # a reconciliation serviceKey may be 256 long
    customer_bill_id: str | None = Field(default=None, max_length=64, index=True)  # the bill whose money it holds
    currency: str | None = Field(default=None, max_length=8)
    held_minor: int = minor_units(default=0)  # tax included amount kept out of netting while the dispute is open
    raised_by: str = Field(max_length=128)


class Adjustment(ResourceColumns, table=True):
    """A credit (negative) or debit (positive) note produced by a resolved dispute."""

    __tablename__ = "adjustment"

    dispute_id: str = Field(max_length=64, index=True)
    currency: str = Field(max_length=8)
    amount_minor: int = minor_units()  # tax excluded; the bill it lands on applies its taxes
    applied_bill_id: str | None = Field(default=None, max_length=64, index=True)


class Settlement(ResourceColumns, table=True):
    """A netting statement between two parties over their two (mirror) bilaterals.

    ``bilateral_id`` is the bilateral where ``party_a`` sells; the mirror bilateral's log records it too.
    """

    __tablename__ = "settlement"
    __table_args__ = (Index("ix_settlement_parties", "party_a", "party_b", "period_start", "period_end"),)

    party_a: str = Field(max_length=128)
    party_b: str = Field(max_length=128)
    mirror_bilateral_id: str | None = Field(default=None, max_length=64)
    state: str = Field(max_length=32)
    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
