"""Merkle throughput in memory: appends with a fresh root after each, and proof verifications, beside pymerkle 7.

Not a test: it prints a table. Each append figure is the median of several timed windows taken near the stated
tree size (the tree is first filled, untimed and without roots, to just below it); the roots of both trees must
agree. Verification rates check the same random inclusion and consistency proofs (to the largest size) with
``transparency.merkle.verify_*`` and with pymerkle's ``verify_*``. Proof latency from storage is
``bench_proofs.py``.

    python bench/bench_merkle.py                    # ~200k and ~1M leaves
    python bench/bench_merkle.py --quick            # a smoke run
    python bench/bench_merkle.py --sizes 100000     # other tree sizes
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import pymerkle

from sonata_dlt.transparency.merkle import MemoryTree, verify_consistency, verify_inclusion

WINDOW = 20_000  # appends per timed window
RUNS = 5  # timed windows per figure
PROOFS = 2_000  # proofs per verification window


def entry(i: int) -> bytes:
    # Roughly the size of a canonical leaf record's identity part; content does not change the hashing cost much.
    return b"leaf-%012d" % i


def timed_windows(
    append: Callable[[bytes], object], root: Callable[[], bytes], start: int, runs: int, window: int
) -> list[float]:
    rates = []
    i = start
    for _ in range(runs):
        began = time.perf_counter()
        for _ in range(window):
            append(entry(i))
            root()
            i += 1
        rates.append(window / (time.perf_counter() - began))
    return rates


def append_rates(size: int, runs: int, window: int) -> tuple[float, float, MemoryTree, pymerkle.InmemoryTree]:
    start = size - runs * window
    ours = MemoryTree()
    for i in range(start):
        ours.append(entry(i))
    ours_rate = statistics.median(timed_windows(ours.append, ours.root, start, runs, window))

    theirs = pymerkle.InmemoryTree(algorithm="sha256")
    for i in range(start):
        theirs.append_entry(entry(i))
    theirs_rate = statistics.median(timed_windows(theirs.append_entry, theirs.get_root, start, runs, window))
    if ours.root() != theirs.get_root():
        raise SystemExit("roots differ between sonata-dlt and pymerkle: the comparison is meaningless")
    return ours_rate, theirs_rate, ours, theirs


def verification_rates(
    tree: MemoryTree, theirs: pymerkle.InmemoryTree, runs: int, count: int
) -> dict[str, tuple[float, float]]:
    """Verifications per second of the same random proofs, ours and pymerkle's, by kind."""
    size = tree.size
    rng = random.Random(size)
    root = tree.root()
    indices = [rng.randrange(size) for _ in range(count)]
    olds = [rng.randrange(1, size) for _ in range(count)]
    inclusions = [(tree.leaf_hash(index), index, tree.inclusion_proof(index)) for index in indices]
    consistencies = [(old, tree.root(old), tree.consistency_proof(old)) for old in olds]
    their_inclusions = [(theirs.get_leaf(index + 1), theirs.prove_inclusion(index + 1, size)) for index in indices]
    their_consistencies = [(theirs.get_root(old), theirs.prove_consistency(old, size)) for old in olds]

    def ours_inclusion() -> None:
        for leaf, index, proof in inclusions:
            verify_inclusion(leaf, index, size, proof, root)

    def ours_consistency() -> None:
        for old, old_root, proof in consistencies:
            verify_consistency(old, size, old_root, root, proof)

    def their_inclusion() -> None:
        for leaf, proof in their_inclusions:
            pymerkle.verify_inclusion(leaf, root, proof)

    def their_consistency() -> None:
        for old_root, proof in their_consistencies:
            pymerkle.verify_consistency(old_root, root, proof)

    def median_rate(verify_all: Callable[[], None]) -> float:
        rates = []
        for _ in range(runs):
            began = time.perf_counter()
            verify_all()
            rates.append(count / (time.perf_counter() - began))
        return statistics.median(rates)

    return {
        "inclusion": (median_rate(ours_inclusion), median_rate(their_inclusion)),
        "consistency": (median_rate(ours_consistency), median_rate(their_consistency)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000], help="tree sizes")
    parser.add_argument("--quick", action="store_true", help="small sizes and windows, for a smoke run")
    args = parser.parse_args()
    sizes: list[int] = [20_000] if args.quick else args.sizes
    runs = 3 if args.quick else RUNS
    window = 2_000 if args.quick else WINDOW
    proofs = 200 if args.quick else PROOFS

    rows: list[tuple[str, str, str]] = []
    began = time.perf_counter()
    tree, their_tree = MemoryTree(), pymerkle.InmemoryTree(algorithm="sha256")
    for size in sizes:
        ours, theirs, tree, their_tree = append_rates(size, runs, window)
        rows.append((f"append + root, ~{size:,} leaves", f"{ours:,.0f}/s", f"pymerkle {theirs:,.0f}/s"))
        rows.append(("  ratio sonata-dlt / pymerkle", f"{ours / theirs:.2f}x", ""))
    for kind, (ours, theirs) in verification_rates(tree, their_tree, runs, proofs).items():
        rows.append((f"verify {kind} proof, {tree.size:,} leaves", f"{ours:,.0f}/s", f"pymerkle {theirs:,.0f}/s"))

    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    print(f"median of {runs} windows of {window:,} appends or {proofs:,} verifications each")
    for label, value, other in rows:
        print(f"{label:<{widths[0]}}  {value:>{widths[1]}}  {other}".rstrip())
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
