"""Inventory report files: uploads validated by DuckDB and stored, content-addressed, as CSV.

Nothing here holds a report in memory. An upload is already a file on disk (the API streams it there); NDJSON and
JSON rows are checked and rewritten as CSV first (``report_uploads``); DuckDB then parses the CSV once (typed
columns, every bad row recorded with its line number) and checks the keys, and only once every check has passed is
the file moved to ``<data_dir>/reports/<content hash>.csv``, so a refused report leaves nothing behind. The content
hash is the submission's (``inventory_reports`` says what is hashed): a CSV upload is stored byte for byte, so
``sha256sum`` of the stored file gives its name. The same submission stored twice keeps its first file.

Why CSV and not a typed copy (Parquet, as forms v2 and v3 did, still read): parsing a million rows again costs
DuckDB less than writing the copy and reading it back, and the file stays the very bytes the party sent. Readers get
typed rows from ``rows_sql``, with the dialect and types of the validation.

Line numbers: a CSV's header is line 1 and its n-th record is line n + 1 (a record whose quoted value spans
several physical lines counts once); an NDJSON object's line is its line in the upload; a JSON array's rows are
reported by their pointer ``/rows/<index>``.

Stored values (the Parquet schema: ``report_rows.DUCKDB_TYPES``): text as is, decimals with six decimals (a seventh
rounds half away from zero), timestamps in UTC with microseconds (a value without an offset is UTC).
"""

# SQL here is assembled from fixed column names (report_rows.REPORT_COLUMNS, checked by quoted()), numbers
# from validated Decimals and paths we generate, quoted by sql_text(); user values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import atexit
import contextlib
import csv
import errno
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sonata_dlt.bilateral.agreement_terms import MatchingRules
from sonata_dlt.bilateral.report_columns import DUCKDB_TYPES, REPORT_COLUMNS
from sonata_dlt.bilateral.reports.report_uploads import MAX_ISSUES, read_header
from sonata_dlt.bilateral.reports.row_hashes import sql_text as sql_text  # re-exported: callers quote paths with it
from sonata_dlt.errors import Issue, Unprocessable

DUCKDB_MEMORY_LIMIT = "512MB"  # DuckDB spills to its temp directory beyond this, keeping the process under 1 GB


@dataclass(frozen=True)
class StoredRows:
    content_hash: str
    row_count: int
    path: Path


def reports_dir(data_dir: Path) -> Path:
    path = data_dir / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def scratch_dir(data_dir: Path) -> Path:
    path = data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


_shared_lock = threading.Lock()
_shared: tuple[Path, duckdb.DuckDBPyConnection] | None = None


def release_shared_database() -> None:
    """Let go of the process's DuckDB database (``Runtime.close``, interpreter exit): it closes once the last cursor
    on it is closed (closing it here would close the cursors other threads are still using); the next ``connect``
    opens a new one."""
    global _shared
    with _shared_lock:
        _shared = None


# Dropped before the interpreter tears modules down, while DuckDB's bindings can still free it cleanly.
atexit.register(release_shared_database)


def connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for one piece of work; the caller closes it.

    Connections are cursors on one in-memory database per data directory, kept for the process: creating and
    tearing down a database (its thread pool, its buffer pool) costs tens of milliseconds, several times per upload
    and reconciliation. Cursors are safe to use from different threads, and nothing is stored in the database
    itself (temporary tables, the CSV reader's rejects included, belong to their connection). The settings below are
    the database's, so that every connection shares the memory limit."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != data_dir:
            database = duckdb.connect()
            database.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
            database.execute("SET preserve_insertion_order = true")  # the default, relied on: row_hashes, key order
            # DuckDB 2.0's type_pushdown moves a cast of a typed CSV column into the reader: CAST(bandwidthMbps AS
            # VARCHAR) over rows_sql then gives the file's text ('-0.0000005') instead of the DECIMAL(18,6) value
            # ('-0.000001'). Report readers need the typed values.
            optimizers = {str(name) for (name,) in database.execute("SELECT name FROM duckdb_optimizers()").fetchall()}
            if "type_pushdown" in optimizers:
                database.execute("SET disabled_optimizers = 'type_pushdown'")
            database.execute(f"SET temp_directory = {sql_text(str(scratch_dir(data_dir) / 'duckdb'))}")
            _shared = (data_dir, database)  # a previous directory's database goes once its cursors are closed
        con = _shared[1].cursor()
    con.execute("SET TimeZone = 'UTC'")
    return con


def quoted(column: str) -> str:
    if column not in REPORT_COLUMNS:  # column names reach SQL only from this fixed set
        raise ValueError(f"unknown report column {column!r}")
    return f'"{column}"'


def key_sql(matching: MatchingRules, prefix: str = "") -> str:
    """The ``serviceKey`` of a row: key values (lower-cased where case-insensitive), ``\\`` and ``|`` escaped,
    joined by ``|``."""
    parts = []
    for key in matching.key_fields:
        ref = f"{prefix}{quoted(key.field)}"
        if key.case_insensitive:
            ref = f"lower({ref})"
        parts.append(f"replace(replace({ref}, '\\', '\\\\'), '|', '\\|')")
    return " || '|' || ".join(parts)


def key_values_sql(matching: MatchingRules, prefix: str = "") -> list[str]:
    """The key's parts as compared (lower-cased where case-insensitive): equal parts <=> equal ``serviceKey``, without
    building the escaped string for every row."""
    return [
        f"lower({prefix}{quoted(key.field)})" if key.case_insensitive else f"{prefix}{quoted(key.field)}"
        for key in matching.key_fields
    ]


# --- loading into Parquet -------------------------------------------------------------------------------------


def csv_line(number: int) -> str:
    return f"line {number}"


CSV_DIALECT = "header = true, auto_detect = false, delim = ',', quote = '\"', escape = '\"'"


def _csv_scan(csv_path: Path, header: Sequence[str], *, rejects: bool = False) -> str:
    """DuckDB's reader of a report CSV, its columns typed; ``rejects`` records bad rows instead of failing."""
    columns = "{" + ", ".join(f"{sql_text(n)}: {sql_text(DUCKDB_TYPES[REPORT_COLUMNS[n]])}" for n in header) + "}"
    return f"read_csv({sql_text(str(csv_path))}, {CSV_DIALECT}, columns = {columns}" + (
        ", store_rejects = true)" if rejects else ")"
    )


def rows_sql(report: Path) -> str:
    """A stored report's rows, every ``REPORT_COLUMNS`` column typed (a missing one NULL), for a FROM clause."""
    if report.suffix == ".parquet":  # forms v2 and v3 stored a typed copy
        return f"read_parquet({sql_text(str(report))})"
    header = read_header(report)
    select = ", ".join(
        quoted(name) if name in header else f"CAST(NULL AS {DUCKDB_TYPES[kind]}) AS {quoted(name)}"
        for name, kind in REPORT_COLUMNS.items()
    )
    return f"(SELECT {select} FROM {_csv_scan(report, header)})"


def stored_report(data_dir: Path, content_hash: str) -> Path:
    """The stored file of a report: ``<hash>.csv`` (form v4), or ``<hash>.parquet`` (v2, v3)."""
    folder = reports_dir(data_dir)
    csv_file = folder / f"{content_hash}.csv"
    return csv_file if csv_file.exists() else folder / f"{content_hash}.parquet"


def store_csv(
    data_dir: Path,
    csv_path: Path,
    matching: MatchingRules,
    content_hash: str,
    *,
    locate: Callable[[int], str] = csv_line,
) -> StoredRows:
    """Validate a CSV report file and move it to ``reports/<content_hash>.csv``; 422 (nothing stored) on any problem.

    One DuckDB pass parses every cell with its column's type (a bad cell is recorded with its line, not fatal) and
    counts the rows and keys. The file is kept as it is: readers parse it again with the same dialect and types
    (``rows_sql``), which costs less than writing and reading a typed copy. ``locate`` names a CSV line for the
    caller (NDJSON and JSON rows were rewritten as CSV with a header line)."""
    header = read_header(csv_path)
    missing_keys = [key.field for key in matching.key_fields if key.field not in header]
    if missing_keys:
        raise Unprocessable.single(
            "missingProperty", f"line 1: the agreement's key column(s) {', '.join(missing_keys)} are missing", "line 1"
        )
    con = connect(data_dir)
    try:
        source = _csv_scan(csv_path, header, rejects=True)
        null_test = _empty_key_test(matching)
        every_cell = ", ".join(f"count({quoted(name)})" for name in header)  # makes DuckDB parse each column
        try:
            counts = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {null_test}),"
                f" count(DISTINCT hash({', '.join(key_values_sql(matching))})) FILTER (WHERE NOT ({null_test})),"
                f" {every_cell} FROM {source}"
            ).fetchall()[0]  # drained: DuckDB fills reject_errors at the end
        except duckdb.Error as exc:
            raise Unprocessable.single("invalidFormat", f"the CSV file cannot be read: {exc}"[:250], "line 1") from None
        rejects = con.execute(
            "SELECT line, column_name, error_type, error_message FROM reject_errors ORDER BY line LIMIT ?",
            [MAX_ISSUES],
        ).fetchall()
        if rejects:
            raise Unprocessable(
                [
                    Issue("invalidFormat", f"{locate(int(line))}: {message}"[:255], locate(int(line)))
                    for line, _column, _kind, message in rejects
                ]
            )
        total, nulls, distinct_hashes = (int(value) for value in counts[:3])
        _check_keys(
            con, _csv_scan(csv_path, header), csv_path, matching, locate, total=total, nulls=nulls,
            distinct=distinct_hashes,
        )  # fmt: skip
    finally:
        con.close()
    final = reports_dir(data_dir) / f"{content_hash}.csv"
    if final.exists():  # content-addressed: the same submission was stored before; keep the first file
        csv_path.unlink()
    else:
        _move_into_place(csv_path, final)
    return StoredRows(content_hash, total, final)


def _empty_key_test(matching: MatchingRules) -> str:
    """True for a row with an empty key part."""
    return " OR ".join(f"{quoted(key.field)} IS NULL" for key in matching.key_fields)


def _move_into_place(source: Path, final: Path) -> None:
    """Move ``source`` to ``final`` so that ``final`` is never seen half-written: a rename, or, from another file
    system, a copy beside ``final`` renamed over it."""
    try:
        os.replace(source, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        source.unlink()


def _check_keys(
    con: duckdb.DuckDBPyConnection,
    table: str,
    csv_path: Path,
    matching: MatchingRules,
    locate: Callable[[int], str],
    *,
    total: int,
    nulls: int,
    distinct: int,
) -> None:
    """Refuse (422 naming the lines) empty or duplicate keys, given the counts of rows, of rows with an empty key part
    and of distinct 64-bit hashes of the keys (compared as their parts: hashing is cheaper than comparing every
    escaped ``serviceKey``).

    As many distinct hashes as rows proves the keys distinct; fewer means a duplicate or, rarely, a hash collision,
    which the exact query that follows tells apart. Only a failing report is read again, for line numbers."""
    null_test = _empty_key_test(matching)
    if nulls == 0 and distinct == total:
        return
    duplicates = con.execute(
        f"SELECT k FROM (SELECT {key_sql(matching)} AS k FROM {table} WHERE NOT ({null_test}))"
        f" GROUP BY k HAVING count(*) > 1 ORDER BY k LIMIT ?",
        [MAX_ISSUES],
    ).fetchall()
    if nulls == 0 and not duplicates:
        return  # two distinct keys shared a hash
    # The rare path: find the exact lines by reading the CSV again (DuckDB's scan keeps no line numbers).
    wanted = {str(row[0]) for row in duplicates}
    issues: list[Issue] = []
    first_seen: dict[str, int] = {}
    for line, row in _csv_records(csv_path):
        values = [row.get(key.field) or None for key in matching.key_fields]
        where = locate(line)
        if any(value is None for value in values):
            empty = [key.field for key, value in zip(matching.key_fields, values, strict=True) if value is None]
            issues.append(Issue("missingProperty", f"{where}: key column {', '.join(empty)} is empty", where))
        else:
            key = python_key(matching, [value or "" for value in values])
            if key in wanted:
                if key in first_seen:
                    issues.append(
                        Issue(
                            "invalidValue",
                            f"{where}: duplicate key {key!r} (first at {locate(first_seen[key])})"[:255],
                            where,
                        )
                    )
                else:
                    first_seen[key] = line
        if len(issues) >= MAX_ISSUES:
            break
    if not issues:  # the two readers disagree; still refuse, without a line number
        issues = [Issue("invalidValue", f"duplicate or empty keys: {sorted(wanted)[:5]}")]
    raise Unprocessable(issues)


def _csv_records(csv_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with open(csv_path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader)]
        for number, record in enumerate(reader, start=2):
            yield number, dict(zip(header, record, strict=False))


def python_key(matching: MatchingRules, values: Sequence[str]) -> str:
    parts = []
    for key, value in zip(matching.key_fields, values, strict=True):
        text = value.lower() if key.case_insensitive else value
        parts.append(text.replace("\\", "\\\\").replace("|", "\\|"))
    return "|".join(parts)


@contextlib.contextmanager
def scratch_file(data_dir: Path, suffix: str) -> Iterator[Path]:
    """A temporary file under ``data_dir/tmp`` (same file system as the reports: renames are atomic), removed after."""
    handle, name = tempfile.mkstemp(suffix=suffix, dir=scratch_dir(data_dir))
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def iter_lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle
