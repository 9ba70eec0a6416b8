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
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine

from sonata_dlt.errors import ServiceUnavailable
from sonata_dlt.storage.group_commit import GroupWriter

try:
    import fcntl
except ImportError:  # not POSIX: processes sharing a database meet at SQLite's own lock
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
log = logging.getLogger("sonata_dlt.storage")

SQLITE_PRAGMAS = (
    # Takes effect only while the database file is still empty, so it comes before WAL mode. 16 KiB pages suit our
    # rows (JSON documents of about a kilobyte, bills of megabytes) better than the 4 KiB default: a billing run
    # writes a gigabyte of WAL, and four times fewer frames spend four times fewer write calls on it (measured:
    # 400,000 bill items in 16-17 s instead of 18-20 s). Databases created before keep their page size.
    "PRAGMA page_size=16384",
    "PRAGMA journal_mode=WAL",
    # NORMAL under WAL survives a process crash (SIGKILL) without losing committed transactions; only a power
    # loss can drop the last few. Use PostgreSQL where that matters.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
)


# A commit that crosses SQLite's auto-checkpoint threshold copies the WAL into the database file and fsyncs it, on
# the committing connection: tens of milliseconds, on the writer's critical path, every thousand pages. Our own
# connections turn that off and a background thread checkpoints instead (``WalCheckpointer``).
CHECKPOINT_INTERVAL = 0.2  # seconds between background WAL checkpoints


def _sqlite_engine(url: str, *, begin: str, background_checkpoints: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see the "begin" hook).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        if background_checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database:
    """Owns the engines for one database URL."""

    def __init__(self, url: str, *, checkpoint_wal: bool = True) -> None:
        """``checkpoint_wal=False`` leaves an on-disk SQLite WAL to another process's checkpointer (the server's,
        when this is its writer process)."""
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            on_disk = bool(parsed.database) and parsed.database != ":memory:"
            if on_disk:
                Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE", background_checkpoints=on_disk)
            self.read_engine = _sqlite_engine(url, begin="BEGIN", background_checkpoints=on_disk)
            self._checkpointer = WalCheckpointer(str(parsed.database)) if on_disk and checkpoint_wal else None
            self._writer_lock: WriterLock | None = WriterLock(str(parsed.database) if on_disk else None)
        else:
            if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
                url = str(parsed.set(drivername="postgresql+psycopg"))
            self.write_engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.write_engine
            self._writer_lock = None  # PostgreSQL locks rows, not the database
            self._checkpointer = None
        # Given to every write session (``Session.info``): switches of the layers above, such as log recording.
        self.session_info: dict[str, Any] = {}
        self._group: GroupWriter | None = None
        self._group_guard = threading.Lock()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction: commit on success, roll back on any exception."""
        lock = self._writer_lock or contextlib.nullcontext()
        try:
            with (
                lock,
                Session(self.write_engine, expire_on_commit=False, info=self.session_info) as session,
                session.begin(),
            ):
                yield session
        except OperationalError as exc:
            raise ServiceUnavailable("the database is unavailable; nothing was changed") from exc

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Run ``work(session)`` in a group write transaction (see ``storage.group_commit``); the future resolves
        with the result after the commit, or with the exception ``work`` raised (it changed nothing), or with
        ``ServiceUnavailable`` if the transaction could not commit."""
        return self._group_writer().submit(work)

    async def run_grouped(self, work: Callable[[Session], T]) -> T:
        """``submit`` for coroutines: the creates that arrive in one event-loop turn go to the writer together,
        and the writer wakes the loop once per group, not once per create."""
        return await self._group_writer().run(work)

    def _group_writer(self) -> GroupWriter:
        group = self._group
        if group is None:
            with self._group_guard:
                if self._group is None:
                    self._group = GroupWriter(self.write)
                group = self._group
        return group

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
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._writer_lock is not None:
            self._writer_lock.close()
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


class WriterLock:
    """SQLite's one writer at a time, queued for instead of polled for.

    Without it, writers wait in SQLite's busy handler, which sleeps and polls (1, 2, 5 ... 100 ms between tries):
    under load some wait for seconds while others get through. Threads of this process queue on a lock; processes
    on the same database file (the server and its writer process, or ``serve --workers N``) then queue on an
    advisory ``flock`` of ``<database>-writer.lock``, which the kernel hands over as soon as its holder lets go, and
    releases if the holder dies. Where ``flock`` does not exist, processes meet at SQLite's own lock as before.
    """

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.Lock()
        self._descriptor: int | None = None
        if database_path is not None and fcntl is not None:
            try:
                self._descriptor = os.open(f"{database_path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:  # a read-only directory, say: readers need no lock, writers meet at SQLite's
                log.warning("no writer lock file beside the database", extra={"error": str(exc)})

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._descriptor is None or fcntl is None:
            return
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX)  # waits without the GIL
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._descriptor is not None and fcntl is not None:
                fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        with self._threads:
            descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)


class WalCheckpointer:
    """Checkpoints a SQLite database's WAL from a background thread, off the writers' commits.

    ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection copies committed WAL frames into the database file
    without taking the write lock, so writers never wait for it; once everything is copied, the next writer starts
    the WAL over from its beginning, so the file stays bounded. Durability is unchanged: a commit is in the WAL
    either way. A failed checkpoint is logged and retried; it only leaves the WAL longer until the next one.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sonata-wal-checkpointer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL):
                try:
                    if connection is None:
                        connection = sqlite3.connect(self._path, timeout=30, isolation_level=None)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed; retrying", extra={"error": str(exc)})
                    if connection is not None:
                        connection.close()
                        connection = None
        finally:
            if connection is not None:
                connection.close()
