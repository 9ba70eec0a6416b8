"""Inclusion and consistency proof latency from storage, side by side with pymerkle 7's SqliteTree.

Not a test: it prints a table. Both stores hold the same leaves (``record(i)``), so both trees have the same
RFC 9162 root, which the bench checks before measuring.

* sonata-dlt: the real ``log_leaf`` / ``merkle_node`` tables of a SQLite database, created from the app's models
  and bulk-filled in one transaction (leaf hashes and perfect-subtree hashes from ``append_leaf``, the function
  recording uses). Proofs are served by ``verifiable_log.proofs``: one batched read of the O(log n) planned nodes,
  then the pure computation; the tree is never rebuilt. Measured inside one read transaction, and with a fresh
  read transaction around each proof (what an API request pays).
* pymerkle: ``SqliteTree`` filled with ``append_entries`` (one transaction). It stores leaves only and computes
  subtree roots from them, memoising those of 128 leaves or more in an in-process LRU cache (up to 1 GiB): its
  figures are with that cache warm, plus the first proof after opening, with the cache empty.

Each latency is the median (and p99) over random leaf indices / size pairs, each figure with challenges of its
own, after an untimed warm-up on others (the same for both). The store file is first read through so that the
OS page cache holds it (a server that has been running); the "cold OS cache" figures drop the store's pages
from that cache first (``posix_fadvise``, this file only), so that reads go to the disk. Verification rates
check the proofs just served against the store's root (``verify_*`` of ``transparency.merkle``, and pymerkle's).

    python bench/bench_proofs.py                                 # 1M and 10M leaves, stores in a temp dir
    python bench/bench_proofs.py --store-dir /tmp/proof-stores   # keep the stores and reuse them next time
    python bench/bench_proofs.py --store-dir DIR --build-only    # only build (outside the benchmark lock)
    python bench/bench_proofs.py --sizes 100000 --samples 500    # smaller
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pymerkle

from sonata_dlt.storage.db import Database
from sonata_dlt.transparency.merkle import append_leaf, leaf_hash, verify_consistency, verify_inclusion
from sonata_dlt.verifiable_log import proofs as log_proofs

BILATERAL = "bench-bilateral"
SAMPLES = 2_000
WARM_UP = 500  # untimed proofs on other random challenges before measuring: page and statement caches settle
CHUNK = 100_000  # rows per executemany; the whole build is still one transaction
RECORDED_AT = "2025-01-01 00:00:00.000000"

Figure = tuple[float, float]  # median and p99, in milliseconds


def record(i: int) -> bytes:
    return b'{"seq":%d,"bench":true}' % i


# --- building the stores -------------------------------------------------------------------------------------


def _bulk_pragmas(connection: sqlite3.Connection) -> None:
    # A throw-away benchmark database: no rollback journal, no fsync, a large page cache for the build.
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")


def build_ours(path: Path, size: int) -> float:
    """Create the schema with the app's models, then insert ``size`` leaves and their subtrees in one transaction."""
    database = Database(f"sqlite:///{path}")
    database.create_schema()
    database.dispose()
    began = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    _bulk_pragmas(connection)
    connection.execute("BEGIN")
    connection.execute(
        "INSERT INTO bilateral (id, buyer_id, seller_id, origin, log_size, frontier, created_at) "
        "VALUES (?, 'B', 'S', 'bench/origin', 0, x'', ?)",
        (BILATERAL, RECORDED_AT),
    )
    frontier: list[bytes] = []
    nodes: list[tuple[object, ...]] = []

    def leaves(start: int, end: int) -> Iterator[tuple[object, ...]]:
        nonlocal frontier
        for i in range(start, end):
            data = record(i)
            hashed = leaf_hash(data)
            frontier, completed = append_leaf(frontier, i, hashed)
            nodes.extend((BILATERAL, level, index, node) for (level, index), node in completed)
            # Zero-padded resource ids keep ix_log_leaf_resource inserts in key order, as the primary key is.
            yield (BILATERAL, i, "bench", f"r{i:010d}", 1, "created", data, hashed, RECORDED_AT)

    for start in range(0, size, CHUNK):
        connection.executemany(
            "INSERT INTO log_leaf (bilateral_id, seq, resource_type, resource_id, version, event, record, "
            "leaf_hash, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            leaves(start, min(start + CHUNK, size)),
        )
        # The nodes this chunk completed, in the order append_leaf produced them: each level's indexes ascend,
        # so with the clustered key (bilateral_id, level, index) every insert lands on one of ~log n B-tree edges.
        connection.executemany(
            'INSERT INTO merkle_node (bilateral_id, level, "index", hash) VALUES (?, ?, ?, ?)', nodes
        )
        nodes.clear()
    connection.execute(
        "UPDATE bilateral SET log_size = ?, frontier = ? WHERE id = ?", (size, b"".join(frontier), BILATERAL)
    )
    connection.execute("COMMIT")
    connection.execute("PRAGMA journal_mode=WAL")  # what the app runs with
    connection.close()
    return time.perf_counter() - began


def _stored_count(path: Path, query: str, *params: str) -> int:
    """The one number ``query`` reads from the store at ``path``, or -1 when there is no usable store."""
    if not path.exists():
        return -1
    connection = sqlite3.connect(path)
    try:
        row = connection.execute(query, params).fetchone()
    except sqlite3.OperationalError:
        row = None
    finally:
        connection.close()
    return -1 if row is None or row[0] is None else int(row[0])


def ours_size(path: Path) -> int:
    return _stored_count(path, "SELECT log_size FROM bilateral WHERE id = ?", BILATERAL)


def build_pymerkle(path: Path, size: int) -> float:
    began = time.perf_counter()
    tree = pymerkle.SqliteTree(str(path))
    tree.con.execute("PRAGMA synchronous=OFF")
    tree.con.execute("PRAGMA cache_size=-1000000")
    tree.append_entries((record(i) for i in range(size)), chunksize=CHUNK)  # one transaction
    tree.close()
    return time.perf_counter() - began


def pymerkle_size(path: Path) -> int:
    return _stored_count(path, "SELECT MAX(id) FROM leaf")


def ensure(path: Path, size: int, stored: Callable[[Path], int], build: Callable[[Path, int], float]) -> str:
    """Reuse the store at ``path`` if it holds exactly ``size`` leaves, else (re)build it; say which."""
    if stored(path) == size:
        return "reused"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    built = build(path, size)
    if stored(path) != size:
        raise SystemExit(f"building {path} failed")
    return f"built in {built:.0f} s"


# --- measuring -----------------------------------------------------------------------------------------------


def measure(call: Callable[[int], object], count: int) -> Figure:
    """Median and p99 latency in milliseconds over ``count`` calls."""
    timings = []
    for n in range(count):
        began = time.perf_counter()
        call(n)
        timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    return statistics.median(timings), timings[max(0, int(len(timings) * 0.99) - 1)]


def rate(call: Callable[[int], object], count: int) -> float:
    began = time.perf_counter()
    for n in range(count):
        call(n)
    return count / (time.perf_counter() - began)


def _store_files(path: Path) -> list[Path]:
    return [file for file in (path, path.with_name(path.name + "-wal")) if file.exists()]


def page_in(path: Path) -> None:
    """Read the store through once, so that the OS page cache holds it (a server that has been running)."""
    for file in _store_files(path):
        with file.open("rb") as stream:
            while stream.read(1 << 24):
                pass


def page_out(path: Path) -> None:
    """Drop the store's pages from the OS page cache (this file only), so that reads go to the disk."""
    for file in _store_files(path):
        with file.open("rb") as stream:
            os.posix_fadvise(stream.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def challenges(size: int, samples: int, seed: int = 0) -> tuple[list[int], list[tuple[int, int]]]:
    """Random 0-based leaf indices and (old, new) size pairs with 1 <= old <= new <= size."""
    rng = random.Random(size * 10 + seed)
    indices = [rng.randrange(size) for _ in range(samples)]
    pairs = []
    for _ in range(samples):
        old, new = sorted((rng.randrange(1, size + 1), rng.randrange(1, size + 1)))
        pairs.append((old, new))
    return indices, pairs


def bench_ours(path: Path, size: int, samples: int) -> tuple[bytes, dict[str, Figure | float]]:
    database = Database(f"sqlite:///{path}")
    indices, pairs = challenges(size, samples)
    # Each figure gets challenges of its own: the same ones again would find their pages cached.
    other_indices, other_pairs = challenges(size, samples, seed=2)
    cold_indices, cold_pairs = challenges(size, samples, seed=3)
    results: dict[str, Figure | float] = {}
    page_in(path)
    with database.read() as session:
        root = log_proofs.root_at(session, BILATERAL, size)
        for index, (old, new) in zip(*challenges(size, WARM_UP, seed=1), strict=True):  # other random proofs
            log_proofs.inclusion(session, BILATERAL, index, size)
            log_proofs.consistency(session, BILATERAL, old, new)
        results["inclusion"] = measure(lambda n: log_proofs.inclusion(session, BILATERAL, indices[n], size), samples)
        results["consistency"] = measure(
            lambda n: log_proofs.consistency(session, BILATERAL, pairs[n][0], pairs[n][1]), samples
        )
        inclusions = [
            (
                log_proofs.fetch_nodes(session, BILATERAL, [(0, i)])[(0, i)],
                i,
                log_proofs.inclusion(session, BILATERAL, i, size),
            )
            for i in indices
        ]
        consistencies = [
            (
                old,
                new,
                log_proofs.root_at(session, BILATERAL, old),
                log_proofs.root_at(session, BILATERAL, new),
                log_proofs.consistency(session, BILATERAL, old, new),
            )
            for old, new in pairs
        ]

    # What a request pays: a fresh read transaction (pooled connection) around each proof.
    def inclusion_in_own_transaction(n: int) -> object:
        with database.read() as session:
            return log_proofs.inclusion(session, BILATERAL, other_indices[n], size)

    def consistency_in_own_transaction(n: int) -> object:
        with database.read() as session:
            return log_proofs.consistency(session, BILATERAL, other_pairs[n][0], other_pairs[n][1])

    results["inclusion, own txn"] = measure(inclusion_in_own_transaction, samples)
    results["consistency, own txn"] = measure(consistency_in_own_transaction, samples)
    database.dispose()

    # From the disk: the store's pages dropped from the OS cache, a new connection (an empty SQLite page cache).
    page_out(path)
    database = Database(f"sqlite:///{path}")
    with database.read() as session:
        results["inclusion, cold OS cache"] = measure(
            lambda n: log_proofs.inclusion(session, BILATERAL, cold_indices[n], size), samples
        )
    page_out(path)
    with database.read() as session:
        results["consistency, cold OS cache"] = measure(
            lambda n: log_proofs.consistency(session, BILATERAL, cold_pairs[n][0], cold_pairs[n][1]), samples
        )
    database.dispose()

    def check_inclusion(n: int) -> None:
        leaf, index, proof = inclusions[n]
        verify_inclusion(leaf, index, size, proof, root)

    def check_consistency(n: int) -> None:
        old, new, old_root, new_root, proof = consistencies[n]
        verify_consistency(old, new, old_root, new_root, proof)

    results["verify inclusion"] = rate(check_inclusion, samples)
    results["verify consistency"] = rate(check_consistency, samples)
    return root, results


def bench_pymerkle(path: Path, size: int, samples: int) -> tuple[bytes, dict[str, Figure | float]]:
    indices, pairs = challenges(size, samples)
    cold_indices, cold_pairs = challenges(size, samples, seed=3)
    results: dict[str, Figure | float] = {}
    page_in(path)
    tree = pymerkle.SqliteTree(str(path))
    began = time.perf_counter()
    tree.prove_inclusion(indices[0] + 1, size)  # 1-based; the first proof fills the subroot cache
    results["first inclusion, empty subroot cache"] = ((time.perf_counter() - began) * 1000, float("nan"))
    root = tree.get_root(size)
    for index, (old, new) in zip(*challenges(size, WARM_UP, seed=1), strict=True):  # as for ours
        tree.prove_inclusion(index + 1, size)
        tree.prove_consistency(old, new)
    results["inclusion"] = measure(lambda n: tree.prove_inclusion(indices[n] + 1, size), samples)
    results["consistency"] = measure(lambda n: tree.prove_consistency(pairs[n][0], pairs[n][1]), samples)
    inclusions = [(tree.get_leaf(i + 1), tree.prove_inclusion(i + 1, size)) for i in indices]
    consistencies = [(tree.get_root(old), tree.get_root(new), tree.prove_consistency(old, new)) for old, new in pairs]
    # As for ours; the subroot cache, in process memory, stays warm.
    page_out(path)
    results["inclusion, cold OS cache"] = measure(lambda n: tree.prove_inclusion(cold_indices[n] + 1, size), samples)
    page_out(path)
    results["consistency, cold OS cache"] = measure(
        lambda n: tree.prove_consistency(cold_pairs[n][0], cold_pairs[n][1]), samples
    )
    tree.close()

    def check_inclusion(n: int) -> None:
        leaf, proof = inclusions[n]
        pymerkle.verify_inclusion(leaf, root, proof)

    def check_consistency(n: int) -> None:
        old_root, new_root, proof = consistencies[n]
        pymerkle.verify_consistency(old_root, new_root, proof)

    results["verify inclusion"] = rate(check_inclusion, samples)
    results["verify consistency"] = rate(check_consistency, samples)
    return root, results


# --- report --------------------------------------------------------------------------------------------------

ROWS = (
    "inclusion",
    "inclusion, own txn",
    "inclusion, cold OS cache",
    "consistency",
    "consistency, own txn",
    "consistency, cold OS cache",
    "first inclusion, empty subroot cache",
    "verify inclusion",
    "verify consistency",
)


def cell(value: Figure | float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        median, p99 = value
        return f"{median:.3f} ms" if p99 != p99 else f"{median:.3f} ms (p99 {p99:.3f})"  # NaN: a single timing
    return f"{value:,.0f}/s"


def print_table(size: int, notes: list[str], ours: dict[str, Any], theirs: dict[str, Any] | None) -> None:
    print(f"\n{size:,} leaves  ({'; '.join(notes)})")
    print(f"  {'':<38} {'sonata-dlt':>28} {'pymerkle SqliteTree':>28}")
    for row in ROWS:
        mine = ours.get(row)
        other = theirs.get(row) if theirs is not None else None
        if mine is None and other is None:
            continue
        label = f"{row} {'median' if not row.startswith(('verify', 'first')) else ''}".rstrip()
        print(f"  {label:<38} {cell(mine):>28} {cell(other):>28}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--samples", type=int, default=SAMPLES, help="proofs per figure")
    parser.add_argument("--pymerkle-max", type=int, default=10_000_000, help="largest size pymerkle is run at")
    parser.add_argument("--store-dir", type=Path, help="keep the stores here and reuse them (default a temp dir)")
    parser.add_argument("--build-only", action="store_true", help="build (or check) the stores, then exit")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.store_dir is None:
            store_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-proofs-")))
        else:
            store_dir = args.store_dir
            store_dir.mkdir(parents=True, exist_ok=True)
        print(f"{args.samples:,} random proofs per figure; stores in {store_dir}")
        for size in args.sizes:
            ours_path = store_dir / f"sonata-{size}.sqlite"
            theirs_path = store_dir / f"pymerkle-{size}.sqlite"
            notes = [f"sonata store {ensure(ours_path, size, ours_size, build_ours)}"]
            with_pymerkle = size <= args.pymerkle_max
            if with_pymerkle:
                notes.append(f"pymerkle store {ensure(theirs_path, size, pymerkle_size, build_pymerkle)}")
            else:
                notes.append(f"pymerkle not run: above --pymerkle-max {args.pymerkle_max:,}")
            if args.build_only:
                print(f"{size:,} leaves: {'; '.join(notes)}")
                continue
            root, ours = bench_ours(ours_path, size, args.samples)
            theirs = None
            if with_pymerkle:
                their_root, theirs = bench_pymerkle(theirs_path, size, args.samples)
                if their_root != root:
                    raise SystemExit(f"roots differ at {size:,} leaves: the comparison is meaningless")
            print_table(size, notes, ours, theirs)
            if args.store_dir is None:
                ours_path.unlink()
                theirs_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
