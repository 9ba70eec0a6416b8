"""Engine and transactions.

``Database.write()`` is the only way to change data: one transaction, committed on success, rolled back on any
exception. On SQLite it starts with ``BEGIN IMMEDIATE`` so that two writers never deadlock on a lock upgrade (the
second waits for ``busy_timeout`` instead); reads use a separate engine whose transactions start deferred, so they
never queue behind writers under WAL. On PostgreSQL the recording path takes a row lock on the bilateral's log head
(``SELECT ... FOR NO KEY UPDATE``), which serialises appends per bilateral and nothing else. Row locks for updates
use NO KEY UPDATE, not FOR UPDATE: a transaction that already inserted rows referencing the row holds its KEY SHARE
lock, and two such transactions upgrading to FOR UPDATE deadlock each other.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine

from sonata_dlt.errors import ServiceUnavailable

T = TypeVar("T")
MAX_GROUP = 64  # jobs per group transaction: bounds the work a commit waits for

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # NORMAL under WAL survives a process crash (SIGKILL) without losing committed transactions; only a power
    # loss can drop the last few. Use PostgreSQL where that matters.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see the "begin" hook).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database:
    """Owns the engines for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
            self.read_engine = _sqlite_engine(url, begin="BEGIN")
            # SQLite has one writer at a time. Without this lock, writer threads of this process wait in SQLite's
            # busy handler, which sleeps and polls: under load some wait for seconds while others get through.
            # Queued on a lock they proceed as soon as the writer before them commits. (Other processes still
            # meet at SQLite's own lock; use PostgreSQL for several writer processes.)
            self._writer_lock: threading.Lock | None = threading.Lock()
        else:
            if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
                url = str(parsed.set(drivername="postgresql+psycopg"))
            self.write_engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.write_engine
            self._writer_lock = None  # PostgreSQL locks rows, not the database
        self._group: GroupWriter | None = None
        self._group_guard = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction: commit on success, roll back on any exception."""
        lock = self._writer_lock or contextlib.nullcontext()
        try:
            with lock, Session(self.write_engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as exc:
            raise ServiceUnavailable("the database is unavailable; nothing was changed") from exc

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Run ``work(session)`` in a group write transaction (see the module docstring); its future resolves with
        the result after the commit, or with the exception ``work`` raised (it changed nothing), or with
        ``ServiceUnavailable`` if the transaction could not commit."""
        group = self._group
        if group is None:
            with self._group_guard:
                if self._group is None:
                    self._group = GroupWriter(self)
                group = self._group
        return group.submit(work)

    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with Session(self.read_engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as exc:
            raise ServiceUnavailable("the database is unavailable") from exc

    def create_schema(self) -> None:
        """Create every table from the models. Alembic (``sonata-dlt db upgrade``) does this in production."""
        from sonata_dlt.storage import tables  # noqa: F401 - registers every table on the metadata

        SQLModel.metadata.create_all(self.write_engine)

    def dispose(self) -> None:
        with self._group_guard:
            group, self._group = self._group, None
        if group is not None:
            group.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


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
class _Job:
    work: Callable[[Session], Any]
    future: Future[Any]
    context: contextvars.Context  # the submitter's (request id, party) for logs written by the job


class GroupWriter:
    """One thread running queued write jobs, a group per transaction (``Database.submit``).

    A group first runs optimistically: its jobs one after another in one transaction, with deferred writes and no
    savepoints. If a job raises, that transaction is rolled back whole, the job gets its exception, and the other
    jobs run again in a new transaction, each in its own savepoint with nothing deferred, so that a second failure
    rolls back only itself. A job may therefore run twice; only a committed run counts, and a job must have no
    effect outside its session (creates draw their ids and timestamps afresh).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sonata-group-writer", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put(_Job(work, future, contextvars.copy_context()))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            group = [job]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                if queued is None:
                    stop = True
                    break
                group.append(queued)
            group = [job for job in group if job.future.set_running_or_notify_cancel()]
            if group:
                self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Job]) -> None:
        try:
            results = self._optimistic(group)
        except _JobFailed as failure:
            failure.job.future.set_exception(failure.error)
            rest = [job for job in group if job is not failure.job]
            try:
                results = self._careful(rest)
            except BaseException as exc:
                self._fail(rest, exc)
                return
        except BaseException as exc:
            self._fail(group, exc)
            return
        for job, result in results:
            job.future.set_result(result)

    def _optimistic(self, group: list[_Job]) -> list[tuple[_Job, Any]]:
        done: list[tuple[_Job, Any]] = []
        with self._db.write() as session:
            deferred = session.info[DEFERRED_KEY] = DeferredWrites()
            try:
                for job in group:
                    try:
                        done.append((job, job.context.run(job.work, session)))
                    except OperationalError:
                        raise  # the database, not the job: the whole group fails with ServiceUnavailable
                    except Exception as exc:
                        raise _JobFailed(job, exc) from exc
                deferred.flush(session)
            finally:
                session.info.pop(DEFERRED_KEY, None)
        return done

    def _careful(self, group: list[_Job]) -> list[tuple[_Job, Any]]:
        done: list[tuple[_Job, Any]] = []
        if not group:
            return done
        with self._db.write() as session:
            for job in group:
                try:
                    with session.begin_nested():
                        result = job.context.run(job.work, session)
                except OperationalError:
                    raise
                except Exception as exc:  # its savepoint is rolled back; the others go on
                    job.future.set_exception(exc)
                else:
                    done.append((job, result))
        return done

    @staticmethod
    def _fail(group: list[_Job], exc: BaseException) -> None:
        # Nothing of this group was committed: every job still waiting learns so (never a 201 without a commit).
        for job in group:
            if not job.future.done():
                job.future.set_exception(exc)
        if not isinstance(exc, Exception):
            raise exc


class _JobFailed(Exception):
    def __init__(self, job: _Job, error: Exception) -> None:
        super().__init__(str(error))
        self.job = job
        self.error = error
