"""RFC 9162 §2.1 Merkle trees over perfect-subtree hashes, with plan-then-compute proofs.

Storage persists exactly the hashes of *perfect* subtrees: ``NodeId`` ``(level, index)`` is the hash of the
subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 is a leaf hash. A tree of any size
is fully described by them: the hash of a non-perfect subtree ``MTH(D[k:n])`` is the right fold of the perfect
subtrees of its compact range. So every operation comes in two steps: ``*_node_ids`` says which O(log n) nodes
are needed (one batched read), and the matching function computes the result from a mapping of those nodes,
without ever rebuilding the tree.

A *frontier* is the list of perfect-subtree hashes covering ``[0, size)``, largest first: one per set bit of
``size``. It is all an appender needs to keep.

Verification follows the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 literally and raises
``VerificationError``; it never returns a bool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha256

from sonata_dlt.errors import VerificationError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()

NodeId = tuple[int, int]

# Copying a context that has already absorbed the prefix skips OpenSSL 3's per-call digest set-up; on the
# append-and-root path, which is nothing but short hashes, that is about a quarter faster than sha256(...).
_LEAF_CONTEXT = sha256(LEAF_PREFIX)
_NODE_CONTEXT = sha256(NODE_PREFIX)


def leaf_hash(data: bytes) -> bytes:
    context = _LEAF_CONTEXT.copy()
    context.update(data)
    return context.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    context = _NODE_CONTEXT.copy()
    context.update(left + right)
    return context.digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_size(size: int) -> None:
    if size < 0:
        raise ValueError(f"tree size must not be negative, got {size}")


# --- frontier: appending and roots ---------------------------------------------------------------------------


def frontier_node_ids(size: int) -> list[NodeId]:
    """The perfect subtrees of the compact range ``[0, size)``, largest first."""
    _check_size(size)
    return [(level, (size >> level) - 1) for level in range(size.bit_length() - 1, -1, -1) if (size >> level) & 1]


def root_node_ids(size: int) -> list[NodeId]:
    """Nodes that ``root_hash`` needs: the frontier of ``size``."""
    return frontier_node_ids(size)


def _push(frontier: list[bytes], size: int, leaf: bytes, completed: list[tuple[NodeId, bytes]] | None) -> None:
    """Append in place; shared by ``append_leaf`` and ``MemoryTree`` so both run the very same carry logic."""
    current = leaf
    level = 0
    # Each trailing one bit of size is a perfect subtree of the same height waiting for a right sibling.
    while (size >> level) & 1:
        context = _NODE_CONTEXT.copy()
        context.update(frontier.pop() + current)
        current = context.digest()
        level += 1
        if completed is not None:
            completed.append(((level, size >> level), current))
    frontier.append(current)


def append_leaf(frontier: Sequence[bytes], size: int, leaf: bytes) -> tuple[list[bytes], list[tuple[NodeId, bytes]]]:
    """Append the leaf hash ``leaf`` as leaf number ``size``.

    Returns the new frontier and the perfect subtrees of level >= 1 that this append completed, smallest first,
    for storage to persist (the level-0 hash is stored with the leaf itself).
    """
    _check_size(size)
    if len(frontier) != size.bit_count():
        raise ValueError(f"a frontier of size {size} has {size.bit_count()} hashes, got {len(frontier)}")
    _check_hash(leaf, "leaf hash")
    new = list(frontier)
    completed: list[tuple[NodeId, bytes]] = []
    _push(new, size, leaf, completed)
    return new, completed


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """RFC 9162 MTH of the tree whose frontier this is; ``EMPTY_ROOT`` for the empty tree."""
    if not frontier:
        return EMPTY_ROOT
    # MTH splits at the largest power of two, so the root is the right fold of the frontier.
    hashes = reversed(frontier)
    current = next(hashes)
    fresh = _NODE_CONTEXT.copy
    for left in hashes:
        context = fresh()
        context.update(left + current)
        current = context.digest()
    return current


def root_hash(size: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    """MTH(D[0:size]) from the nodes listed by ``root_node_ids(size)``."""
    return root_from_frontier([_lookup(nodes, node_id) for node_id in root_node_ids(size)])


# --- proof plans ---------------------------------------------------------------------------------------------


def _split(width: int) -> int:
    """RFC 9162's k: the largest power of two strictly smaller than ``width`` (width >= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def _range_node_ids(start: int, end: int) -> list[NodeId]:
    """Perfect subtrees covering ``[start, end)``, left to right, each as large as alignment allows."""
    ids: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        ids.append((level, start >> level))
        start += 1 << level
    return ids


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), in proof order."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()  # the recursion emits the deepest sibling first
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1), in proof order."""
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end = 0, new_size
    whole_old_tree = True  # RFC 9162's b: the old tree is still the left edge of the current subtree
    while old_size != end:
        k = _split(end - start)
        if old_size <= start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _check_inclusion_args(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")


def _check_consistency_args(old_size: int, new_size: int) -> None:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"cannot prove consistency from size {old_size} to size {new_size}")


def _flatten(ranges: Iterable[tuple[int, int]]) -> list[NodeId]:
    return [node_id for start, end in ranges for node_id in _range_node_ids(start, end)]


def inclusion_proof_node_ids(index: int, size: int) -> list[NodeId]:
    _check_inclusion_args(index, size)
    return _flatten(_inclusion_ranges(index, size))


def consistency_proof_node_ids(old_size: int, new_size: int) -> list[NodeId]:
    _check_consistency_args(old_size, new_size)
    return _flatten(_consistency_ranges(old_size, new_size))


def _lookup(nodes: Mapping[NodeId, bytes], node_id: NodeId) -> bytes:
    try:
        return nodes[node_id]
    except KeyError:
        raise ValueError(f"perfect subtree {node_id} is needed but was not supplied") from None


def _range_hash(start: int, end: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    # RFC 9162 ranges here start on a boundary aligned to their largest perfect part, so MTH(D[start:end]) is
    # exactly the right fold of their compact range, like a root over a frontier.
    return root_from_frontier([_lookup(nodes, node_id) for node_id in _range_node_ids(start, end)])


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 audit path for leaf ``index`` in the tree of ``size``, from the planned nodes."""
    _check_inclusion_args(index, size)
    return [_range_hash(start, end, nodes) for start, end in _inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between two tree sizes, from the planned nodes.

    Empty when ``old_size`` is 0 or equals ``new_size``, as in RFC 9162 and the transparency-dev libraries.
    """
    _check_consistency_args(old_size, new_size)
    return [_range_hash(start, end, nodes) for start, end in _consistency_ranges(old_size, new_size)]


# --- verification --------------------------------------------------------------------------------------------


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is {len(value)} bytes, a SHA-256 hash is {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes], what: str) -> None:
    if all(len(element) == HASH_SIZE for element in proof):
        return
    for position, element in enumerate(proof):
        _require_hash(element, f"{what} element {position}")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: raise ``VerificationError`` unless ``proof`` places ``leaf_hash`` at ``index`` in ``root``."""
    what = f"inclusion proof for leaf {index} of {size}"
    if not 0 <= index < size:
        raise VerificationError(f"{what}: leaf index {index} is outside a tree of size {size}")
    _require_hash(leaf_hash, f"{what}: leaf hash")
    _require_hash(root, f"{what}: root")
    _require_proof_hashes(proof, what)
    inner = (index ^ (size - 1)).bit_length()
    expected = inner + (index >> inner).bit_count()
    if len(proof) != expected:
        raise VerificationError(f"{what} has {len(proof)} hashes, a valid one has {expected}")

    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError(f"{what} is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"{what} is shorter than the path to the root")
    if r != root:
        raise VerificationError(f"{what} does not lead to the checkpoint root")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: raise ``VerificationError`` unless the tree of ``new_root`` extends that of ``old_root``.

    A tree of size 0 has root ``EMPTY_ROOT`` and is consistent with every tree, with an empty proof.
    """
    what = f"consistency proof from size {old_size} to {new_size}"
    if not 0 <= old_size <= new_size:
        raise VerificationError(f"{what}: the old size must be between 0 and the new size")
    _require_hash(old_root, f"{what}: old root")
    _require_hash(new_root, f"{what}: new root")
    _require_proof_hashes(proof, what)
    if old_size == new_size or old_size == 0:
        if proof:
            raise VerificationError(f"{what} must be empty, it has {len(proof)} hashes")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise VerificationError(f"{what}: the old root is not the root of the empty tree")
        if old_size == new_size and old_root != new_root:
            raise VerificationError(f"{what}: two trees of the same size have different roots")
        return

    shift = (old_size & -old_size).bit_length() - 1
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    old_is_perfect = old_size == 1 << shift
    expected = (0 if old_is_perfect else 1) + inner - shift + border
    if len(proof) != expected:
        raise VerificationError(f"{what} has {len(proof)} hashes, a valid one has {expected}")

    path = [old_root, *proof] if old_is_perfect else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(f"{what} is longer than the path to the new root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"{what} is shorter than the path to the new root")
    if fr != old_root:
        raise VerificationError(f"{what} does not lead to the old checkpoint root")
    if sr != new_root:
        raise VerificationError(f"{what} does not lead to the new checkpoint root")


# --- in-memory tree ------------------------------------------------------------------------------------------


class MemoryTree:
    """Leaves and perfect-subtree hashes in lists, driven by the same functions storage uses.

    ``self._levels[level][index]`` is node ``(level, index)``; it exists for every perfect subtree completed so far.
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._frontier: list[bytes] = []
        self._root: bytes | None = EMPTY_ROOT

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def __len__(self) -> int:
        return len(self._levels[0])

    def append(self, data: bytes) -> int:
        """Append a leaf with content ``data``; return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, hashed: bytes) -> int:
        """Append a leaf whose leaf hash is already known; return its index."""
        if len(hashed) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(hashed)}")
        levels = self._levels
        index = len(levels[0])
        completed: list[tuple[NodeId, bytes]] = []
        _push(self._frontier, index, hashed, completed)
        levels[0].append(hashed)
        for (level, _), node in completed:
            if level == len(levels):
                levels.append([])
            levels[level].append(node)
        self._root = None
        return index

    def node(self, node_id: NodeId) -> bytes:
        level, index = node_id
        if level < 0 or index < 0:
            raise KeyError(node_id)
        try:
            return self._levels[level][index]
        except IndexError:
            raise KeyError(node_id) from None

    def nodes(self, node_ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
        return {node_id: self.node(node_id) for node_id in node_ids}

    def leaf_hash(self, index: int) -> bytes:
        return self.node((0, index))

    def frontier(self) -> list[bytes]:
        return list(self._frontier)

    def _size_or_current(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is outside 0..{self.size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self.size:
            if self._root is None:
                self._root = root_from_frontier(self._frontier)
            return self._root
        size = self._size_or_current(size)
        return root_hash(size, self.nodes(root_node_ids(size)))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._size_or_current(size)
        return inclusion_proof(index, size, self.nodes(inclusion_proof_node_ids(index, size)))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self._size_or_current(new_size)
        return consistency_proof(old_size, new_size, self.nodes(consistency_proof_node_ids(old_size, new_size)))
