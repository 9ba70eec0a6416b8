"""Inclusion and consistency proof latency from storage, beside pymerkle 7's SqliteTree on the same leaves.

Not a test: it prints a table. Our storage is populated fast, without HTTP: leaf hashes and perfect-subtree
hashes are computed with the pure layer (``append_leaf``, the very function recording uses) and bulk-inserted
into the real ``log_leaf`` / ``merkle_node`` tables of a SQLite database. Proofs are then served through
``services.log_proofs`` (one batched read of the O(log n) planned nodes, then the pure computation), in a read
transaction, exactly as the API does. Each figure is the median (and p99) over random indices / size pairs.

    python bench/bench_proofs.py                    # 1M and 10M leaves
    python bench/bench_proofs.py --sizes 100000     # smaller
    python bench/bench_proofs.py --pymerkle-max 1000000   # largest size pymerkle is built at
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sonata_dlt.services import log_proofs
from sonata_dlt.storage.db import Database
from sonata_dlt.transparency.merkle import append_leaf, leaf_hash

BILATERAL = "bench-bilateral"
SAMPLES = 2_000
BATCH = 100_000


def record(i: int) -> bytes:
    return b'{"seq":%d,"bench":true}' % i


def populate(path: Path, size: int) -> float:
    """Create the schema with the app's models, then bulk-insert ``size`` leaves and their subtrees."""
    database = Database(f"sqlite:///{path}")
    database.create_schema()
    database.dispose()
    began = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")  # a throw-away benchmark database
    connection.execute(
        "INSERT INTO bilateral (id, buyer_id, seller_id, origin, log_size, frontier, created_at) "
        "VALUES (?, 'B', 'S', 'bench/origin', 0, x'', '2025-01-01 00:00:00.000000')",
        (BILATERAL,),
    )
    frontier: list[bytes] = []
    leaves: list[tuple[object, ...]] = []
    nodes: list[tuple[object, ...]] = []
    for i in range(size):
        data = record(i)
        hashed = leaf_hash(data)
        frontier, completed = append_leaf(frontier, i, hashed)
        leaves.append((BILATERAL, i, "bench", f"r{i}", 1, "created", data, hashed, "2025-01-01 00:00:00.000000"))
        nodes.extend((BILATERAL, level, index, node) for (level, index), node in completed)
        if len(leaves) >= BATCH:
            _flush(connection, leaves, nodes)
    _flush(connection, leaves, nodes)
    connection.execute(
        "UPDATE bilateral SET log_size = ?, frontier = ? WHERE id = ?", (size, b"".join(frontier), BILATERAL)
    )
    connection.commit()
    connection.close()
    return time.perf_counter() - began


def _flush(connection: sqlite3.Connection, leaves: list[tuple[object, ...]], nodes: list[tuple[object, ...]]) -> None:
    connection.executemany(
        "INSERT INTO log_leaf (bilateral_id, seq, resource_type, resource_id, version, event, record, leaf_hash, "
        "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        leaves,
    )
    connection.executemany('INSERT INTO merkle_node (bilateral_id, level, "index", hash) VALUES (?, ?, ?, ?)', nodes)
    connection.commit()
    leaves.clear()
    nodes.clear()


def measure(call: Callable[[int], object], count: int) -> tuple[float, float]:
    """Median and p99 latency in milliseconds over ``count`` calls."""
    timings = []
    for n in range(count):
        began = time.perf_counter()
        call(n)
        timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99) - 1]


def bench_ours(path: Path, size: int) -> dict[str, tuple[float, float]]:
    database = Database(f"sqlite:///{path}")
    rng = random.Random(size)
    indices = [rng.randrange(size) for _ in range(SAMPLES)]
    pairs = [tuple(sorted((rng.randrange(1, size), rng.randrange(1, size + 1)))) for _ in range(SAMPLES)]
    results = {}
    with database.read() as session:
        log_proofs.inclusion(session, BILATERAL, 0, size)  # warm the statement cache
        results["inclusion"] = measure(lambda n: log_proofs.inclusion(session, BILATERAL, indices[n], size), SAMPLES)
        results["consistency"] = measure(
            lambda n: log_proofs.consistency(session, BILATERAL, pairs[n][0], pairs[n][1]), SAMPLES
        )

    # What a request pays: a fresh read transaction around each proof.
    def per_transaction(n: int) -> object:
        with database.read() as session:
            return log_proofs.inclusion(session, BILATERAL, indices[n], size)

    results["inclusion (own txn)"] = measure(per_transaction, SAMPLES)
    database.dispose()
    return results


def bench_pymerkle(path: Path, size: int) -> tuple[float, dict[str, tuple[float, float]]]:
    import pymerkle

    tree = pymerkle.SqliteTree(str(path))
    began = time.perf_counter()
    tree.append_entries([record(i) for i in range(size)], chunksize=BATCH)
    built = time.perf_counter() - began
    rng = random.Random(size)
    indices = [rng.randrange(size) for _ in range(SAMPLES)]
    pairs = [tuple(sorted((rng.randrange(1, size), rng.randrange(1, size + 1)))) for _ in range(SAMPLES)]
    results = {
        "inclusion": measure(lambda n: tree.prove_inclusion(indices[n] + 1, size), SAMPLES),  # 1-based
        "consistency": measure(lambda n: tree.prove_consistency(pairs[n][0], pairs[n][1]), SAMPLES),
    }
    tree.close()
    return built, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--pymerkle-max", type=int, default=1_000_000, help="build pymerkle only up to this size")
    parser.add_argument("--dir", type=Path, help="where the databases go (default a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        print(f"{'impl':<10} {'leaves':>11} {'proof':<20} {'median ms':>10} {'p99 ms':>8}   build")
        for size in args.sizes:
            ours_path = Path(scratch) / f"ours-{size}.sqlite"
            built = populate(ours_path, size)
            for name, (median, p99) in bench_ours(ours_path, size).items():
                print(f"{'sonata':<10} {size:>11,} {name:<20} {median:>10.3f} {p99:>8.3f}   {built:.0f} s bulk")
            ours_path.unlink()
            if size <= args.pymerkle_max:
                theirs_path = Path(scratch) / f"pymerkle-{size}.sqlite"
                built, results = bench_pymerkle(theirs_path, size)
                for name, (median, p99) in results.items():
                    print(f"{'pymerkle':<10} {size:>11,} {name:<20} {median:>10.3f} {p99:>8.3f}   {built:.0f} s")
                theirs_path.unlink()
            else:
                print(f"{'pymerkle':<10} {size:>11,} (not built: above --pymerkle-max {args.pymerkle_max:,})")


if __name__ == "__main__":
    main()
