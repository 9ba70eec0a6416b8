"""Tables of the verifiable log: bilaterals (with their log head), leaves and perfect-subtree hashes.

The log head (``size`` and the Merkle ``frontier``) lives on the bilateral row, so appending a leaf is one row
lock, one leaf insert, on average one node insert and one head update, all in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from sonata_dlt.storage.types import UtcDateTime, utcnow


class Bilateral(SQLModel, table=True):
    __tablename__ = "bilateral"
    __table_args__ = (UniqueConstraint("buyer_id", "seller_id", name="uq_bilateral_parties"),)

    id: str = Field(primary_key=True, max_length=64)
    buyer_id: str = Field(max_length=128, index=True)
    seller_id: str = Field(max_length=128, index=True)
    origin: str = Field(max_length=512, unique=True)  # the checkpoint origin line naming this log
    log_size: int = 0
    # The Merkle frontier: 32-byte hashes of the compact range [0, log_size), largest subtree first.
    frontier: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class LogLeaf(SQLModel, table=True):
    __tablename__ = "log_leaf"
    __table_args__ = (Index("ix_log_leaf_resource", "bilateral_id", "resource_type", "resource_id", "version"),)

    bilateral_id: str = Field(foreign_key="bilateral.id", primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)  # leaf index, gap-free per bilateral, in commit order
    resource_type: str = Field(max_length=64)
    resource_id: str = Field(max_length=128)
    version: int
    event: str = Field(max_length=64)
    record: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # RFC 8785 canonical JSON of the record
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    recorded_at: datetime = Field(sa_type=UtcDateTime)


class MerkleNode(SQLModel, table=True):
    """Hash of the perfect subtree (level >= 1, index) of a bilateral's log; level-0 hashes live on the leaves."""

    __tablename__ = "merkle_node"
    # Proofs read these rows only by primary key: clustering the table on it (SQLite's WITHOUT ROWID) makes each
    # read one B-tree descent instead of an index probe plus a table lookup. PostgreSQL ignores the option.
    __table_args__ = {"sqlite_with_rowid": False}

    bilateral_id: str = Field(foreign_key="bilateral.id", primary_key=True, max_length=64)
    level: int = Field(primary_key=True)
    index: int = Field(primary_key=True)
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
