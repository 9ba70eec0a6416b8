"""Hub subscriptions and the durable notification outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from sonata_dlt.storage.types import UtcDateTime, utcnow


class HubSubscription(SQLModel, table=True):
    __tablename__ = "hub_subscription"

    id: str = Field(primary_key=True, max_length=64)
    bilateral_id: str = Field(foreign_key="bilateral.id", index=True, max_length=64)
    api: str = Field(max_length=64)  # which Sonata API's hub: productOrdering | customerBill | ...
    callback: str = Field(max_length=2048)
    query: str | None = Field(default=None, max_length=2048)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # empty = all
    echo_party_ids: bool = False  # the registration carried buyerId/sellerId, so events echo them (MEF R6)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class OutboxEvent(SQLModel, table=True):
    """One notification to deliver to one listener URL; written in the transaction of the change it reports."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
        Index("ix_outbox_stream", "subscription_id", "stream_key", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(foreign_key="hub_subscription.id", max_length=64)
    stream_key: str = Field(max_length=256)  # delivery is in order per stream (one resource at one listener)
    url: str = Field(max_length=2600)
    event_type: str = Field(max_length=128)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    abandoned_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, max_length=1024)
