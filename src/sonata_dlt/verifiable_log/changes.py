"""Saving a recorded resource: bump its version, store its new document, append its leaf, in one transaction.

Every domain service changes resources through ``save`` (an existing row, through the ORM) or ``insert_new`` (a
new row, version 1, through one Core insert) so that no state change can skip the log. Always hand ``save`` a
*new* document object (``copy.deepcopy`` then edit): JSON columns are compared by identity for change tracking.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import Session

from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.storage.resources import ResourceColumns
from sonata_dlt.storage.types import utcnow
from sonata_dlt.transparency.canonical import canonical_json
from sonata_dlt.verifiable_log.recording import Change, insert_row_soon, record_change, record_changes

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
    )
    return row


def insert_new(
    session: Session,
    bilateral: BilateralRef,
    table: type[ResourceColumns],
    resource_id: str,
    document: Mapping[str, Any],
    columns: Mapping[str, Any],
    *,
    resource_type: str,
    event: str,
    actor: str,
    at: datetime,
) -> bytes:
    """Insert a new recorded resource (version 1) with one Core statement and record its creation; returns the
    document's canonical JSON.

    ``columns`` are the table's own filter columns. The document is serialised once, to RFC 8785 canonical JSON:
    those bytes are what the JSON column stores (a reader gets the same document back) and what the leaf's
    ``stateHash`` fingerprints. No ORM object is built: this runs on every create. In a group transaction the row
    goes in with the group's other new rows of its table, just before the commit (``insert_row_soon``).
    """
    text = canonical_json(document)
    names = ["id", "bilateral_id", "version", "document", "created_at", "updated_at", *columns]
    values = (resource_id, bilateral.id, 1, text.decode(), at, at, *columns.values())
    # sqlmodel's table classes do not declare __table__ to the type checker; SQLAlchemy sets it.
    insert_row_soon(session, table.__table__, names, values, json_text=("document",))  # type: ignore[attr-defined]
    record_changes(  # not record_change: no LogLeaf object to build and throw away
        session,
        bilateral.id,
        [Change(resource_type, resource_id, 1, event, document, canonical=text)],
        actor=actor,
        at=at,
    )
    return text
