"""Merkle throughput: appends with a fresh root after each, beside pymerkle 7, and proof verifications.

Not a test: it prints a table. Each figure is the median of several timed windows taken near the stated tree
size (the tree is first filled, untimed and without roots, to just below it). Run with ``python
bench/bench_merkle.py``; ``--quick`` for a smoke run, ``--sizes`` to choose tree sizes.
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


def append_rates(size: int, runs: int, window: int) -> tuple[float, float, MemoryTree]:
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
    return ours_rate, theirs_rate, ours


def verification_rates(tree: MemoryTree, runs: int, count: int) -> tuple[float, float]:
    size = tree.size
    rng = random.Random(size)
    root = tree.root()
    inclusions = []
    for _ in range(count):
        index = rng.randrange(size)
        inclusions.append((tree.leaf_hash(index), index, tree.inclusion_proof(index)))
    consistencies = []
    for _ in range(count):
        old = rng.randrange(1, size)
        consistencies.append((old, tree.root(old), tree.consistency_proof(old)))

    inclusion_rates = []
    consistency_rates = []
    for _ in range(runs):
        began = time.perf_counter()
        for leaf, index, proof in inclusions:
            verify_inclusion(leaf, index, size, proof, root)
        inclusion_rates.append(count / (time.perf_counter() - began))
        began = time.perf_counter()
        for old, old_root, proof in consistencies:
            verify_consistency(old, size, old_root, root, proof)
        consistency_rates.append(count / (time.perf_counter() - began))
    return statistics.median(inclusion_rates), statistics.median(consistency_rates)


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
    tree = MemoryTree()
    for size in sizes:
        ours, theirs, tree = append_rates(size, runs, window)
        rows.append((f"append + root, ~{size:,} leaves", f"{ours:,.0f}/s", f"pymerkle {theirs:,.0f}/s"))
        rows.append(("  ratio sonata-dlt / pymerkle", f"{ours / theirs:.2f}x", ""))
    verify_size = tree.size
    inclusion, consistency = verification_rates(tree, runs, proofs)
    rows.append((f"verify_inclusion, {verify_size:,} leaves", f"{inclusion:,.0f}/s", ""))
    rows.append((f"verify_consistency, {verify_size:,} leaves", f"{consistency:,.0f}/s", ""))

    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    print(f"median of {runs} windows of {window:,} appends or {proofs:,} verifications each")
    for label, value, other in rows:
        print(f"{label:<{widths[0]}}  {value:>{widths[1]}}  {other}".rstrip())
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
