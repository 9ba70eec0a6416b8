"""Group commit: many callers' write jobs in one transaction, each answered only after that transaction commits.

SQLite has one writer, and under load a create spends more on its transaction (begin, writer lock, log-head read
and update, commit) than on its own rows. ``GroupWriter`` owns one thread per process that takes every job queued
while the previous group ran and runs them together::

    callers ──submit / run──▶ queue ──▶ writer thread: BEGIN; job, job, job ...; deferred writes; COMMIT
                                                         └─▶ each caller's future gets its result (or error)

A group first runs *optimistically*: jobs one after another, no savepoints, and what they leave in
``DeferredWrites`` (the log's leaves, Merkle nodes and head, see ``verifiable_log.recording``) written once before the
commit. If a job raises, that transaction is rolled back whole, the job gets its exception, and the others run
again in a new transaction, each in its own savepoint with nothing deferred, so that a second failure rolls back
only itself. A job may therefore run twice: only a committed run counts, and a job must have no effect outside
its session (creates draw their ids and timestamps afresh). No caller learns of a result before the commit, so a
201 never precedes its commit; if the commit fails, every job of the group gets the error.

Coroutine callers (``run``) hand over the jobs of one event-loop turn together and are woken once per group;
thread callers (``submit``) get a ``concurrent.futures.Future``. ``commit_group`` is the transaction logic alone:
the server's writer process (``startup.writer_process``) runs its groups with it too.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from sonata_dlt.errors import ServiceUnavailable

T = TypeVar("T")
MAX_GROUP = 64  # jobs per group transaction: bounds the work a commit waits for
DEFERRED_KEY = "sonata_dlt.deferred_writes"


class Flushable(Protocol):
    def flush(self, session: Session) -> None: ...


F = TypeVar("F", bound=Flushable)


class DeferredWrites:
    """What the jobs of a group transaction leave to be written once, just before the group commits.

    Recording keeps a bilateral's new leaves here (keyed by bilateral), so a group of creates writes its leaves,
    Merkle nodes and log head with one statement each. Everything is flushed in the same transaction, before the
    commit: deferring changes how many statements run, never what commits together.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Flushable] = {}

    def get(self, key: str, kind: type[F], create: Callable[[], F]) -> F:
        """The ``kind`` object kept under ``key``, created on first use."""
        found = self._pending.get(key)
        if found is None:
            made = create()
            self._pending[key] = made
            return made
        if not isinstance(found, kind):
            raise TypeError(f"deferred writes under {key!r} are a {type(found).__name__}, not a {kind.__name__}")
        return found

    def flush_key(self, key: str, session: Session) -> None:
        found = self._pending.pop(key, None)
        if found is not None:
            found.flush(session)

    def flush(self, session: Session) -> None:
        pending, self._pending = self._pending, {}
        for found in pending.values():
            found.flush(session)


def deferred_writes(session: Session) -> DeferredWrites | None:
    """The deferred writes of ``session``'s group transaction; ``None`` outside one (then write at once)."""
    found = session.info.get(DEFERRED_KEY)
    return found if isinstance(found, DeferredWrites) else None


@dataclass
class Job:
    work: Callable[[Session], Any]
    context: contextvars.Context  # the submitter's (request id, party), for logs the job writes
    future: Future[Any] | None = None  # a thread caller's
    waiter: asyncio.Future[Any] | None = None  # a coroutine caller's (resolved on its own loop)
    result: Any = None
    error: BaseException | None = None
    settled: bool = field(default=False)

    def fail(self, error: BaseException) -> None:
        self.error, self.settled = error, True

    def succeed(self, result: Any) -> None:
        self.result, self.settled = result, True


class GroupWriter:
    """One thread running queued write jobs, a group per transaction (see the module docstring)."""

    def __init__(self, write: Callable[[], AbstractContextManager[Session]]) -> None:
        self._write = write  # Database.write: a transaction, OperationalError mapped to ServiceUnavailable
        self._queue: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._turns: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        # Queueing and closing take turns, so no job is ever queued behind the stop sentinel (it would wait forever).
        self._gate = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sonata-group-writer", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        with self._gate:
            if self._closed:
                raise _shutting_down()
            self._queue.put([Job(work, contextvars.copy_context(), future=future)])
        return future

    async def run(self, work: Callable[[Session], T]) -> T:
        if self._closed:
            raise _shutting_down()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = []
            loop.call_soon(self._hand_over, loop)  # after every task ready in this turn has queued its job
        turn.append(Job(work, contextvars.copy_context(), waiter=waiter))
        return await waiter

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._turns.pop(loop, [])
        with self._gate:
            if not self._closed:
                self._queue.put(jobs)
                return
        _fail_unsettled(jobs, _shutting_down())
        _deliver(jobs)

    def close(self) -> None:
        """Run what is queued, then stop; later jobs are refused with ServiceUnavailable."""
        with self._gate:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = list(first)
            stop = False
            while len(jobs) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.extend(more)
            for start in range(0, len(jobs), MAX_GROUP):
                self._commit(jobs[start : start + MAX_GROUP])
            if stop:
                return

    def _commit(self, group: list[Job]) -> None:
        try:
            commit_group(self._write, group)
        finally:
            _deliver(group)


def commit_group(write: Callable[[], AbstractContextManager[Session]], group: list[Job]) -> None:
    """Run ``group``'s jobs in one transaction (see the module docstring) and settle every job: with its result
    once the commit is through, with its own exception, or with the error that kept the transaction from committing.
    Exceptions are settled, not raised; anything else (``KeyboardInterrupt``...) settles the group and propagates."""
    try:
        try:
            _optimistic(write, group)
        except JobFailed as failure:
            failure.job.fail(failure.error)
            _careful(write, [job for job in group if job is not failure.job])
    except BaseException as exc:
        _fail_unsettled(group, exc)  # the failed job, settled with its own error, keeps it
        if not isinstance(exc, Exception):
            raise


def _optimistic(write: Callable[[], AbstractContextManager[Session]], group: list[Job]) -> None:
    with write() as session:
        deferred = session.info[DEFERRED_KEY] = DeferredWrites()
        try:
            for job in group:
                try:
                    result = job.context.run(job.work, session)
                except OperationalError:
                    raise  # the database, not the job: the whole group fails with ServiceUnavailable
                except Exception as exc:
                    raise JobFailed(job, exc) from exc
                job.result = result  # not settled: it only counts once the commit is through
            deferred.flush(session)
        finally:
            session.info.pop(DEFERRED_KEY, None)
    for job in group:
        job.succeed(job.result)


def _careful(write: Callable[[], AbstractContextManager[Session]], group: list[Job]) -> None:
    if not group:
        return
    done: list[tuple[Job, Any]] = []
    with write() as session:
        for job in group:
            try:
                with session.begin_nested():
                    result = job.context.run(job.work, session)
            except OperationalError:
                raise
            except Exception as exc:  # its savepoint is rolled back; the others go on
                job.fail(exc)
            else:
                done.append((job, result))
    for job, result in done:
        job.succeed(result)


def _shutting_down() -> ServiceUnavailable:
    return ServiceUnavailable("the server is shutting down; nothing was changed")


class JobFailed(Exception):
    def __init__(self, job: Job, error: Exception) -> None:
        super().__init__(str(error))
        self.job = job
        self.error = error


def _fail_unsettled(group: list[Job], error: BaseException) -> None:
    # Nothing of this transaction was committed: every job it held learns so (never a 201 without a commit).
    for job in group:
        if not job.settled:
            job.fail(error)


def _deliver(group: list[Job]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
    for job in group:
        if job.future is not None:
            if job.error is not None:
                job.future.set_exception(job.error)
            else:
                job.future.set_result(job.result)
        elif job.waiter is not None:
            by_loop.setdefault(job.waiter.get_loop(), []).append(job)
    for loop, jobs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, jobs)  # one wake-up per loop and group
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            continue


def _settle(jobs: list[Job]) -> None:
    for job in jobs:
        waiter = job.waiter
        if waiter is None or waiter.done():  # a cancelled request (client gone); its job ran all the same
            continue
        if job.error is not None:
            waiter.set_exception(job.error)
        else:
            waiter.set_result(job.result)
