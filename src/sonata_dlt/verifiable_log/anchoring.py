"""Anchoring checkpoints on the ledger: asynchronous, batched, one anchor per checkpoint, retried with backoff.

Anchoring cost must not grow with the number of changes, so nothing here runs per change: the worker takes
unanchored checkpoints, oldest first, and anchors each one through the configured backend
(``ledger.open_backend(settings.ledger.backend, options)``; the default ``local`` journal lives under
``settings.data_dir`` and is signed with the host key).

A checkpoint is *claimed* by moving its ``next_anchor_at`` forward by a lease in one conditional UPDATE, so several
server processes never anchor the same checkpoint at once, and the ledger call runs outside any database
transaction (a slow chain must not hold locks that writers wait on). When the backend raises
``LedgerUnavailable`` the checkpoint stays queued with an exponential backoff and the batch stops, so the queue
keeps its order; the API never waits on the ledger. A process that dies mid-anchor leaves the lease to expire and
the checkpoint is anchored again later: a duplicate anchor is harmless, a missing one is not.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from sonata_dlt.core.runtime import Component, Runtime
from sonata_dlt.errors import LedgerUnavailable
from sonata_dlt.ledger import open_backend
from sonata_dlt.ledger.base import LedgerBackend
from sonata_dlt.settings import Settings
from sonata_dlt.storage.checkpoints import AnchorReceiptRow, Checkpoint
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.log import Bilateral
from sonata_dlt.storage.paging import fetch_selection
from sonata_dlt.storage.types import utcnow
from sonata_dlt.verifiable_log.keyring import Keyring

log = logging.getLogger("sonata_dlt.anchoring")

FIRST_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=5)
CLAIM_LEASE = timedelta(minutes=2)  # longer than any backend's confirmation wait
BATCH = 50
POLL_SECONDS = 1.0

LEDGER = Component[LedgerBackend]("ledger backend")  # attached by startup.wiring.start_runtime


def open_ledger(settings: Settings, keyring: Keyring) -> LedgerBackend:
    """The configured backend; ``local`` defaults to a journal under data_dir signed with the host key."""
    options = dict(settings.ledger.options)
    if settings.ledger.backend == "local":
        options.setdefault("path", str(settings.data_dir / "ledger" / "anchors.jsonl"))
        if not any(options.get(key) for key in ("signing_key_seed", "signing_key_path", "verify_key")):
            options["signing_key_seed"] = keyring.host_key.seed()
    return open_backend(settings.ledger.backend, options)


def backoff(attempts: int) -> timedelta:
    delay: timedelta = FIRST_BACKOFF * (2 ** min(max(attempts - 1, 0), 16))
    return min(delay, MAX_BACKOFF)


@dataclass(frozen=True)
class _Claimed:
    bilateral_id: str
    size: int
    origin: str
    root_hash: bytes
    attempts: int


def _claim(db: Database, now: datetime, limit: int) -> list[_Claimed]:
    with db.read() as session:
        due = session.exec(
            select(Checkpoint, Bilateral.origin)
            .join(Bilateral, col(Bilateral.id) == col(Checkpoint.bilateral_id))
            .where(col(Checkpoint.anchored).is_(False), col(Checkpoint.next_anchor_at) <= now)
            .order_by(col(Checkpoint.created_at), col(Checkpoint.size))
            .limit(limit)
        ).all()
    claimed = []
    for row, origin in due:
        with db.write() as session:
            result = session.execute(
                update(Checkpoint)
                .where(
                    col(Checkpoint.bilateral_id) == row.bilateral_id,
                    col(Checkpoint.size) == row.size,
                    col(Checkpoint.anchored).is_(False),
                    col(Checkpoint.next_anchor_at) == row.next_anchor_at,
                )
                .values(next_anchor_at=now + CLAIM_LEASE)
            )
        if result.rowcount == 1:  # type: ignore[attr-defined]  # another process may have claimed it first
            claimed.append(_Claimed(row.bilateral_id, row.size, origin, row.root_hash, row.anchor_attempts))
    return claimed


def anchor_due(db: Database, backend: LedgerBackend, *, limit: int = BATCH) -> int:
    """Anchor up to ``limit`` queued checkpoints, oldest first; return how many were anchored.

    Stops at the first ``LedgerUnavailable``: that checkpoint and the rest of the batch wait for the backoff.
    """
    anchored = 0
    claimed = _claim(db, utcnow(), limit)
    for position, item in enumerate(claimed):
        try:
            receipt = backend.anchor(item.origin, item.size, item.root_hash)
        except LedgerUnavailable as exc:
            _requeue(db, claimed[position:], str(exc))
            return anchored
        with db.write() as session:
            session.add(
                AnchorReceiptRow(
                    bilateral_id=item.bilateral_id,
                    size=item.size,
                    backend=receipt.backend,
                    receipt=receipt.to_json(),
                    anchored_at=receipt.anchored_at,
                )
            )
            session.execute(
                update(Checkpoint)
                .where(col(Checkpoint.bilateral_id) == item.bilateral_id, col(Checkpoint.size) == item.size)
                .values(anchored=True, last_anchor_error=None)
            )
        anchored += 1
        log.info("checkpoint anchored", extra={"bilateral": item.bilateral_id, "size": item.size})
    return anchored


def _requeue(db: Database, items: list[_Claimed], error: str) -> None:
    now = utcnow()
    with db.write() as session:
        for item in items:
            attempts = item.attempts + 1
            session.execute(
                update(Checkpoint)
                .where(col(Checkpoint.bilateral_id) == item.bilateral_id, col(Checkpoint.size) == item.size)
                .values(
                    anchor_attempts=attempts, next_anchor_at=now + backoff(attempts), last_anchor_error=error[:1024]
                )
            )
    log.warning("ledger unavailable; checkpoints stay queued", extra={"queued": len(items), "error": error})


def receipts(
    db: Database, bilateral_id: str, *, offset: int, limit: int
) -> tuple[list[tuple[AnchorReceiptRow, bytes]], int]:
    """Receipts of a log, newest first, each with its checkpoint's root; and how many there are."""
    with db.read() as session:
        rows, total = fetch_selection(
            session,
            select(AnchorReceiptRow, Checkpoint.root_hash).join(
                Checkpoint,
                (col(Checkpoint.bilateral_id) == col(AnchorReceiptRow.bilateral_id))
                & (col(Checkpoint.size) == col(AnchorReceiptRow.size)),
            ),
            AnchorReceiptRow,
            [AnchorReceiptRow.bilateral_id == bilateral_id],
            order_by=(col(AnchorReceiptRow.size).desc(),),
            offset=offset,
            limit=limit,
        )
    return [(row, root) for row, root in rows], int(total)


class AnchorWorker:
    """Background worker: anchors queued checkpoints; the ledger call runs in a thread."""

    name = "anchoring"

    def __init__(self, db: Database, backend: LedgerBackend, poll_seconds: float = POLL_SECONDS) -> None:
        self.db = db
        self.backend = backend
        self.poll_seconds = poll_seconds

    async def run(self) -> None:
        while True:
            anchored = await asyncio.to_thread(anchor_due, self.db, self.backend)
            if anchored < BATCH:  # a full batch means more are waiting: go on at once
                await asyncio.sleep(self.poll_seconds)


def anchor_worker(runtime: Runtime) -> AnchorWorker | None:
    """Factory for ``WORKER_FACTORIES``."""
    backend = runtime.components.get(LEDGER)
    if backend is None:
        return None
    return AnchorWorker(runtime.db, backend)
