"""Tables of Product Ordering (MEF 123 v10): orders, cancellations, delivery-date changes and charges.

Each resource row keeps the exact Sonata document it serves (``ResourceColumns.document``); the other columns
are copies of document fields, kept only so list filters run in SQL. ``ProductOrderItemDates`` is such a copy
too: one row per order item, because the item date filters (``itemRequestedCompletionDate.gt`` ...) match an
order when *any* of its items falls in the range.

Buyer-supplied strings (external ids, item ids) have no length limit in the spec, so their columns have none.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import UtcDateTime


class ProductOrderRow(ResourceColumns, table=True):
    __tablename__ = "product_order"
    __table_args__ = (Index("ix_product_order_listing", "bilateral_id", "created_at"),)

    state: str = Field(max_length=32, index=True)
    external_id: str | None = Field(default=None, index=True)
    project_id: str | None = Field(default=None, index=True)
    order_date: datetime = Field(sa_type=UtcDateTime, index=True)
    completion_date: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cancellation_date: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ProductOrderItemDates(SQLModel, table=True):
    """Per-item dates of an order, rewritten whenever the order document changes (not a recorded resource)."""

    __tablename__ = "product_order_item_dates"

    order_id: str = Field(foreign_key="product_order.id", primary_key=True, max_length=64)
    item_id: str = Field(primary_key=True)
    requested_completion_date: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    expected_completion_date: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)


class CancelProductOrderRow(ResourceColumns, table=True):
    __tablename__ = "cancel_product_order"

    state: str = Field(max_length=32, index=True)
    product_order_id: str = Field(index=True, max_length=64)
    cancellation_reason_type: str | None = Field(default=None, max_length=32)


class ModifyDeliveryDateRow(ResourceColumns, table=True):
    __tablename__ = "modify_delivery_date"

    state: str = Field(max_length=32, index=True)
    product_order_id: str = Field(index=True, max_length=64)
    product_order_item_id: str
    expedite_indicator: bool = False
    requested_completion_date: datetime | None = Field(default=None, sa_type=UtcDateTime)
    creation_date: datetime = Field(sa_type=UtcDateTime)


class ProductOrderChargeRow(ResourceColumns, table=True):
    __tablename__ = "product_order_charge"
    __table_args__ = (Index("ix_product_order_charge_due", "state", "response_due_date"),)

    state: str = Field(max_length=32)
    product_order_id: str = Field(index=True, max_length=64)
    product_order_item_id: str | None = None
    cancel_product_order_id: str | None = Field(default=None, max_length=64)
    modify_request_id: str | None = Field(default=None, max_length=64)
    creation_date: datetime = Field(sa_type=UtcDateTime)
    response_due_date: datetime = Field(sa_type=UtcDateTime)
