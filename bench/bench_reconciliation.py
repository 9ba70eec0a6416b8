"""Reconciliation at scale: our whole path against a plain DuckDB load-and-join on the same CSV files.

    python bench/bench_reconciliation.py [--rows 1000000] [--repeat 1] [--phases] [--keep DIR]

DuckDB generates a buyer and a seller CSV of ``--rows`` rows each: 95 % of the keys match exactly, 3 % differ in
bandwidth (partial), 2 % are on one side only. "Ours" is the service path a client drives through the API:
the upload copied to a scratch file in 64 KiB chunks and hashed on the way (what the streaming handler does), both
reports validated and stored under their hash, the reconciliation computed, stored as Parquet, hashed and recorded
in the log (SQLite). "DuckDB" loads both CSVs into tables and materialises the same full outer join and classification.
Our peak memory is the process's maximum RSS measured before the DuckDB baseline runs (target < 1 GB); the
target for time is ours <= 2 x DuckDB. On a shared machine wall times swing with the neighbours' load: ``--repeat``
alternates the two paths, prints the median of the per-run ratios and keeps each path's best run for the detail,
and the process CPU time (DuckDB's threads included) of each path is printed too. Each path starts after
``os.sync()``: otherwise the kernel writes the previous run's uploads back to disk during the next one (measured:
copying them in doubles by the third run). The two paths must agree on every count and, for a sample of partial
records, on the differing fields and both values. ``--phases`` also prints the wall and CPU time of each kind of
DuckDB statement of ours and the time spent outside them, and the time to read a page of results back.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from sonata_dlt.bilateral import agreements
from sonata_dlt.bilateral.reconciliation import runs as reconciliation
from sonata_dlt.bilateral.reports import inventory_reports, report_files
from sonata_dlt.bilateral.reports.report_uploads import Upload
from sonata_dlt.core.parties import Party
from sonata_dlt.settings import DEMO_BUYER_ID, DEMO_SELLER_ID, Role, Settings
from sonata_dlt.startup.wiring import start_runtime

TERMS = {
    "currency": "EUR",
    "billingCycle": {"frequency": "monthly"},
    "paymentTerms": {"dueDays": 30},
    "proration": "seconds",
    "rounding": "halfEven",
    "priceList": [],
    "inventoryMatching": {
        "keyFields": [{"field": "serviceId"}],
        "comparedFields": [
            {"field": "bandwidthMbps", "comparison": "numeric", "tolerance": 0.5},
            {"field": "siteA", "comparison": "caseInsensitive"},
            {"field": "status", "comparison": "exact"},
        ],
    },
}


def generate(folder: Path, rows: int) -> tuple[Path, Path]:
    """Each side has ``rows`` rows: keys [0, 0.98 n) on both sides (the last 3 % of the whole with another
    bandwidth on the seller side), plus 0.02 n keys of its own."""
    common = rows * 98 // 100
    partial_from = common - rows * 3 // 100
    buyer, seller = folder / "buyer.csv", folder / "seller.csv"
    con = duckdb.connect()
    row = (
        "'SVC-' || lpad(CAST(i AS VARCHAR), 9, '0') AS serviceId, 'accessEline' AS productType, {bw} AS bandwidthMbps,"
        " 'SITE-' || CAST(i % 997 AS VARCHAR) AS siteA, 'active' AS status,"
        " TIMESTAMPTZ '2025-01-01 00:00:00+00' AS startDate"
    )
    con.execute(f"COPY (SELECT {row.format(bw='100')} FROM range({rows}) t(i)) TO '{buyer}' (HEADER, DELIMITER ',')")
    seller_keys = (
        f"(SELECT i FROM range({common}) t(i) UNION ALL SELECT i FROM range({rows}, {rows + rows - common}) t(i))"
    )
    bandwidth = f"CASE WHEN i >= {partial_from} AND i < {common} THEN 110 ELSE 100 END"
    con.execute(
        f"COPY (SELECT {row.format(bw=bandwidth)} FROM {seller_keys} k(i) ORDER BY random())"
        f" TO '{seller}' (HEADER, DELIMITER ',')"
    )
    con.close()
    return buyer, seller


def receive(source: Path, target: Path) -> Upload:
    """What ``api.smart_bilateral.receive_to_file`` does with a request body: copy it in chunks, hashing them."""
    digest = hashlib.sha256()
    with open(source, "rb") as read, open(target, "wb") as write:
        while chunk := read.read(65536):
            digest.update(chunk)
            write.write(chunk)
    return Upload(target, digest.hexdigest())


READS: dict[str, float] = {}
READS_TIMED = (
    ("first page of all records", None, 0),
    ("matched records at offset 500,000", "matched", 500_000),
    ("first page of partial records", "partial", 0),
)
PHASES: dict[str, float] = defaultdict(float)
PHASES_CPU: dict[str, float] = defaultdict(float)
SAMPLE = 200  # partial records whose differences are compared between the two paths


def phase(sql: str) -> str:
    """A short name for one of our DuckDB statements, from its shape."""
    for marker, name in (
        ("FULL OUTER JOIN", "join + classify -> Parquet"),
        ("COPY (SELECT e FROM", "results hash"),
        ("GROUP BY 1", "result counts"),
        ("reject_errors", "rejects"),
        ("GROUP BY k HAVING", "duplicate keys (failing reports)"),
        ("read_csv", "validate CSV + count keys"),
    ):
        if marker in sql:
            return name
    return "other"


class TimedConnection:
    """Wraps a DuckDB connection and adds each statement's wall and CPU time to PHASES and PHASES_CPU."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql: str, *args: Any) -> Any:
        began, cpu = time.perf_counter(), cpu_seconds()
        try:
            return self._con.execute(sql, *args)
        finally:
            PHASES[phase(sql)] += time.perf_counter() - began
            PHASES_CPU[phase(sql)] += cpu_seconds() - cpu

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def timed_connect(data_dir: Path) -> Any:
    return TimedConnection(untimed_connect(data_dir))


untimed_connect = report_files.connect


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ours(work: Path, buyer_csv: Path, seller_csv: Path) -> tuple[float, float, dict[str, int], Path]:
    work.mkdir(parents=True, exist_ok=True)
    settings = Settings.load(database_url=f"sqlite:///{work / 'bench.sqlite'}", data_dir=work / "data", demo=True)
    runtime = start_runtime(settings)
    buyer, seller = Party(DEMO_BUYER_ID, Role.BUYER), Party(DEMO_SELLER_ID, Role.SELLER)
    bilateral = runtime.parties.bilaterals[0]
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    version = agreements.propose(
        runtime, buyer, bilateral, agreement_id="MSA-BENCH", effective_from=datetime(2025, 1, 1, tzinfo=UTC),
        terms=TERMS,
    )  # fmt: skip
    agreements.approve(runtime, buyer, version["id"])
    agreements.approve(runtime, seller, version["id"])
    began, cpu = time.perf_counter(), cpu_seconds()
    reports = []
    for party, source in ((buyer, buyer_csv), (seller, seller_csv)):
        upload = receive(source, work / f"upload-{party.role.value}.csv")
        reports.append(inventory_reports.submit_file(runtime, party, bilateral, start, end, upload, "text/csv"))
        upload.path.unlink(missing_ok=True)  # stored reports are moved into place
    document = reconciliation.create(
        runtime, buyer, bilateral, buyer_report_id=reports[0]["id"], seller_report_id=reports[1]["id"],
        seller_source=None,
    )  # fmt: skip
    elapsed, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    if not READS:  # outside the timing, once: what reading the results back costs (matched ones are derived)
        phases, phases_cpu = dict(PHASES), dict(PHASES_CPU)
        for label, classification, offset in READS_TIMED:
            began = time.perf_counter()
            reconciliation.list_records(
                runtime, buyer, document["id"], classification=classification, service_key=None, offset=offset,
                limit=100,
            )  # fmt: skip
            READS[label] = time.perf_counter() - began
        for timed, kept in ((PHASES, phases), (PHASES_CPU, phases_cpu)):  # the reads are not the path's phases
            timed.clear()
            timed.update(kept)
    runtime.close()
    results = reconciliation.results_dir(settings.data_dir) / f"{document['resultsHash']}.parquet"
    return elapsed, cpu, document["summary"], results


def plain_duckdb(buyer_csv: Path, seller_csv: Path) -> tuple[float, float, dict[str, int], list[Any]]:
    began, cpu = time.perf_counter(), cpu_seconds()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE b AS SELECT * FROM read_csv('{buyer_csv}')")
    con.execute(f"CREATE TABLE s AS SELECT * FROM read_csv('{seller_csv}')")
    con.execute(
        "CREATE TABLE r AS SELECT coalesce(b.serviceId, s.serviceId) AS serviceId, CASE"
        " WHEN b.serviceId IS NULL THEN 'sellerOnly' WHEN s.serviceId IS NULL THEN 'buyerOnly'"
        " WHEN abs(b.bandwidthMbps - s.bandwidthMbps) <= 0.5 AND lower(b.siteA) = lower(s.siteA)"
        " AND b.status IS NOT DISTINCT FROM s.status THEN 'matched' ELSE 'partial' END AS classification"
        " FROM b FULL OUTER JOIN s ON b.serviceId = s.serviceId"
    )
    counts = dict(con.execute("SELECT classification, count(*) FROM r GROUP BY 1").fetchall())
    elapsed, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    # Outside the timing: the differing fields of a sample of partial records, as the bench's rules say.
    sample = con.execute(
        "SELECT serviceId, list_filter(["
        " CASE WHEN NOT abs(b.bandwidthMbps - s.bandwidthMbps) <= 0.5 THEN ['bandwidthMbps',"
        "  CAST(CAST(b.bandwidthMbps AS DECIMAL(18,6)) AS VARCHAR),"
        "  CAST(CAST(s.bandwidthMbps AS DECIMAL(18,6)) AS VARCHAR)] END,"
        " CASE WHEN lower(b.siteA) IS DISTINCT FROM lower(s.siteA) THEN ['siteA', b.siteA, s.siteA] END,"
        " CASE WHEN b.status IS DISTINCT FROM s.status THEN ['status', b.status, s.status] END],"
        " lambda x: x IS NOT NULL)"
        " FROM b JOIN s USING (serviceId) JOIN r USING (serviceId) WHERE classification = 'partial'"
        f" ORDER BY hash(serviceId) LIMIT {SAMPLE}"
    ).fetchall()
    con.close()
    return elapsed, cpu, {str(k): int(v) for k, v in counts.items()}, sample


def check_partials(results: Path, sample: list[Any]) -> None:
    """Our stored differences of the sampled partial records equal the baseline's."""
    con = duckdb.connect()
    con.execute("CREATE TABLE wanted (k VARCHAR)")
    con.executemany("INSERT INTO wanted VALUES (?)", [(key,) for key, _ in sample])
    got = {
        key: [[d["field"], d["buyerValue"], d["sellerValue"]] for d in differences]
        for key, kind, differences in con.execute(
            f"SELECT serviceKey, classification, differences FROM read_parquet('{results}')"
            " WHERE serviceKey IN (SELECT k FROM wanted)"
        ).fetchall()
        if kind == "partial"
    }
    con.close()
    want = {key: [list(d) for d in differences] for key, differences in sample}
    if got != want:
        bad = sorted(key for key in want if got.get(key) != want[key])[:3]
        raise SystemExit(f"the two paths disagree on partial records, e.g. {[(k, got.get(k), want[k]) for k in bad]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    parser.add_argument("--phases", action="store_true", help="time each kind of DuckDB statement of ours")
    parser.add_argument("--repeat", type=int, default=1, help="run both paths this many times, keep each one's best")
    args = parser.parse_args()
    if args.phases:
        report_files.connect = timed_connect  # type: ignore[assignment]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-rec-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        began = time.perf_counter()
        buyer_csv, seller_csv = generate(work, args.rows)
        size = (buyer_csv.stat().st_size + seller_csv.stat().st_size) / 1e6
        print(f"generated 2 x {args.rows:,} rows ({size:.0f} MB of CSV) in {time.perf_counter() - began:.1f} s")
        best_ours: tuple[float, float, dict[str, int], Path] | None = None
        best_duck: tuple[float, float, dict[str, int], list[Any]] | None = None
        best_phases: dict[str, float] = {}
        best_cpu: dict[str, float] = {}
        peak_mb = 0.0
        ratios = []
        for run in range(args.repeat):
            PHASES.clear()
            PHASES_CPU.clear()
            os.sync()
            mine = ours(work / f"run-{run}", buyer_csv, seller_csv)
            if run == 0:
                peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
            os.sync()
            theirs = plain_duckdb(buyer_csv, seller_csv)
            ratios.append(mine[0] / theirs[0])
            print(f"run {run + 1}: ours {mine[0]:6.2f} s, duckdb {theirs[0]:6.2f} s, ratio {ratios[-1]:.2f}")
            if best_ours is None or mine[0] < best_ours[0]:
                best_ours, best_phases, best_cpu = mine, dict(PHASES), dict(PHASES_CPU)
            if best_duck is None or theirs[0] < best_duck[0]:
                best_duck = theirs
        assert best_ours is not None and best_duck is not None
        ours_s, ours_cpu, ours_counts, results = best_ours
        duck_s, duck_cpu, duck_counts, sample = best_duck
        print(
            f"ours   (upload + hash -> validated, stored -> reconciliation, recorded):  {ours_s:7.2f} s"
            f" (cpu {ours_cpu:6.2f} s)  {ours_counts}"
        )
        print(
            f"duckdb (load both CSVs + full outer join):                               {duck_s:7.2f} s"
            f" (cpu {duck_cpu:6.2f} s)  {duck_counts}"
        )
        print(
            f"ratio ours / duckdb: median of runs {statistics.median(ratios):.2f}, best against best"
            f" {ours_s / duck_s:.2f} (target <= 2); cpu time ratio {ours_cpu / duck_cpu:.2f}"
        )
        print(f"peak RSS during ours: {peak_mb:.0f} MB (target < 1024)")
        for name, seconds in sorted(best_phases.items(), key=lambda item: -item[1]):
            print(f"  ours, {name:30s} {seconds:7.2f} s (cpu {best_cpu[name]:6.2f} s)")
        if best_phases:
            print(
                f"  ours, {'outside DuckDB statements':30s} {ours_s - sum(best_phases.values()):7.2f} s"
                f" (cpu {ours_cpu - sum(best_cpu.values()):6.2f} s)"
            )
        for label, seconds in READS.items():
            print(f"  read 100 results, {label:36s} {seconds * 1000:7.1f} ms")
        for kind in ("matched", "partial", "buyerOnly", "sellerOnly"):
            if ours_counts.get(kind, 0) != duck_counts.get(kind, 0):
                raise SystemExit(f"the two paths disagree on {kind}: {ours_counts} vs {duck_counts}")
        if duck_counts.get("partial", 0) and not sample:
            raise SystemExit("no partial record sampled")
        check_partials(results, sample)
        print(f"counts agree; {len(sample)} sampled partial records have the same differences")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
