"""The one path by which a state change reaches a bilateral's log.

``record_change`` runs inside the caller's write transaction, so the change and its leaf commit together or not
at all: a crash between them is impossible by construction. It locks the bilateral's log head (a row lock on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so sequence numbers are unique and gap-free
in commit order even with several server processes.

A leaf is the RFC 8785 canonical JSON of
``{seq, resourceType, resourceId, version, event, stateHash, actor, at}`` where ``stateHash`` is the hex SHA-256
of the resource's canonical document after the change. The log holds fingerprints; the tables hold the data.

``record_changes`` appends a batch (a billing run's hundreds of thousands of items) under one lock and one frontier
walk, inserting leaves and nodes with one ``executemany`` each; ``record_change`` is that with a batch of one, so
the log cannot tell a batch from single changes.

In a group transaction (``storage.group_commit``: concurrent creates sharing one commit) the head is locked and
read at the group's first change, and the leaves, completed subtrees and new head of all its jobs are written once,
just before the commit (``deferred_writes``): still the same transaction as the changes, so nothing about what is
stored, or when it becomes visible, differs from one transaction per change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import LargeBinary
from sqlmodel import Session

from sonata_dlt.errors import NotFound
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.group_commit import deferred_writes
from sonata_dlt.storage.log import Bilateral, LogLeaf, MerkleNode
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.transparency.canonical import canonical_json, state_hash
from sonata_dlt.transparency.merkle import append_leaf, leaf_hash

HASH_SIZE = 32


@dataclass(frozen=True)
class Change:
    """A resource after a change: what the log fingerprints."""

    resource_type: str  # productOrder | cancelProductOrder | charge | product | customerBill | agreement | ...
    resource_id: str
    version: int
    event: str  # created | stateChanged | updated | ... (free vocabulary per resource type)
    document: Mapping[str, Any]
    # The document's canonical JSON when the caller already has it (it stores those bytes): hashed as is, so a
    # large batch is serialised once. Must equal canonical_json(document).
    canonical: bytes | None = field(default=None, compare=False, repr=False)


def leaf_record(seq: int, change: Change, actor: str, at: datetime) -> dict[str, Any]:
    return _leaf_record(seq, change, actor, rfc3339(at))


def _leaf_record(seq: int, change: Change, actor: str, at: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "resourceType": change.resource_type,
        "resourceId": change.resource_id,
        "version": change.version,
        "event": change.event,
        "stateHash": (
            sha256(change.canonical).hexdigest() if change.canonical is not None else state_hash(change.document).hex()
        ),
        "actor": actor,
        "at": at,
    }


def _utf8_or_canonical(text: str, seq: int, change: Change, actor: str, at: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return canonical_json(_leaf_record(seq, change, actor, at))  # raises the canonical writer's ValueError


def split_frontier(packed: bytes) -> list[bytes]:
    return [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)]


@dataclass(frozen=True)
class LogHead:
    """A bilateral's log head as read under its lock: where the next leaf goes and the Merkle frontier."""

    bilateral_id: str
    origin: str
    log_size: int
    frontier: bytes


def lock_log_head(session: Session, bilateral_id: str) -> LogHead:
    """Read the log head and lock it until the caller's transaction ends (a NO KEY UPDATE row lock on PostgreSQL;
    SQLite's ``BEGIN IMMEDIATE`` already holds the database). Plain Core statements: this runs on every change.

    In a group transaction, leaves this session appended but has not written yet are written first, so the head
    read here is always the true one."""
    deferred = deferred_writes(session)
    if deferred is not None:
        deferred.flush_key(_pending_key(bilateral_id), session)
    return _read_head(session, bilateral_id)


def _read_head(session: Session, bilateral_id: str) -> LogHead:
    connection = session.connection()
    statement = _HEAD_READ_POSTGRESQL if connection.dialect.name == "postgresql" else _HEAD_READ
    row = connection.exec_driver_sql(statement, (bilateral_id,)).one_or_none()
    if row is None:
        raise NotFound(f"bilateral {bilateral_id} does not exist")
    return LogHead(bilateral_id, row[0], int(row[1]), bytes(row[2]))


def _move_log_head(session: Session, bilateral_id: str, size: int, frontier: bytes) -> None:
    connection = session.connection()
    statement = _HEAD_MOVE_POSTGRESQL if connection.dialect.name == "postgresql" else _HEAD_MOVE
    connection.exec_driver_sql(statement, (size, frontier, bilateral_id))


# The log head's two statements, as plain SQL: run once per transaction that records, where building and
# compiling the equivalent Core statements cost more than executing them. Constants only; values are bound.
_BILATERAL = Bilateral.__tablename__
_HEAD_READ = f"SELECT origin, log_size, frontier FROM {_BILATERAL} WHERE id = ?"  # noqa: S608
# NO KEY UPDATE, not FOR UPDATE: see storage/db.py (rows referencing the bilateral hold KEY SHARE on it).
_HEAD_READ_POSTGRESQL = _HEAD_READ.replace("?", "%s") + " FOR NO KEY UPDATE"
_HEAD_MOVE = f"UPDATE {_BILATERAL} SET log_size = ?, frontier = ? WHERE id = ?"  # noqa: S608
_HEAD_MOVE_POSTGRESQL = _HEAD_MOVE.replace("?", "%s")

# Set in a database's session info when its settings say ``record_log = false``: only so ``bench/`` can measure what
# recording costs. One switch for the whole process, so no service passes a flag along.
_RECORDING_OFF = "sonata_dlt.recording_off"


def switch_recording_off(db: Database) -> None:
    """No state change written through ``db`` reaches a log any more (benchmarks only, never in production)."""
    db.session_info[_RECORDING_OFF] = True


def recording_on(session: Session) -> bool:
    return not session.info.get(_RECORDING_OFF, False)


def record_change(
    session: Session, bilateral_id: str, change: Change, *, actor: str, at: datetime | None = None
) -> LogLeaf | None:
    """Append one leaf for ``change`` to the bilateral's log, in the caller's transaction.

    Nothing is appended on a database whose recording was switched off (``switch_recording_off``). The returned
    leaf carries the stored values (it is not attached
    to the session: the row went in through ``record_changes``' bulk insert).
    """
    rows = _append(session, bilateral_id, [change], actor=actor, at=at)
    return LogLeaf(**rows[0]) if rows else None


def record_changes(
    session: Session,
    bilateral_id: str,
    changes: Sequence[Change],
    *,
    actor: str,
    at: datetime | None = None,
) -> range:
    """Append one leaf per change, in order, under a single lock of the bilateral's log head; the sequence numbers
    they got. Leaves and nodes go in with one ``executemany`` each (no ORM object per leaf: a billing run appends
    hundreds of thousands)."""
    rows = _append(session, bilateral_id, changes, actor=actor, at=at)
    return range(rows[0]["seq"], rows[-1]["seq"] + 1) if rows else range(0)


class _PendingLog:
    """A bilateral's log head, locked, with the leaves and nodes appended to it that are not written yet.

    Outside a group transaction one lives for one ``_append`` and is written at its end; inside one (see
    ``storage.group_commit.deferred_writes``) it lives until the group commits: every job's leaves then go in with one
    ``executemany``, the completed subtrees with another, and the head is updated once."""

    def __init__(self, session: Session, bilateral_id: str) -> None:
        head = _read_head(session, bilateral_id)
        self.bilateral_id = bilateral_id
        self.size = head.log_size
        self.frontier = split_frontier(head.frontier)
        self.leaves: list[dict[str, Any]] = []
        self.nodes: list[tuple[str, int, int, bytes]] = []

    def flush(self, session: Session) -> None:
        if not self.leaves:
            return
        columns = list(self.leaves[0])
        # sqlmodel's table classes do not declare __table__ to the type checker; SQLAlchemy sets it.
        insert_rows(session, LogLeaf.__table__, columns, [tuple(leaf.values()) for leaf in self.leaves])  # type: ignore[attr-defined]
        insert_rows(session, MerkleNode.__table__, ["bilateral_id", "level", "index", "hash"], self.nodes)  # type: ignore[attr-defined]
        _move_log_head(session, self.bilateral_id, self.size, b"".join(self.frontier))
        self.leaves, self.nodes = [], []


def _pending_key(bilateral_id: str) -> str:
    return f"log:{bilateral_id}"


def _append(
    session: Session,
    bilateral_id: str,
    changes: Sequence[Change],
    *,
    actor: str,
    at: datetime | None,
) -> list[dict[str, Any]]:
    if not changes or not recording_on(session):
        return []
    deferred = deferred_writes(session)
    if deferred is None:
        pending = _PendingLog(session, bilateral_id)
        leaves = _extend(pending, changes, actor, at or utcnow())
        pending.flush(session)
        return leaves
    pending = deferred.get(_pending_key(bilateral_id), _PendingLog, lambda: _PendingLog(session, bilateral_id))
    return _extend(pending, changes, actor, at or utcnow())


def _extend(pending: _PendingLog, changes: Sequence[Change], actor: str, moment: datetime) -> list[dict[str, Any]]:
    bilateral_id = pending.bilateral_id
    seq = pending.size
    frontier = pending.frontier
    leaves: list[dict[str, Any]] = []
    nodes = pending.nodes
    at_text = rfc3339(moment)
    trusted_actor = type(actor) is str
    # The record's JSON is written from a template (members in RFC 8785 order, strings escaped by the canonical
    # encoder's own encode_basestring) when its values have exactly the declared types; tests hold it equal to
    # canonical_json(leaf_record(...)). Anything else goes through canonical_json.
    prefix = f'{{"actor":{encode_basestring(actor)},"at":{encode_basestring(at_text)},"event":' if trusted_actor else ""
    for change in changes:
        canonical = change.canonical
        plain = (
            trusted_actor
            and type(change.resource_type) is str
            and type(change.resource_id) is str
            and type(change.event) is str
            and type(change.version) is int
            and 0 <= change.version < 2**31
        )
        if plain and canonical is not None:
            text = (
                f'{prefix}{encode_basestring(change.event)},"resourceId":{encode_basestring(change.resource_id)},'
                f'"resourceType":{encode_basestring(change.resource_type)},"seq":{seq},'
                f'"stateHash":"{sha256(canonical).hexdigest()}","version":{change.version}}}'
            )
            record = _utf8_or_canonical(text, seq, change, actor, at_text)
        else:
            record = canonical_json(_leaf_record(seq, change, actor, at_text))
        hashed = leaf_hash(record)
        frontier, completed = append_leaf(frontier, seq, hashed)
        leaves.append(
            {
                "bilateral_id": bilateral_id,
                "seq": seq,
                "resource_type": change.resource_type,
                "resource_id": change.resource_id,
                "version": change.version,
                "event": change.event,
                "record": record,
                "leaf_hash": hashed,
                "recorded_at": moment,
            }
        )
        nodes.extend((bilateral_id, level, index, node) for (level, index), node in completed)
        seq += 1
    pending.leaves.extend(leaves)
    pending.size = seq
    pending.frontier = frontier
    return leaves


def _native_bytes(column_type: Any, dialect: Any) -> bool:
    # sqlite3 binds bytes as a BLOB itself; SQLAlchemy's LargeBinary processor only wraps each value in a
    # memoryview that binds to the same BLOB, one Python call per leaf and node.
    return dialect.name == "sqlite" and isinstance(column_type, LargeBinary)


INSERT_CHUNK = 10_000  # rows per executemany call: bounded memory per call, few round trips


def insert_rows(
    session: Session,
    table: Any,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    json_text: Sequence[str] = (),
) -> None:
    """``executemany`` straight on the session's DBAPI connection, for batches of new rows.

    SQLAlchemy's own executemany wraps every bound value in several Python calls, and even ``exec_driver_sql``
    costs more than a small insert itself; here each value goes through just its column type's bind processor
    (so dates are stored exactly as the ORM stores them), and the columns named in ``json_text`` take the caller's
    JSON text as is. The statement runs in the session's transaction (``session.connection()`` has begun it).
    ``table`` is a model's ``__table__``; names are ours, never request input.
    """
    if not rows:
        return
    connection = session.connection()
    statement, active = _insert_plan(connection.dialect, table, tuple(columns), tuple(json_text))
    # Only the columns whose type has a bind processor are touched; a batch repeats the same few timestamps, so
    # each distinct datetime is processed once.
    memo: dict[tuple[int, Any], Any] = {}

    def prepare(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for position, processor in active:
            value = values[position]
            if value is None:
                continue
            if isinstance(value, datetime):
                key = (position, value)
                found = memo.get(key)
                if found is None:
                    found = memo[key] = processor(value)
                values[position] = found
            else:
                values[position] = processor(value)
        return tuple(values)

    cursor = connection.connection.cursor()
    try:
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            cursor.executemany(statement, [prepare(row) for row in chunk] if active else list(chunk))
    finally:
        cursor.close()


def insert_row_soon(
    session: Session, table: Any, columns: Sequence[str], row: tuple[Any, ...], *, json_text: Sequence[str] = ()
) -> None:
    """Insert one new row: now, or in a group transaction together with the group's other rows of the same shape,
    with one ``executemany`` just before the commit (``deferred_writes``). Rows go in in the order their shapes
    were first seen, so a table's rows follow the rows they reference when those were added first (an order,
    then its item dates). Only for rows nothing in the transaction reads back."""
    deferred = deferred_writes(session)
    if deferred is None:
        insert_rows(session, table, columns, [row], json_text=json_text)
        return
    key = f"rows:{table.name}:{','.join(columns)}:{','.join(json_text)}"
    batch = deferred.get(key, _PendingRows, lambda: _PendingRows(table, tuple(columns), tuple(json_text)))
    batch.rows.append(row)


class _PendingRows:
    def __init__(self, table: Any, columns: tuple[str, ...], json_text: tuple[str, ...]) -> None:
        self.table, self.columns, self.json_text = table, columns, json_text
        self.rows: list[tuple[Any, ...]] = []

    def flush(self, session: Session) -> None:
        rows, self.rows = self.rows, []
        insert_rows(session, self.table, self.columns, rows, json_text=self.json_text)


_PLANS: dict[tuple[str, Any, tuple[str, ...], tuple[str, ...]], tuple[str, list[tuple[int, Any]]]] = {}


def _insert_plan(
    dialect: Any, table: Any, columns: tuple[str, ...], json_text: tuple[str, ...]
) -> tuple[str, list[tuple[int, Any]]]:
    """The INSERT text and the (position, bind processor) pairs of ``insert_rows``, built once per shape."""
    key = (f"{dialect.name}+{dialect.driver}", table, columns, json_text)
    plan = _PLANS.get(key)
    if plan is None:
        processors = [
            None
            if name in json_text or _native_bytes(table.c[name].type, dialect)
            else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in columns
        ]
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
        statement = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names})"  # noqa: S608
            f" VALUES ({', '.join(marker for _ in columns)})"
        )
        active = [(position, processor) for position, processor in enumerate(processors) if processor is not None]
        plan = _PLANS[key] = (statement, active)
    return plan
