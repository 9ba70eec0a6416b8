"""Roots and proofs from storage equal the in-memory reference tree, for every size and index we try."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import col, select

from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.log import LogLeaf
from sonata_dlt.transparency.merkle import EMPTY_ROOT, MemoryTree, verify_consistency, verify_inclusion
from sonata_dlt.verifiable_log import proofs as log_proofs
from tests.mirror import mirror_settings
from tests.verifiable.conftest import append_changes

SIZE = 70  # crosses several powers of two; every (old, new) pair below it is checked


@pytest.fixture
def stored(runtime: Runtime, bilateral: BilateralRef) -> MemoryTree:
    append_changes(runtime, bilateral, SIZE)
    reference = MemoryTree()
    with runtime.db.read() as session:
        leaves = session.exec(select(LogLeaf).where(LogLeaf.bilateral_id == bilateral.id).order_by(col(LogLeaf.seq)))
        for leaf in leaves:
            reference.append(leaf.record)
    assert reference.size == SIZE
    return reference


def test_roots_at_every_size_match_the_reference(runtime: Runtime, bilateral: BilateralRef, stored: MemoryTree) -> None:
    with runtime.db.read() as session:
        assert log_proofs.root_at(session, bilateral.id, 0) == EMPTY_ROOT
        for size in range(1, SIZE + 1):
            assert log_proofs.root_at(session, bilateral.id, size) == stored.root(size), size


def test_inclusion_proofs_match_and_verify(runtime: Runtime, bilateral: BilateralRef, stored: MemoryTree) -> None:
    with runtime.db.read() as session:
        for size in (1, 2, 3, 7, 8, 9, 31, 32, 33, 64, SIZE):
            for index in range(size):
                proof = log_proofs.inclusion(session, bilateral.id, index, size)
                assert proof == stored.inclusion_proof(index, size), (index, size)
                verify_inclusion(stored.leaf_hash(index), index, size, proof, stored.root(size))


def test_consistency_proofs_match_and_verify(runtime: Runtime, bilateral: BilateralRef, stored: MemoryTree) -> None:
    with runtime.db.read() as session:
        for new in range(1, SIZE + 1):
            for old in range(0, new + 1):
                proof = log_proofs.consistency(session, bilateral.id, old, new)
                assert proof == stored.consistency_proof(old, new), (old, new)
                verify_consistency(old, new, stored.root(old), stored.root(new), proof)


def test_stored_frontier_root_equals_recomputed_root(
    runtime: Runtime, bilateral: BilateralRef, stored: MemoryTree
) -> None:
    from sonata_dlt.storage.log import Bilateral
    from sonata_dlt.transparency.merkle import root_from_frontier
    from sonata_dlt.verifiable_log.recording import split_frontier

    with runtime.db.read() as session:
        head = session.get(Bilateral, bilateral.id)
        assert head is not None and head.log_size == SIZE
        assert root_from_frontier(split_frontier(head.frontier)) == stored.root()


def test_a_missing_stored_node_is_reported_not_papered_over(
    runtime: Runtime, bilateral: BilateralRef, stored: MemoryTree
) -> None:
    from sonata_dlt.storage.log import MerkleNode

    with runtime.db.write() as session:
        node = session.get(MerkleNode, (bilateral.id, 5, 0))
        assert node is not None
        session.delete(node)
    with runtime.db.read() as session, pytest.raises(LookupError, match="lacks stored subtrees"):
        log_proofs.root_at(session, bilateral.id, 40)  # needs (5, 0) and (3, 4)


def test_proofs_read_only_their_own_bilaterals_nodes(make_settings: Callable[..., Settings]) -> None:
    settings = mirror_settings(make_settings)
    runtime = start_runtime(settings)
    try:
        first, second = runtime.parties.bilaterals
        # Same sizes, different leaves: any node read from the wrong log would change a proof.
        append_changes(runtime, first, 21, resource="first")
        append_changes(runtime, second, 21, resource="second")
        with runtime.db.read() as session:
            for ref in (first, second):
                reference = MemoryTree()
                for leaf in session.exec(
                    select(LogLeaf).where(LogLeaf.bilateral_id == ref.id).order_by(col(LogLeaf.seq))
                ):
                    reference.append(leaf.record)
                assert log_proofs.root_at(session, ref.id, 21) == reference.root()
                for index in range(21):
                    assert log_proofs.inclusion(session, ref.id, index, 21) == reference.inclusion_proof(index), index
                for old in range(22):
                    assert log_proofs.consistency(session, ref.id, old, 21) == reference.consistency_proof(old), old
    finally:
        runtime.close()
