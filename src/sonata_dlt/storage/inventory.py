"""Tables of the Product Inventory (MEF 116 v7): products, their configuration history and their search links.

- ``product``: the current Sonata ``MEFProduct`` document plus one indexed column per single-valued
  ``listProduct`` filter.
- ``product_link``: the multi-valued filters (``geographicalSiteId``, ``relatedProductId``, ``productOrderId``),
  one row per value, rewritten with the product.
- ``product_version``: every configuration a product has had, with its half-open validity period
  ``[valid_from, valid_to)`` (``valid_to`` NULL while current) and the order item that caused it. Billing
  prorates bandwidth changes from this history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import UtcDateTime


class Product(ResourceColumns, table=True):
    __tablename__ = "product"
    __table_args__ = (Index("ix_product_bilateral_created", "bilateral_id", "created_at", "id"),)

    status: str = Field(max_length=32, index=True)
    product_specification_id: str | None = Field(default=None, max_length=256, index=True)
    product_offering_id: str | None = Field(default=None, max_length=256, index=True)
    external_id: str | None = Field(default=None, max_length=256, index=True)
    billing_account_id: str | None = Field(default=None, max_length=256, index=True)
    start_date: datetime = Field(sa_type=UtcDateTime, index=True)
    last_update_date: datetime = Field(sa_type=UtcDateTime, index=True)
    termination_date: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ProductLink(SQLModel, table=True):
    """One value of a multi-valued ``listProduct`` filter of one product."""

    __tablename__ = "product_link"
    __table_args__ = (Index("ix_product_link_lookup", "bilateral_id", "kind", "value"),)

    product_id: str = Field(foreign_key="product.id", primary_key=True, max_length=64)
    kind: str = Field(primary_key=True, max_length=32)  # site | relatedProduct | productOrder
    value: str = Field(primary_key=True, max_length=256)
    bilateral_id: str = Field(foreign_key="bilateral.id", max_length=64)


class ProductVersion(SQLModel, table=True):
    """One configuration of a product and the period it was in force."""

    __tablename__ = "product_version"
    __table_args__ = (Index("ix_product_version_period", "bilateral_id", "valid_from", "valid_to"),)

    product_id: str = Field(foreign_key="product.id", primary_key=True, max_length=64)
    version: int = Field(primary_key=True)  # 1, 2, ... one per add / modify item that changed the product
    bilateral_id: str = Field(foreign_key="bilateral.id", index=True, max_length=64)
    resource_version: int  # the product row's (logged) version when this configuration took effect
    valid_from: datetime = Field(sa_type=UtcDateTime)
    valid_to: datetime | None = Field(default=None, sa_type=UtcDateTime)  # None while this is the current one
    product_order_id: str = Field(max_length=64)
    product_order_item_id: str = Field(max_length=128)
    action: str = Field(max_length=16)  # add | modify
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # the MEFProduct as it then was
