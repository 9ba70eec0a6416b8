"""Saving a recorded resource: bump its version, store its new document, append its leaf, in one transaction.

Every domain service changes resources through ``save`` so that no state change can skip the log. Always hand it a
*new* document object (``copy.deepcopy`` then edit): JSON columns are compared by identity for change tracking.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import Session

from sonata_dlt.services.parties import BilateralRef
from sonata_dlt.services.recording import Change, record_change
from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import utcnow

Row = TypeVar("Row", bound=ResourceColumns)


def save(
    session: Session,
    bilateral: BilateralRef,
    row: Row,
    document: dict[str, Any],
    *,
    resource_type: str,
    event: str,
    actor: str,
    record: bool = True,
) -> Row:
    """Store ``document`` as the row's new state and record the change in the bilateral's log."""
    if row.bilateral_id != bilateral.id:
        raise ValueError(f"{resource_type} {row.id} belongs to another bilateral")
    row.version += 1
    row.document = document
    row.updated_at = utcnow()
    session.add(row)
    # Flush first so the resource row exists (and constraint errors surface) before the log moves.
    session.flush()
    record_change(
        session,
        bilateral.id,
        Change(resource_type, row.id, row.version, event, document),
        actor=actor,
        enabled=record,
    )
    return row
