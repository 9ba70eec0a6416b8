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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine

from sonata_dlt.errors import ServiceUnavailable

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

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction: commit on success, roll back on any exception."""
        lock = self._writer_lock or contextlib.nullcontext()
        try:
            with lock, Session(self.write_engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as exc:
            raise ServiceUnavailable("the database is unavailable; nothing was changed") from exc

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
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
