"""RFC 9162 Merkle trees: published vectors, an exhaustive check against the RFC's recursive definitions, the
plan-then-compute contract storage relies on, tampering, and a cross-check with pymerkle 7.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from hashlib import sha256

import pymerkle
import pytest

from sonata_dlt.errors import VerificationError
from sonata_dlt.transparency.merkle import (
    EMPTY_ROOT,
    LEAF_PREFIX,
    NODE_PREFIX,
    MemoryTree,
    NodeId,
    append_leaf,
    consistency_proof,
    consistency_proof_node_ids,
    frontier_node_ids,
    inclusion_proof,
    inclusion_proof_node_ids,
    leaf_hash,
    node_hash,
    root_from_frontier,
    root_hash,
    root_node_ids,
    verify_consistency,
    verify_inclusion,
)

# Reference data from github.com/transparency-dev/merkle (the Trillian / certificate-transparency lineage):
# testonly/constants.go (LeafInputs, RootHashes) and proof/verify_test.go (inclusionProofs, consistencyProofs).
# Their inclusion vectors number leaves from 1; they are converted to 0-based indices here.
LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (2, 3, ["fac54203"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
]
FULL = {
    "96a296d2": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf2": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "bc1a0643": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca854ea1": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "fac54203": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "6e340b9c": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0ebc5d34": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "b08693ec": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]
EXHAUSTIVE_LIMIT = 64


def hashes(short: list[str]) -> list[bytes]:
    return [bytes.fromhex(FULL[name]) for name in short]


def reference_tree() -> MemoryTree:
    tree = MemoryTree()
    for data in LEAVES:
        tree.append(data)
    return tree


# --- RFC 9162 §2.1, transcribed recursively, as an independent oracle -----------------------------------------


def mth(entries: Sequence[bytes]) -> bytes:
    if not entries:
        return sha256(b"").digest()
    if len(entries) == 1:
        return sha256(LEAF_PREFIX + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return sha256(NODE_PREFIX + mth(entries[:k]) + mth(entries[k:])).digest()


def rfc_path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*rfc_path(m, entries[:k]), mth(entries[k:])]
    return [*rfc_path(m - k, entries[k:]), mth(entries[:k])]


def rfc_subproof(m: int, entries: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if whole else [mth(entries)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*rfc_subproof(m, entries[:k], whole), mth(entries[k:])]
    return [*rfc_subproof(m - k, entries[k:], False), mth(entries[:k])]


def rfc_proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    return rfc_subproof(m, entries, True) if 0 < m < len(entries) else []


@pytest.fixture(scope="module")
def big() -> tuple[list[bytes], MemoryTree]:
    entries = [b"leaf-%d" % i for i in range(EXHAUSTIVE_LIMIT)]
    tree = MemoryTree()
    for data in entries:
        tree.append(data)
    return entries, tree


# --- published vectors ---------------------------------------------------------------------------------------


def test_prefixes_and_empty_root() -> None:
    assert LEAF_PREFIX == b"\x00"
    assert NODE_PREFIX == b"\x01"
    assert EMPTY_ROOT == ROOTS[0]
    assert leaf_hash(b"") == ROOTS[1]
    assert node_hash(leaf_hash(b""), leaf_hash(b"\x00")) == ROOTS[2]


def test_reference_roots_for_every_size() -> None:
    tree = reference_tree()
    assert [tree.root(size) for size in range(len(LEAVES) + 1)] == ROOTS
    assert tree.root() == ROOTS[8]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_reference_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    tree = reference_tree()
    assert tree.inclusion_proof(index, size) == hashes(proof)
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, hashes(proof), ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_reference_consistency_proofs(old: int, new: int, proof: list[str]) -> None:
    tree = reference_tree()
    assert tree.consistency_proof(old, new) == hashes(proof)
    verify_consistency(old, new, ROOTS[old], ROOTS[new], hashes(proof))


# --- exhaustive agreement with the RFC definitions -----------------------------------------------------------


def test_roots_and_proofs_match_the_rfc_definitions(big: tuple[list[bytes], MemoryTree]) -> None:
    entries, tree = big
    for size in range(EXHAUSTIVE_LIMIT + 1):
        assert tree.root(size) == mth(entries[:size])
        for index in range(size):
            assert tree.inclusion_proof(index, size) == rfc_path(index, entries[:size])
        for old in range(size + 1):
            assert tree.consistency_proof(old, size) == rfc_proof(old, entries[:size])


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 0x08]) + value[1:]


def inclusion_fails(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    with pytest.raises(VerificationError):
        verify_inclusion(leaf, index, size, proof, root)


def consistency_fails(old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> None:
    with pytest.raises(VerificationError):
        verify_consistency(old, new, old_root, new_root, proof)


def test_every_inclusion_proof_verifies_and_every_tampering_fails(big: tuple[list[bytes], MemoryTree]) -> None:
    _, tree = big
    for size in range(1, EXHAUSTIVE_LIMIT + 1):
        root = tree.root(size)
        for index in range(size):
            leaf = tree.leaf_hash(index)
            proof = tree.inclusion_proof(index, size)
            verify_inclusion(leaf, index, size, proof, root)
            for position in range(len(proof)):
                tampered = list(proof)
                tampered[position] = flip(proof[position])
                inclusion_fails(leaf, index, size, tampered, root)
            inclusion_fails(flip(leaf), index, size, proof, root)
            inclusion_fails(leaf, index, size, proof, flip(root))
            inclusion_fails(leaf, index, size, [*proof, root], root)
            if proof:
                inclusion_fails(leaf, index, size, proof[:-1], root)
            for other in {index - 1, index + 1} & set(range(size)):
                inclusion_fails(leaf, other, size, proof, root)
            # A size alone is not bound by an audit path (the signed checkpoint binds it to the root), so only
            # sizes that exclude the leaf are checked here.
            inclusion_fails(leaf, index, index, proof, root)


def test_every_consistency_proof_verifies_and_every_tampering_fails(big: tuple[list[bytes], MemoryTree]) -> None:
    _, tree = big
    for new in range(EXHAUSTIVE_LIMIT + 1):
        new_root = tree.root(new)
        for old in range(new + 1):
            old_root = tree.root(old)
            proof = tree.consistency_proof(old, new)
            verify_consistency(old, new, old_root, new_root, proof)
            for position in range(len(proof)):
                tampered = list(proof)
                tampered[position] = flip(proof[position])
                consistency_fails(old, new, old_root, new_root, tampered)
            if new > 0:
                consistency_fails(old, new, flip(old_root), new_root, proof)
            if old > 0:
                consistency_fails(old, new, old_root, flip(new_root), proof)
            consistency_fails(old, new, old_root, new_root, [*proof, new_root])
            if proof:
                consistency_fails(old, new, old_root, new_root, proof[:-1])
            if 0 < old < new:
                consistency_fails(old, new, new_root, old_root, proof)
                for other in {old - 1, old + 1} & set(range(1, new)):
                    consistency_fails(other, new, old_root, new_root, proof)


# --- argument validation and messages ------------------------------------------------------------------------


def test_inclusion_errors_are_precise() -> None:
    tree = MemoryTree()
    for i in range(12):
        tree.append(b"%d" % i)
    proof = tree.inclusion_proof(5, 12)
    with pytest.raises(
        VerificationError, match=r"^inclusion proof for leaf 5 of 12 does not lead to the checkpoint root$"
    ):
        verify_inclusion(tree.leaf_hash(5), 5, 12, proof, tree.root(11))
    with pytest.raises(VerificationError, match="leaf index 12 is outside a tree of size 12"):
        verify_inclusion(tree.leaf_hash(5), 12, 12, proof, tree.root())
    with pytest.raises(VerificationError, match="leaf index -1 is outside"):
        verify_inclusion(tree.leaf_hash(5), -1, 12, proof, tree.root())
    with pytest.raises(VerificationError, match="has 3 hashes, a valid one has 4"):
        verify_inclusion(tree.leaf_hash(5), 5, 12, proof[:3], tree.root())
    with pytest.raises(VerificationError, match="element 1 is 31 bytes"):
        verify_inclusion(tree.leaf_hash(5), 5, 12, [proof[0], proof[1][:31], *proof[2:]], tree.root())
    with pytest.raises(VerificationError, match="root is 0 bytes"):
        verify_inclusion(tree.leaf_hash(5), 5, 12, proof, b"")


def test_consistency_errors_are_precise() -> None:
    tree = MemoryTree()
    for i in range(12):
        tree.append(b"%d" % i)
    proof = tree.consistency_proof(5, 12)
    with pytest.raises(VerificationError, match="the old size must be between 0 and the new size"):
        verify_consistency(12, 5, tree.root(12), tree.root(5), proof)
    with pytest.raises(VerificationError, match=r"^consistency proof from size 5 to 12 does not lead to the old"):
        verify_consistency(5, 12, tree.root(4), tree.root(12), proof)
    with pytest.raises(VerificationError, match="does not lead to the new checkpoint root"):
        verify_consistency(5, 12, tree.root(5), tree.root(11), proof)
    with pytest.raises(VerificationError, match="has 0 hashes, a valid one has"):
        verify_consistency(5, 12, tree.root(5), tree.root(12), [])
    with pytest.raises(VerificationError, match="same size have different roots"):
        verify_consistency(5, 5, tree.root(5), tree.root(6), [])
    with pytest.raises(VerificationError, match="must be empty"):
        verify_consistency(5, 5, tree.root(5), tree.root(5), [tree.root(5)])
    with pytest.raises(VerificationError, match="not the root of the empty tree"):
        verify_consistency(0, 5, tree.root(1), tree.root(5), [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 12, EMPTY_ROOT, tree.root(), [])


def test_plans_reject_impossible_arguments() -> None:
    with pytest.raises(ValueError, match="leaf 3 is not in a tree of size 3"):
        inclusion_proof_node_ids(3, 3)
    with pytest.raises(ValueError, match="from size 4 to size 3"):
        consistency_proof_node_ids(4, 3)
    with pytest.raises(ValueError, match="must not be negative"):
        frontier_node_ids(-1)


# --- the storage contract: plan, one batched read, compute -----------------------------------------------------


def test_appends_emit_exactly_the_perfect_subtrees_and_frontiers_rebuild_from_storage() -> None:
    stored: dict[NodeId, bytes] = {}
    frontier: list[bytes] = []
    for size in range(200):
        hashed = leaf_hash(b"entry %d" % size)
        frontier, completed = append_leaf(frontier, size, hashed)
        stored[(0, size)] = hashed
        for (level, index), node in completed:
            assert level >= 1
            assert (index + 1) << level == size + 1  # the subtree ends with the leaf just appended
            assert (level, index) not in stored
            stored[(level, index)] = node
        assert [stored[node_id] for node_id in frontier_node_ids(size + 1)] == frontier
        assert root_from_frontier(frontier) == root_hash(size + 1, stored)
    expected_nodes = sum(200 >> level for level in range(8))  # every perfect subtree of [0, 200)
    assert len(stored) == expected_nodes


def test_proofs_are_computed_from_only_the_planned_nodes(big: tuple[list[bytes], MemoryTree]) -> None:
    _, tree = big
    for size in range(1, EXHAUSTIVE_LIMIT + 1):
        planned_root = tree.nodes(root_node_ids(size))
        assert root_hash(size, planned_root) == tree.root(size)
        for index in range(size):
            planned = tree.nodes(inclusion_proof_node_ids(index, size))
            assert inclusion_proof(index, size, planned) == tree.inclusion_proof(index, size)
        for old in range(size + 1):
            planned = tree.nodes(consistency_proof_node_ids(old, size))
            assert consistency_proof(old, size, planned) == tree.consistency_proof(old, size)


def test_missing_nodes_are_named() -> None:
    with pytest.raises(ValueError, match=r"perfect subtree \(0, 1\) is needed"):
        inclusion_proof(0, 2, {})


@pytest.mark.parametrize("seed", range(5))
def test_plans_stay_logarithmic_for_huge_trees(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randrange(2**40, 2**48)
    bound = 2 * size.bit_length() + 2
    assert len(root_node_ids(size)) <= size.bit_length()
    for _ in range(20):
        index = rng.randrange(size)
        ids = inclusion_proof_node_ids(index, size)
        assert len(ids) <= bound
        assert len(set(ids)) == len(ids)
        old = rng.randrange(1, size)
        ids = consistency_proof_node_ids(old, size)
        assert len(ids) <= bound
        assert len(set(ids)) == len(ids)
        for level, node_index in ids:
            assert (node_index + 1) << level <= size  # only complete subtrees, which storage has


def test_append_leaf_rejects_a_frontier_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="a frontier of size 3 has 2 hashes, got 1"):
        append_leaf([EMPTY_ROOT], 3, EMPTY_ROOT)
    with pytest.raises(ValueError, match="leaf hash must be 32 bytes"):
        append_leaf([], 0, b"short")


def test_memory_tree_bounds() -> None:
    tree = MemoryTree()
    assert tree.root() == EMPTY_ROOT
    assert len(tree) == 0
    assert tree.append(b"a") == 0
    with pytest.raises(ValueError, match=r"size 2 is outside 0\.\.1"):
        tree.root(2)
    with pytest.raises(KeyError):
        tree.node((1, 0))


# --- pymerkle 7 cross-check ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_matches_pymerkle(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randrange(2, 700)
    ours = MemoryTree()
    theirs = pymerkle.InmemoryTree(algorithm="sha256")
    for _ in range(size):
        data = rng.randbytes(rng.randrange(0, 40))
        ours.append(data)
        theirs.append_entry(data)
    assert ours.root() == theirs.get_root()
    for _ in range(25):
        later = rng.randrange(1, size + 1)
        assert ours.root(later) == theirs.get_root(later)
        index = rng.randrange(later)
        # pymerkle numbers leaves from 1 and puts the leaf hash in front of the RFC 9162 audit path.
        inclusion = theirs.prove_inclusion(index + 1, later)
        assert inclusion.path == [ours.leaf_hash(index), *ours.inclusion_proof(index, later)]
        prior = rng.randrange(1, later + 1)
        # pymerkle 7 lays consistency paths out its own way (it descends right when the old size sits exactly
        # on a split, where RFC 9162 descends left), so its paths are not RFC 9162 proofs and cannot be compared
        # element by element. Instead: its proof must tie our two roots together, and ours must verify.
        consistency = theirs.prove_consistency(prior, later)
        assert consistency.retrieve_prior_state() == ours.root(prior)
        consistency.verify(ours.root(prior), ours.root(later), prior_size=prior, later_size=later)
        verify_consistency(prior, later, ours.root(prior), ours.root(later), ours.consistency_proof(prior, later))
