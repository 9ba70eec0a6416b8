"""Tables of checkpoints, their signatures, the parties' public keys and the ledger anchor receipts.

A checkpoint row holds the host-signed note exactly as it was signed; cosignatures live in their own rows and are
appended to the note when it is served, so the bytes a party cosigned are never rewritten. The anchoring queue
is the checkpoint row itself (``anchored`` plus the retry bookkeeping): a checkpoint without a receipt is pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from sonata_dlt.storage.types import UtcDateTime, utcnow


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoint"
    __table_args__ = (
        Index("ix_checkpoint_anchor_queue", "anchored", "next_anchor_at"),
        Index("ix_checkpoint_endorsed", "bilateral_id", "endorsed", "size"),
    )

    bilateral_id: str = Field(foreign_key="bilateral.id", primary_key=True, max_length=64)
    size: int = Field(primary_key=True)
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # body + blank line + host signature line
    host_key_vkey: str = Field(max_length=512)  # the host key that signed, so a later rotation keeps it checkable
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    endorsed: bool = False  # both parties cosigned with a key valid at the time
    anchored: bool = False
    anchor_attempts: int = 0
    next_anchor_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_anchor_error: str | None = Field(default=None, max_length=1024)


class CheckpointSignature(SQLModel, table=True):
    """A party's cosignature line over a checkpoint body (one per party per checkpoint)."""

    __tablename__ = "checkpoint_signature"

    bilateral_id: str = Field(primary_key=True, max_length=64)
    size: int = Field(primary_key=True)
    party_id: str = Field(primary_key=True, max_length=128)
    role: str = Field(max_length=16)  # buyer | seller
    party_key_id: int = Field(foreign_key="party_key.id")
    line: str = Field(sa_column=Column(Text, nullable=False))
    # The cosignature/v1 POSIX timestamp carried by the line; 64-bit, as 32-bit seconds end in 2038.
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PartyKey(SQLModel, table=True):
    """A party's Ed25519 public key with its note name and validity period ``[valid_from, valid_until)``."""

    __tablename__ = "party_key"
    __table_args__ = (UniqueConstraint("party_id", "key_name", "public_key", name="uq_party_key"),)

    id: int | None = Field(default=None, primary_key=True)
    party_id: str = Field(max_length=128, index=True)
    key_name: str = Field(max_length=256)
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    valid_from: datetime = Field(sa_type=UtcDateTime)
    valid_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AnchorReceiptRow(SQLModel, table=True):
    """The ledger's receipt for one checkpoint, as the backend serialised it."""

    __tablename__ = "anchor_receipt"

    bilateral_id: str = Field(primary_key=True, max_length=64)
    size: int = Field(primary_key=True)
    backend: str = Field(max_length=64)
    receipt: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    anchored_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
