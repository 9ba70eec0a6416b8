"""Several writers append to one bilateral's log at once on PostgreSQL: sequence numbers stay unique and gap-free
and the stored root equals the root recomputed from the leaves."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from client.live_server import order_body
from sqlmodel import col, select

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import DEMO_BUYER_TOKEN, Settings
from sonata_dlt.sonata.ordering.orders import create_order
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.log import Bilateral, LogLeaf
from sonata_dlt.transparency.merkle import MemoryTree, root_from_frontier
from sonata_dlt.verifiable_log import proofs as log_proofs
from sonata_dlt.verifiable_log.recording import split_frontier
from tests.verifiable.conftest import append_changes

pytestmark = pytest.mark.postgres

THREADS = 6
PROCESSES = 3
EACH = 25


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings.load(database_url=url, data_dir=tmp_path / "data", demo=True)


def _process_writer(url: str, data_dir: str, name: str) -> None:
    runtime = start_runtime(Settings.load(database_url=url, data_dir=data_dir, demo=True), create_schema=False)
    try:
        append_changes(runtime, runtime.parties.bilaterals[0], EACH, resource=name)
    finally:
        runtime.close()


def _check_log(runtime: Runtime, expected: int) -> None:
    bilateral = runtime.parties.bilaterals[0]
    with runtime.db.read() as session:
        leaves = session.exec(select(LogLeaf).where(LogLeaf.bilateral_id == bilateral.id).order_by(col(LogLeaf.seq)))
        reference = MemoryTree()
        seqs = []
        for leaf in leaves:
            seqs.append(leaf.seq)
            reference.append(leaf.record)
        assert seqs == list(range(expected))  # unique and gap-free
        head = session.get(Bilateral, bilateral.id)
        assert head is not None and head.log_size == expected
        assert root_from_frontier(split_frontier(head.frontier)) == reference.root()
        assert log_proofs.root_at(session, bilateral.id, expected) == reference.root()
        for size in (1, expected // 3, expected - 1):
            assert log_proofs.root_at(session, bilateral.id, size) == reference.root(size)


def test_threads_append_gap_free(postgres_url: str, tmp_path: Path) -> None:
    runtime = start_runtime(_settings(postgres_url, tmp_path))
    try:
        bilateral = runtime.parties.bilaterals[0]
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda n: append_changes(runtime, bilateral, EACH, resource=f"t{n}"), range(THREADS)))
        _check_log(runtime, THREADS * EACH)
    finally:
        runtime.close()


def test_processes_and_threads_append_gap_free(postgres_url: str, tmp_path: Path) -> None:
    runtime = start_runtime(_settings(postgres_url, tmp_path))
    try:
        bilateral = runtime.parties.bilaterals[0]
        context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited connections
        processes = [
            context.Process(target=_process_writer, args=(postgres_url, str(tmp_path / "data"), f"p{n}"))
            for n in range(PROCESSES)
        ]
        for process in processes:
            process.start()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda n: append_changes(runtime, bilateral, EACH, resource=f"t{n}"), range(2)))
        for process in processes:
            process.join(timeout=120)
            assert process.exitcode == 0
        _check_log(runtime, (PROCESSES + 2) * EACH)
    finally:
        runtime.close()


def test_concurrent_order_creates_never_deadlock(postgres_url: str, tmp_path: Path) -> None:
    """A create inserts rows that reference its bilateral (taking KEY SHARE on it) before it locks the log head.
    Two creates upgrading that to FOR UPDATE deadlocked each other; the log head lock is NO KEY UPDATE."""
    runtime = start_runtime(_settings(postgres_url, tmp_path))
    try:
        buyer = runtime.parties.authenticate(f"Bearer {DEMO_BUYER_TOKEN}")
        with ThreadPoolExecutor(THREADS) as pool:
            orders = list(pool.map(lambda n: create_order(runtime, buyer, order_body(n)), range(THREADS * EACH)))
        assert len({order["id"] for order in orders}) == THREADS * EACH
        _check_log(runtime, THREADS * EACH)
    finally:
        runtime.close()
