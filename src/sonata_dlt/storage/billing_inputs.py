"""Tables of the inputs to billing: agreement versions, inventory reports, reconciliations, usage.

Recorded resources (``ResourceColumns``: the served document plus its logged version) are the agreement versions,
inventory reports, reconciliations, usage batches and usage reconciliations. Bulk content never becomes one row
per record in a recorded table: a report's million rows and a reconciliation's results live in content-addressed
Parquet files under ``settings.data_dir`` and the recorded document carries their SHA-256. Usage records are plain
rows (``usage_record``) fingerprinted by the recorded batch that brought them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import UtcDateTime


class AgreementVersion(ResourceColumns, table=True):
    """One version of a bilateral's agreement (the MSA in code); ``document`` holds its terms and approvals."""

    __tablename__ = "agreement_version"
    __table_args__ = (
        UniqueConstraint("bilateral_id", "number", name="uq_agreement_version_number"),
        Index("ix_agreement_version_effective", "bilateral_id", "state", "effective_from"),
    )

    number: int  # 1, 2, ... per bilateral, in proposal order
    state: str = Field(max_length=16)  # proposed | approved | rejected
    effective_from: datetime = Field(sa_type=UtcDateTime)
    # Set when a later version takes effect; the version is in effect over [effective_from, effective_to).
    effective_to: datetime | None = Field(default=None, sa_type=UtcDateTime)


class InventoryReport(ResourceColumns, table=True):
    """A party's immutable list of the services active in the bilateral over ``[period_start, period_end)``."""

    __tablename__ = "inventory_report"
    __table_args__ = (Index("ix_inventory_report_period", "bilateral_id", "role", "period_start", "period_end"),)

    role: str = Field(max_length=16)  # buyer | seller: whose view of the inventory this is
    source: str = Field(max_length=32)  # upload | productInventory
    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
    content_hash: str = Field(max_length=64, index=True)
    row_count: int = Field(sa_column=Column(BigInteger, nullable=False))


class Reconciliation(ResourceColumns, table=True):
    """A buyer report matched against a seller report; results in Parquet, summary in ``document``."""

    __tablename__ = "reconciliation"

    buyer_report_id: str = Field(max_length=64, index=True)
    seller_report_id: str = Field(max_length=64, index=True)
    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
    results_hash: str = Field(max_length=64)


class UsageBatch(ResourceColumns, table=True):
    """One accepted submission of usage records; its document carries the hash of the records it added."""

    __tablename__ = "usage_batch"

    role: str = Field(max_length=16)


class UsageRecord(SQLModel, table=True):
    """One CDR / IPDR style measurement, as one party submitted it. Idempotent by (bilateral, role, record id)."""

    __tablename__ = "usage_record"
    __table_args__ = (Index("ix_usage_record_service", "bilateral_id", "role", "service_key", "start"),)

    bilateral_id: str = Field(foreign_key="bilateral.id", primary_key=True, max_length=64)
    role: str = Field(primary_key=True, max_length=16)  # buyer | seller: whose measurement
    record_id: str = Field(primary_key=True, max_length=128)
    service_key: str = Field(max_length=256)
    metric: str = Field(max_length=64)
    unit: str = Field(max_length=32)
    # Exact quantity in millionths of the unit: integer sums are exact on SQLite (whose NUMERIC is a float).
    quantity_micro: int = Field(sa_column=Column(BigInteger, nullable=False))
    start: datetime = Field(sa_type=UtcDateTime)
    end: datetime = Field(sa_type=UtcDateTime)
    record_hash: str = Field(max_length=64)  # SHA-256 of the record's canonical JSON: same id, other content -> 409
    batch_id: str = Field(max_length=64, index=True)


class UsageReconciliation(ResourceColumns, table=True):
    """Buyer and seller usage totals per service and metric over a period, compared within tolerance."""

    __tablename__ = "usage_reconciliation"

    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
