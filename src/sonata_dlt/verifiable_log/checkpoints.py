"""Checkpoints: cutting them (by size, by time, on demand), and reading them with every signature they carry.

A checkpoint is the C2SP tlog-checkpoint body (origin, size, base64 root) signed by the host key. It is cut
under the bilateral's log-head lock, from the frontier held on the head row, so its root is exactly the root of
the leaves committed before it and no append can slip in between reading the size and reading the root. The
checkpoint row is also the anchoring queue (``verifiable_log.anchoring``).

Served notes are the stored host-signed note followed by the parties' cosignature lines, oldest first; every
signature comes with the vkey that verifies it, chosen by validity at signing time, so old checkpoints stay
verifiable after a key rotation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.errors import Conflict, NotFound
from sonata_dlt.signing.keys import VerifierKey
from sonata_dlt.signing.note import parse_note, parse_signature_line, sign_note
from sonata_dlt.storage.checkpoints import AnchorReceiptRow, Checkpoint, CheckpointSignature, PartyKey
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.log import Bilateral
from sonata_dlt.storage.paging import fetch_page
from sonata_dlt.storage.types import utcnow
from sonata_dlt.transparency.checkpoint import Checkpoint as CheckpointBody
from sonata_dlt.transparency.merkle import root_from_frontier
from sonata_dlt.verifiable_log.keyring import KEYRING, Keyring
from sonata_dlt.verifiable_log.recording import lock_log_head, split_frontier

log = logging.getLogger("sonata_dlt.checkpoints")


@dataclass(frozen=True)
class SignatureView:
    role: str  # host | buyer | seller
    party_id: str
    kind: str  # note | cosignature/v1
    verifier: VerifierKey  # verifies ``line`` as is (type 0x01 for the host, 0x04 for cosignatures)
    line: str
    timestamp: int | None


@dataclass(frozen=True)
class CheckpointView:
    origin: str
    size: int
    root_hash: bytes
    note: bytes  # the host-signed note plus every cosignature line
    signatures: tuple[SignatureView, ...]
    endorsed: bool
    created_at: datetime
    anchor: AnchorReceiptRow | None


def checkpoint_body(origin: str, size: int, root_hash: bytes) -> bytes:
    return CheckpointBody(origin=origin, size=size, root_hash=root_hash).body()


def cut(session: Session, keyring: Keyring, bilateral_id: str) -> tuple[Checkpoint, bool]:
    """Sign a checkpoint of the log as committed now; return it and whether it is new.

    Runs in the caller's write transaction and takes the log-head lock, like recording does.
    """
    head = lock_log_head(session, bilateral_id)
    if head.log_size == 0:
        raise Conflict("the log is empty: there is nothing to checkpoint yet")
    existing = session.get(Checkpoint, (bilateral_id, head.log_size))
    if existing is not None:
        return existing, False
    root = root_from_frontier(split_frontier(head.frontier))
    note = sign_note(checkpoint_body(head.origin, head.log_size, root), [keyring.host_key])
    row = Checkpoint(
        bilateral_id=bilateral_id,
        size=head.log_size,
        root_hash=root,
        note=note,
        host_key_vkey=keyring.host_vkey,
    )
    session.add(row)
    session.flush()
    log.info("checkpoint cut", extra={"bilateral": bilateral_id, "size": row.size, "root": root.hex()})
    return row, True


def cut_now(db: Database, keyring: Keyring, bilateral: BilateralRef) -> tuple[CheckpointView, bool]:
    """The on-demand cut (``POST /checkpoint``): a new checkpoint, or the latest when the log has not grown."""
    with db.write() as session:
        row, created = cut(session, keyring, bilateral.id)
        return views(session, bilateral, [row])[0], created


def latest_row(session: Session, bilateral_id: str, *, endorsed: bool = False) -> Checkpoint | None:
    statement = select(Checkpoint).where(Checkpoint.bilateral_id == bilateral_id)
    if endorsed:
        statement = statement.where(col(Checkpoint.endorsed).is_(True))
    return session.exec(statement.order_by(col(Checkpoint.size).desc()).limit(1)).first()


def row_at(session: Session, bilateral_id: str, size: int) -> Checkpoint:
    row = session.get(Checkpoint, (bilateral_id, size))
    if row is None:
        raise NotFound(f"there is no checkpoint of size {size} in this log")
    return row


def latest(db: Database, bilateral: BilateralRef, *, endorsed: bool = False) -> CheckpointView:
    with db.read() as session:
        row = latest_row(session, bilateral.id, endorsed=endorsed)
        if row is None:
            raise NotFound("this log has no " + ("endorsed checkpoint" if endorsed else "checkpoint") + " yet")
        return views(session, bilateral, [row])[0]


def at_size(db: Database, bilateral: BilateralRef, size: int) -> CheckpointView:
    with db.read() as session:
        return views(session, bilateral, [row_at(session, bilateral.id, size)])[0]


def page(
    db: Database, bilateral: BilateralRef, *, offset: int, limit: int, endorsed: bool | None = None
) -> tuple[list[CheckpointView], int]:
    """Checkpoints newest first, and how many match."""
    with db.read() as session:
        filters: list[Any] = [col(Checkpoint.bilateral_id) == bilateral.id]
        if endorsed is not None:
            filters.append(col(Checkpoint.endorsed).is_(endorsed))
        rows, total = fetch_page(
            session, Checkpoint, filters, order_by=(col(Checkpoint.size).desc(),), offset=offset, limit=limit
        )
        return views(session, bilateral, list(rows)), int(total)


def views(session: Session, bilateral: BilateralRef, rows: Sequence[Checkpoint]) -> list[CheckpointView]:
    """Checkpoints with their cosignatures, keys and receipts, in three batched reads."""
    if not rows:
        return []
    sizes = [row.size for row in rows]
    cosignatures = session.exec(
        select(CheckpointSignature)
        .where(CheckpointSignature.bilateral_id == bilateral.id, col(CheckpointSignature.size).in_(sizes))
        .order_by(col(CheckpointSignature.created_at), col(CheckpointSignature.party_id))
    ).all()
    key_ids = {signature.party_key_id for signature in cosignatures}
    keys = {key.id: key for key in session.exec(select(PartyKey).where(col(PartyKey.id).in_(key_ids))).all()}
    receipts = {
        receipt.size: receipt
        for receipt in session.exec(
            select(AnchorReceiptRow).where(
                AnchorReceiptRow.bilateral_id == bilateral.id, col(AnchorReceiptRow.size).in_(sizes)
            )
        ).all()
    }
    by_size: dict[int, list[CheckpointSignature]] = {}
    for signature in cosignatures:
        by_size.setdefault(signature.size, []).append(signature)
    return [_view(bilateral, row, by_size.get(row.size, []), keys, receipts.get(row.size)) for row in rows]


def _view(
    bilateral: BilateralRef,
    row: Checkpoint,
    cosignatures: list[CheckpointSignature],
    keys: dict[int | None, PartyKey],
    receipt: AnchorReceiptRow | None,
) -> CheckpointView:
    host = VerifierKey.from_vkey(row.host_key_vkey)
    _, host_lines = parse_note(row.note)
    signatures = [SignatureView("host", host.name, "note", host, line.line, None) for line in host_lines]
    for cosignature in cosignatures:
        key = keys[cosignature.party_key_id]
        verifier = VerifierKey.from_public_key(key.key_name, key.public_key).for_cosignature()
        signatures.append(
            SignatureView(
                cosignature.role,
                cosignature.party_id,
                "cosignature/v1",
                verifier,
                cosignature.line,
                cosignature.timestamp,
            )
        )
    note = row.note + "".join(cosignature.line for cosignature in cosignatures).encode("utf-8")
    return CheckpointView(
        origin=bilateral.origin,
        size=row.size,
        root_hash=row.root_hash,
        note=note,
        signatures=tuple(signatures),
        endorsed=row.endorsed,
        created_at=row.created_at,
        anchor=receipt,
    )


def cosignature_timestamp(line: str) -> int:
    """The POSIX timestamp a cosignature/v1 line carries (its first 8 signature bytes)."""
    return int.from_bytes(parse_signature_line(line).signature[:8], "big")


# --- the cutter worker ---------------------------------------------------------------------------------------


def cut_due(db: Database, keyring: Keyring, every_leaves: int, every_seconds: float) -> list[Checkpoint]:
    """Cut a checkpoint of every log that grew by ``every_leaves`` or whose growth waited ``every_seconds``."""
    now = utcnow()
    with db.read() as session:
        heads = session.exec(
            select(Bilateral.id, Bilateral.log_size, Bilateral.created_at).where(col(Bilateral.log_size) > 0)
        ).all()
        # The clock of a log never checkpointed starts when the log was created.
        latest_by_log = {bilateral_id: (0, created_at) for bilateral_id, _, created_at in heads}
        for bilateral_id, _, _ in heads:
            # One indexed read per hosted bilateral; a server hosts a handful, not millions.
            last = latest_row(session, bilateral_id)
            if last is not None:
                latest_by_log[bilateral_id] = (last.size, last.created_at)
    cut_rows = []
    for bilateral_id, size, _ in heads:
        last_size, last_at = latest_by_log[bilateral_id]
        if size <= last_size:
            continue
        waited = now - last_at >= timedelta(seconds=every_seconds)
        if size - last_size >= every_leaves or waited:
            with db.write() as session:
                row, created = cut(session, keyring, bilateral_id)
            if created:
                cut_rows.append(row)
    return cut_rows


class CheckpointCutter:
    """Background worker: cuts checkpoints by size or time (``settings.checkpoints``)."""

    name = "checkpoint-cutter"

    def __init__(self, db: Database, keyring: Keyring, every_leaves: int, every_seconds: float) -> None:
        self.db = db
        self.keyring = keyring
        self.every_leaves = every_leaves
        self.every_seconds = every_seconds
        # Poll often enough to notice the size threshold soon, never busier than twice a second.
        self.poll_seconds = max(0.5, min(5.0, every_seconds / 4))

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(cut_due, self.db, self.keyring, self.every_leaves, self.every_seconds)
            await asyncio.sleep(self.poll_seconds)


def cutter_worker(runtime: Any) -> CheckpointCutter | None:
    """Factory for ``WORKER_FACTORIES``; ``runtime`` is a ``core.runtime.Runtime``."""
    if not runtime.settings.record_log:
        return None
    config = runtime.settings.checkpoints
    return CheckpointCutter(runtime.db, runtime.components[KEYRING], config.every_leaves, config.every_seconds)
