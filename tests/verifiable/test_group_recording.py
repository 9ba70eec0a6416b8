"""Creates that share a group transaction each get their own leaf; the log stays gap-free, its stored subtrees
serve proofs, and a refused create in the group leaves no trace."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from client.live_server import order_body
from sqlmodel import Session, col, select

from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Unprocessable
from sonata_dlt.settings import DEMO_BUYER_TOKEN, Settings
from sonata_dlt.sonata.ordering.orders import place_order
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.log import LogLeaf
from sonata_dlt.storage.ordering import ProductOrderItemDates, ProductOrderRow
from sonata_dlt.transparency.merkle import MemoryTree, verify_inclusion
from sonata_dlt.verifiable_log import proofs as log_proofs
from sonata_dlt.verifiable_log.recording import Change, lock_log_head, record_change


@pytest.fixture
def open_runtime(make_settings: Callable[..., Settings]) -> Iterator[Runtime]:
    """A runtime that accepts any product type (the orders here are about the log, not the catalogue)."""
    started = start_runtime(make_settings(product_schema_dir=None))
    try:
        yield started
    finally:
        started.close()


def test_grouped_creates_get_gap_free_leaves_and_working_proofs(open_runtime: Runtime) -> None:
    runtime = open_runtime
    bilateral = runtime.parties.bilaterals[0]
    buyer = runtime.parties.authenticate(f"Bearer {DEMO_BUYER_TOKEN}")
    bad = order_body(0)
    bad["productOrderItem"][0]["product"]["id"] = "not-allowed-on-add"
    bodies: list[dict[str, Any]] = [order_body(n) for n in range(1, 40)]
    bodies[7] = bad

    async def place_all() -> list[Any]:  # one event-loop turn: the creates reach the writer as one group
        return await asyncio.gather(*(place_order(runtime, buyer, body) for body in bodies), return_exceptions=True)

    outcomes = asyncio.run(place_all())
    assert isinstance(outcomes[7], Unprocessable)
    created = [json.loads(outcome)["id"] for number, outcome in enumerate(outcomes) if number != 7]
    with runtime.db.read() as session:
        leaves = list(
            session.exec(select(LogLeaf).where(LogLeaf.bilateral_id == bilateral.id).order_by(col(LogLeaf.seq)))
        )
        assert [leaf.seq for leaf in leaves] == list(range(len(created)))
        assert sorted(leaf.resource_id for leaf in leaves) == sorted(created)
        assert sorted(session.exec(select(ProductOrderRow.id))) == sorted(created)
        # Rows deferred to the group's end went in with it: one item-date row per order (one item each).
        assert sorted(session.exec(select(ProductOrderItemDates.order_id))) == sorted(created)
        tree = MemoryTree()
        for leaf in leaves:
            tree.append(leaf.record)
        size = len(leaves)
        assert log_proofs.log_size(session, bilateral.id) == size
        for tree_size in range(1, size + 1):
            assert log_proofs.root_at(session, bilateral.id, tree_size) == tree.root(tree_size)
        root = tree.root()
        served = {json.loads(outcome)["id"]: outcome for number, outcome in enumerate(outcomes) if number != 7}
        for leaf in leaves:
            # The 201 body is the document the leaf fingerprints.
            assert json.loads(leaf.record)["stateHash"] == hashlib.sha256(served[leaf.resource_id]).hexdigest()
            proof = log_proofs.inclusion(session, bilateral.id, leaf.seq, size)
            verify_inclusion(leaf.leaf_hash, leaf.seq, size, proof, root)


def test_the_log_head_read_in_a_group_counts_its_deferred_leaves(runtime: Runtime, bilateral: BilateralRef) -> None:
    def work(session: Session) -> int:
        for number in range(3):
            change = Change("productOrder", f"o-{number}", 1, "created", {"id": f"o-{number}"})
            record_change(session, bilateral.id, change, actor="buyer:BUYER-1")
        return lock_log_head(session, bilateral.id).log_size

    assert runtime.db.submit(work).result(30) == 3
    with runtime.db.read() as session:
        assert log_proofs.log_size(session, bilateral.id) == 3
        assert len(list(session.exec(select(LogLeaf.seq)))) == 3
