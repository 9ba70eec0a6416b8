"""Delivering the durable outbox to hub listeners: the background worker behind Sonata notifications.

How a row travels (``storage.hub.OutboxEvent``, written by ``notify.outbox.enqueue`` in the change's transaction):

1. **Claim.** One short write transaction selects due rows oldest first, but only the *head* of each stream
   (the oldest pending row of one ``(subscription_id, stream_key)``, i.e. one resource at one listener), and
   leases them by moving ``next_attempt_at`` forward by ``lease_seconds``. A leased head is not due, so nothing
   behind it in its stream can be claimed: per-resource order holds across retries and across processes.
2. **Deliver.** Outside any transaction, one aiohttp POST of the payload with the configured timeout.
3. **Settle.** A second short transaction marks the row delivered (any 2xx), or counts the attempt and schedules
   the next one with capped exponential backoff and jitter, or abandons it after ``max_attempts`` (logged). An
   abandoned row stops blocking its stream: the next event of that resource is delivered after it.

Several processes (PostgreSQL): the claim uses ``FOR UPDATE SKIP LOCKED`` and the lease, so two workers never
hold the same row; a worker that dies mid-delivery leaves a lease that expires, and another worker re-delivers
(at-least-once). SQLite: the claim runs under ``BEGIN IMMEDIATE`` (see ``storage.db``), which also makes it
atomic between processes, but SQLite is meant for one server process; use PostgreSQL to run several.

The API never waits for this worker: handlers only insert rows. Database work runs on a small executor of the
worker's own, so a backlog of deliveries never occupies the threads that request handlers use. Concurrency is
bounded globally (``notify.concurrency``) and per listener (a quarter of it), and first attempts go before retries,
so a slow or dead listener ties up at most its own share of slots and never holds up other listeners.

Finished rows do not pile up: every ``notify.purge_every_seconds`` the worker deletes delivered and abandoned rows
older than ``notify.retention_days``, a bounded batch per transaction so the API's writers never wait long.

Rows of a deleted subscription are dropped: ``forget_subscription`` deletes them (the outbox row references its
subscription, so the hub service calls it before deleting the subscription), and the claim ignores any row whose
subscription is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
from sqlalchemy import delete, func, select, update
from sqlalchemy.sql import Select
from sqlmodel import Session

from sonata_dlt import __version__
from sonata_dlt.settings import NotifyConfig, Settings
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.hub import HubSubscription, OutboxEvent
from sonata_dlt.storage.types import utcnow

log = logging.getLogger("sonata_dlt.notify")

JSON_UTF8 = "application/json;charset=utf-8"
OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = HubSubscription.__table__  # type: ignore[attr-defined]
ERROR_TEXT_LIMIT = 1024  # OutboxEvent.last_error column size


class RuntimeLike(Protocol):
    """What the worker needs from ``core.runtime.Runtime`` (notify may not import services)."""

    settings: Settings
    db: Database


@dataclass(frozen=True)
class Claimed:
    id: int
    subscription_id: str
    url: str
    event_type: str
    payload: dict[str, Any]
    attempts: int


def backoff_seconds(attempts: int, config: NotifyConfig, rand: Callable[[], float] = random.random) -> float:
    """Delay before the next try after ``attempts`` failed ones: doubling from the first backoff, capped, jittered.

    The jitter ("equal jitter": half fixed, half random) spreads retries of many streams failing at once, while
    keeping each delay within [first_backoff_seconds, max_backoff_seconds].
    """
    cap = min(config.max_backoff_seconds, config.first_backoff_seconds * 2 ** max(attempts - 1, 0))
    low = max(config.first_backoff_seconds, cap / 2)
    return float(low + (max(cap, low) - low) * rand())


def _due_heads(now: datetime, limit: int, *, lock: bool, saturated: list[str]) -> Select[Any]:
    older = OUTBOX.alias("older")
    head_id = (
        select(func.min(older.c.id))
        .where(
            older.c.subscription_id == OUTBOX.c.subscription_id,
            older.c.stream_key == OUTBOX.c.stream_key,
            older.c.delivered_at.is_(None),
            older.c.abandoned_at.is_(None),
        )
        .scalar_subquery()
    )
    subscription_exists = select(SUBSCRIPTIONS.c.id).where(SUBSCRIPTIONS.c.id == OUTBOX.c.subscription_id).exists()
    statement = (
        select(OUTBOX)
        .where(
            OUTBOX.c.delivered_at.is_(None),
            OUTBOX.c.abandoned_at.is_(None),
            OUTBOX.c.next_attempt_at <= now,
            OUTBOX.c.id == head_id,
            subscription_exists,
        )
        # First attempts before retries, then oldest first: a listener that keeps failing cannot crowd out fresh
        # events for the others. Order within a stream is kept by the head rule above, not by this sort.
        .order_by(OUTBOX.c.attempts, OUTBOX.c.id)
        .limit(limit)
    )
    if saturated:
        statement = statement.where(OUTBOX.c.subscription_id.not_in(saturated))
    if lock:
        # SKIP LOCKED: another process claiming right now keeps its rows; we take the next ones.
        statement = statement.with_for_update(skip_locked=True, of=OUTBOX)
    return statement


def claim(db: Database, *, limit: int, lease_seconds: float, busy: dict[str, int], per_listener: int) -> list[Claimed]:
    """Lease up to ``limit`` due stream heads, at most ``per_listener`` in flight per subscription (with ``busy``)."""
    now = utcnow()
    with db.write() as session:
        # Read more candidates than slots so a listener at its cap does not hide the rows of the others.
        saturated = [subscription for subscription, count in busy.items() if count >= per_listener]
        query = _due_heads(now, limit * 4, lock=not db.is_sqlite, saturated=saturated)
        rows = session.execute(query).mappings().all()
        picked: list[Claimed] = []
        counts = dict(busy)
        for row in rows:
            if len(picked) >= limit:
                break
            if counts.get(row["subscription_id"], 0) >= per_listener:
                continue
            counts[row["subscription_id"]] = counts.get(row["subscription_id"], 0) + 1
            picked.append(
                Claimed(
                    row["id"], row["subscription_id"], row["url"], row["event_type"], row["payload"], row["attempts"]
                )
            )
        if picked:
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([item.id for item in picked]))
                .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
            )
    return picked


def settle(db: Database, item: Claimed, error: str | None, config: NotifyConfig) -> str:
    """Record the outcome of one attempt; returns ``delivered``, ``retry`` or ``abandoned``."""
    now = utcnow()
    pending = (OUTBOX.c.id == item.id) & OUTBOX.c.delivered_at.is_(None)
    with db.write() as session:
        if error is None:
            session.execute(update(OUTBOX).where(pending).values(delivered_at=now, attempts=item.attempts + 1))
            return "delivered"
        attempts = item.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:ERROR_TEXT_LIMIT]}
        if attempts >= config.max_attempts:
            values["abandoned_at"] = now
            outcome = "abandoned"
        else:
            values["next_attempt_at"] = now + timedelta(seconds=backoff_seconds(attempts, config))
            outcome = "retry"
        session.execute(update(OUTBOX).where(pending).values(**values))
    return outcome


def release(db: Database, ids: list[int]) -> None:
    """Make leased rows due again at once (a worker stopping mid-delivery); their attempt is not counted."""
    with db.write() as session:
        session.execute(
            update(OUTBOX).where(OUTBOX.c.id.in_(ids), OUTBOX.c.delivered_at.is_(None)).values(next_attempt_at=utcnow())
        )


PURGE_BATCH = 1000


def purge_finished(db: Database, older_than: datetime) -> int:
    """Delete delivered and abandoned rows finished before ``older_than``; returns how many went."""
    finished_long_ago = (OUTBOX.c.delivered_at < older_than) | (OUTBOX.c.abandoned_at < older_than)
    removed = 0
    while True:
        with db.write() as session:
            batch = select(OUTBOX.c.id).where(finished_long_ago).order_by(OUTBOX.c.id).limit(PURGE_BATCH)
            ids = list(session.execute(batch).scalars())
            if ids:
                session.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(ids)))
        removed += len(ids)
        if len(ids) < PURGE_BATCH:
            return removed


def forget_subscription(session: Session, subscription_id: str) -> int:
    """Drop every outbox row of a subscription, in the caller's transaction (before deleting the subscription)."""
    result = session.execute(delete(OUTBOX).where(OUTBOX.c.subscription_id == subscription_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


class DeliveryWorker:
    """Claims, delivers and settles outbox rows until cancelled."""

    name = "notify-delivery"

    def __init__(
        self,
        db: Database,
        config: NotifyConfig,
        *,
        poll_seconds: float = 0.25,
        lease_seconds: float | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.poll_seconds = poll_seconds
        # Long enough for the request to time out and its outcome to be written; a dead worker's rows come back.
        self.lease_seconds = lease_seconds or config.request_timeout_seconds * 2 + 30
        self.per_listener = max(1, config.concurrency // 4)
        self._busy: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, Claimed] = {}  # claimed and not yet settled, by outbox id
        self._wake = asyncio.Event()
        self._next_purge = 0.0  # loop time; the first pass purges what an earlier run left

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout_seconds)
        connector = aiohttp.TCPConnector(limit=self.config.concurrency)
        executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify-db")
        loop = asyncio.get_running_loop()
        try:
            async with aiohttp.ClientSession(
                timeout=timeout, connector=connector, headers={"User-Agent": f"sonata-dlt/{__version__}"}
            ) as http:
                try:
                    await self._loop(http, executor)
                finally:
                    # Stop deliveries before the session closes, or they would fail and count as attempts.
                    for task in list(self._tasks):
                        task.cancel()
                    await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            interrupted = list(self._in_flight)
            self._in_flight.clear()
            try:
                if interrupted:
                    # Hand the interrupted rows back now rather than when their lease runs out.
                    await loop.run_in_executor(executor, release, self.db, interrupted)
            finally:
                executor.shutdown(wait=False, cancel_futures=True)

    async def _loop(self, http: aiohttp.ClientSession, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if loop.time() >= self._next_purge:
                self._next_purge = loop.time() + self.config.purge_every_seconds
                await self._purge(executor)
            free = self.config.concurrency - len(self._in_flight)
            claimed: list[Claimed] = []
            if free > 0:
                claimed = await loop.run_in_executor(
                    executor,
                    functools.partial(
                        claim,
                        self.db,
                        limit=free,
                        lease_seconds=self.lease_seconds,
                        busy=dict(self._busy),
                        per_listener=self.per_listener,
                    ),
                )
            for item in claimed:
                self._busy[item.subscription_id] = self._busy.get(item.subscription_id, 0) + 1
                self._in_flight[item.id] = item
                task = asyncio.create_task(self._deliver(http, executor, item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if free <= 0 or len(claimed) < free:
                # Nothing more is due, or every slot is busy: wait for a delivery to finish or for the next poll.
                self._wake.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives
                # as the wait completes, and the worker would then never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()

    async def _purge(self, executor: ThreadPoolExecutor) -> None:
        cutoff = utcnow() - timedelta(days=self.config.retention_days)
        try:
            removed = await asyncio.get_running_loop().run_in_executor(executor, purge_finished, self.db, cutoff)
        except Exception:
            log.exception("purging finished notifications failed; retried at the next purge")
            return
        if removed:
            log.info("purged finished notifications", extra={"removed": removed, "before": cutoff.isoformat()})

    async def _deliver(self, http: aiohttp.ClientSession, executor: ThreadPoolExecutor, item: Claimed) -> None:
        loop = asyncio.get_running_loop()
        error = await self._post(http, item)
        try:
            outcome = await loop.run_in_executor(executor, settle, self.db, item, error, self.config)
        except Exception:
            # A database hiccup while settling: the lease expires and the row is tried again.
            log.exception("settling a notification failed", extra={"outbox_id": item.id})
            outcome = "unsettled"
        # Not reached when cancelled: the row stays in _in_flight and run() releases it.
        self._in_flight.pop(item.id, None)
        remaining = self._busy.get(item.subscription_id, 1) - 1
        if remaining:
            self._busy[item.subscription_id] = remaining
        else:
            self._busy.pop(item.subscription_id, None)
        self._wake.set()
        if outcome == "abandoned":
            log.warning(
                "notification abandoned",
                extra={"outbox_id": item.id, "url": item.url, "attempts": item.attempts + 1, "error": error},
            )
        elif outcome == "retry":
            log.info("notification failed; will retry", extra={"outbox_id": item.id, "error": error})

    async def _post(self, http: aiohttp.ClientSession, item: Claimed) -> str | None:
        """POST once; ``None`` on a 2xx, otherwise a short description of what went wrong."""
        try:
            async with http.post(
                item.url,
                data=json.dumps(item.payload, separators=(",", ":"), ensure_ascii=False).encode(),
                headers={"Content-Type": JSON_UTF8},
                allow_redirects=False,  # a listener URL is exact; following a redirect could replay to elsewhere
            ) as response:
                if 200 <= response.status < 300:
                    return None
                body = (await response.content.read(200)).decode("utf-8", "replace")
                return f"HTTP {response.status}: {body}"
        except TimeoutError:
            return f"timed out after {self.config.request_timeout_seconds}s"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"


def delivery_worker(runtime: RuntimeLike) -> DeliveryWorker:
    """Worker factory named in ``api.app.WORKER_FACTORIES``."""
    return DeliveryWorker(runtime.db, runtime.settings.notify)
