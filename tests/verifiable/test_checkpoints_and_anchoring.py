"""The cutter cuts by size and by time; anchoring queues while the ledger is down and catches up after."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import LedgerUnavailable
from sonata_dlt.ledger.base import AnchorReceipt
from sonata_dlt.settings import Settings
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.checkpoints import Checkpoint
from sonata_dlt.verifiable_log import anchoring, checkpoints
from sonata_dlt.verifiable_log.anchoring import LEDGER
from sonata_dlt.verifiable_log.keyring import KEYRING
from tests.verifiable.conftest import BASE


def _sizes(runtime: Runtime) -> list[int]:
    with runtime.db.read() as session:
        return list(session.exec(select(Checkpoint.size).order_by(col(Checkpoint.size))).all())


def test_host_key_is_generated_private_and_reused(settings: Settings, runtime: Runtime) -> None:
    path = settings.resolved_host_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = start_runtime(settings)
    try:
        assert again.components[KEYRING].host_vkey == runtime.components[KEYRING].host_vkey
    finally:
        again.close()


def test_cutter_cuts_by_size_not_before(runtime: Runtime, record: Callable[..., None]) -> None:
    keyring = runtime.components[KEYRING]
    record(3)
    assert checkpoints.cut_due(runtime.db, keyring, every_leaves=4, every_seconds=3600) == []
    record(1)
    assert [row.size for row in checkpoints.cut_due(runtime.db, keyring, every_leaves=4, every_seconds=3600)] == [4]
    assert checkpoints.cut_due(runtime.db, keyring, every_leaves=4, every_seconds=3600) == []


def test_cutter_cuts_by_time(runtime: Runtime, record: Callable[..., None]) -> None:
    keyring = runtime.components[KEYRING]
    record(1)
    assert checkpoints.cut_due(runtime.db, keyring, every_leaves=1000, every_seconds=3600) == []
    # every_seconds=0.000001 stands for "the interval has passed" without sleeping in the test.
    assert [row.size for row in checkpoints.cut_due(runtime.db, keyring, every_leaves=1000, every_seconds=1e-6)] == [1]
    record(1)
    assert checkpoints.cut_due(runtime.db, keyring, every_leaves=1000, every_seconds=3600) == []
    assert [row.size for row in checkpoints.cut_due(runtime.db, keyring, every_leaves=1000, every_seconds=1e-6)] == [2]
    assert _sizes(runtime) == [1, 2]


class SwitchableLedger:
    """A ledger backend whose availability the test controls; it records what it anchored."""

    name = "switchable"

    def __init__(self) -> None:
        self.up = True
        self.anchored: list[tuple[str, int, bytes]] = []

    def anchor(self, origin: str, size: int, root_hash: bytes) -> AnchorReceipt:
        if not self.up:
            raise LedgerUnavailable("switched off by the test")
        self.anchored.append((origin, size, root_hash))
        return AnchorReceipt("switchable", origin, size, root_hash, {"sequence": len(self.anchored)}, datetime.now(UTC))


def _make_due_now(runtime: Runtime) -> None:
    """Skip the backoff wait (the worker would simply wait for it)."""
    with runtime.db.write() as session:
        for row in session.exec(select(Checkpoint).where(col(Checkpoint.anchored).is_(False))).all():
            row.next_anchor_at = datetime(2000, 1, 1, tzinfo=UTC)
            session.add(row)


def test_anchoring_queues_while_the_ledger_is_down(
    runtime: Runtime, record: Callable[..., None], api: Any, buyer_headers: Any
) -> None:
    ledger = SwitchableLedger()
    keyring = runtime.components[KEYRING]
    record(2)
    checkpoints.cut_now(runtime.db, keyring, runtime.parties.bilaterals[0])
    ledger.up = False
    assert anchoring.anchor_due(runtime.db, ledger) == 0
    record(2)
    checkpoints.cut_now(runtime.db, keyring, runtime.parties.bilaterals[0])
    with runtime.db.read() as session:
        first = session.get(Checkpoint, (runtime.parties.bilaterals[0].id, 2))
        assert first is not None and first.anchor_attempts == 1 and not first.anchored
        assert first.next_anchor_at > datetime.now(UTC)  # backed off
        assert first.last_anchor_error == "switched off by the test"
    assert api.get(f"{BASE}/checkpoint/latest", headers=buyer_headers).status_code == 200  # the API keeps serving

    ledger.up = True
    _make_due_now(runtime)
    assert anchoring.anchor_due(runtime.db, ledger) == 2
    assert [size for _, size, _ in ledger.anchored] == [2, 4]  # oldest first, one anchor per checkpoint
    assert anchoring.anchor_due(runtime.db, ledger) == 0
    receipts = api.get(f"{BASE}/anchorReceipt", headers=buyer_headers).json()
    assert [receipt["treeSize"] for receipt in receipts] == [4, 2]
    latest = api.get(f"{BASE}/checkpoint/latest", headers=buyer_headers).json()
    assert latest["anchorReceipt"]["receipt"]["reference"] == {"sequence": 2}


def test_default_local_ledger_anchors_and_verifies(runtime: Runtime, record: Callable[..., None]) -> None:
    backend = runtime.components[LEDGER]
    record(3)
    view, _ = checkpoints.cut_now(runtime.db, runtime.components[KEYRING], runtime.parties.bilaterals[0])
    assert anchoring.anchor_due(runtime.db, backend) == 1
    stored = anchoring.receipts(runtime.db, runtime.parties.bilaterals[0].id, offset=0, limit=10)[0]
    receipt = AnchorReceipt.from_json(stored[0][0].receipt)
    assert receipt.root_hash == view.root_hash and receipt.size == 3
    backend.verify_anchor(receipt)
    assert Path(runtime.settings.data_dir, "ledger", "anchors.jsonl").is_file()
