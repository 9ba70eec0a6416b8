"""64-bit amounts in minor units and cosignature timestamps

A wholesale bill passes 2**31 cents (21 million EUR): PostgreSQL refused such a bill with "integer out of range".
SQLite's INTEGER is 64-bit already; there the batch mode rebuilds the tables with the new declared type.
Cosignature timestamps are POSIX seconds, which leave 32 bits in 2038.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WIDENED = {
    "customer_bill": ("amount_due_minor", "remaining_minor"),
    "customer_bill_item": ("amount_minor", "tax_minor"),
    "dispute": ("held_minor",),
    "adjustment": ("amount_minor",),
    "checkpoint_signature": ("timestamp",),
}


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=old, type_=new, existing_nullable=False)


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())
