"""Columns every recorded resource table shares.

A resource row keeps the exact Sonata document the API serves (``document``), so the state hash a verifier
recomputes from a GET response is the hash the log holds. Filter columns beside it are copies for indexing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from sonata_dlt.storage.types import UtcDateTime, utcnow


class ResourceColumns(SQLModel):
    """Mixin for tables of recorded resources (not a table itself)."""

    id: str = Field(primary_key=True, max_length=64)
    bilateral_id: str = Field(foreign_key="bilateral.id", index=True, max_length=64)
    version: int = 0  # bumped on every recorded change; the log leaf carries it
    document: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
