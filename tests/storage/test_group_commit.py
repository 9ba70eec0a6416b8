"""Group commit (``Database.submit``): jobs queued together share one transaction, yet each succeeds or fails alone,
and no future resolves with a result before the transaction holding it has committed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from sonata_dlt.errors import ServiceUnavailable
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.group_commit import GroupWriter, deferred_writes
from sonata_dlt.storage.log import Bilateral


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.create_schema()
    try:
        yield db
    finally:
        db.dispose()


def insert(name: str, *, fail: bool = False) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        session.add(Bilateral(id=name, buyer_id=f"b-{name}", seller_id="s", origin=f"o/{name}"))
        session.flush()
        if fail:
            raise ValueError(f"{name} refuses")
        return name

    return work


def stored(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.exec(select(Bilateral.id).order_by(col(Bilateral.id))))


def held_group(db: Database, jobs: list[Callable[[Session], str]]) -> list[Future[str]]:
    """Queue ``jobs`` while the writer is busy, so they run as one group after it."""
    release = threading.Event()
    started = threading.Event()

    def blocker(_session: Session) -> None:
        started.set()
        release.wait(10)

    first = db.submit(blocker)
    assert started.wait(10)
    futures = [db.submit(job) for job in jobs]
    release.set()
    first.result(10)
    return futures


def test_a_failing_job_fails_alone(database: Database) -> None:
    futures = held_group(database, [insert("a"), insert("b", fail=True), insert("c")])
    assert futures[0].result(10) == "a"
    with pytest.raises(ValueError, match="b refuses"):
        futures[1].result(10)
    assert futures[2].result(10) == "c"
    assert stored(database) == ["a", "c"]


def test_a_second_failure_in_the_retried_group_fails_alone(database: Database) -> None:
    futures = held_group(database, [insert("a", fail=True), insert("b"), insert("c", fail=True), insert("d")])
    assert [f.exception(10) is None for f in futures] == [False, True, False, True]
    assert stored(database) == ["b", "d"]


def test_nothing_resolves_as_committed_when_the_commit_fails(database: Database) -> None:
    class Broken:
        def flush(self, session: Session) -> None:
            raise RuntimeError("flush failed")

    def poison(session: Session) -> str:
        writes = deferred_writes(session)
        assert writes is not None  # the optimistic pass defers
        writes.get("broken", Broken, Broken)
        return "poison"

    futures = held_group(database, [insert("a"), poison, insert("c")])
    for future in futures:
        with pytest.raises(RuntimeError, match="flush failed"):
            future.result(10)
    assert stored(database) == []


def test_results_are_visible_once_resolved(database: Database) -> None:
    futures = [database.submit(insert(f"n{number:02d}")) for number in range(20)]
    for future in futures:
        name = future.result(10)
        with database.read() as session:
            assert session.get(Bilateral, name) is not None


def test_dispose_stops_the_writer(database_url: str) -> None:
    def writers() -> set[threading.Thread]:
        return {thread for thread in threading.enumerate() if thread.name == "sonata-group-writer"}

    db = Database(database_url)
    db.create_schema()
    before = writers()
    assert db.submit(insert("x")).result(10) == "x"
    assert len(writers() - before) == 1
    db.dispose()
    assert writers() - before == set()


def test_a_closed_writer_runs_what_was_queued_and_refuses_the_rest(database: Database) -> None:
    writer = GroupWriter(database.write)
    release = threading.Event()
    busy = writer.submit(lambda _session: release.wait(10))
    queued = writer.submit(insert("queued"))
    closing = threading.Thread(target=writer.close)
    closing.start()
    release.set()
    closing.join(10)
    assert busy.result(10) and queued.result(10) == "queued"  # accepted before the close: run, committed
    with pytest.raises(ServiceUnavailable):
        writer.submit(insert("late"))
    with pytest.raises(ServiceUnavailable):
        asyncio.run(writer.run(insert("late")))
    assert stored(database) == ["queued"]


def test_the_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite"
    db = Database(f"sqlite:///{path}")
    try:
        db.create_schema()
        with db.write() as session:
            autocheckpoint = session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert autocheckpoint == 0  # commits never checkpoint: the background thread does
        before = path.stat().st_size
        for number in range(50):
            db.submit(insert(f"w{number:02d}")).result(10)
        deadline = time.monotonic() + 10
        while path.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > before  # the committed pages reached the database file
    finally:
        db.dispose()
