"""Reconciliation results: the DuckDB join that classifies every key; the exceptions stored as content-addressed
Parquet, the matched keys implied.

DuckDB joins the two reports (full outer join on the key fields, compared as the agreement says: lower-cased where
case-insensitive) and classifies every key:

- ``matched``: on both sides and every compared field agrees (within its tolerance: ``agreement_terms``);
- ``partial``: on both sides, some compared fields differ: ``differences`` lists each with both values;
- ``buyerOnly`` / ``sellerOnly``: reported by one side only.

A result is ``serviceKey, classification, differences[{field, buyerValue, sellerValue}]``. ``serviceKey`` is the key
values (lower-cased where case-insensitive) with ``\\`` and ``|`` escaped as ``\\\\`` and ``\\|``, joined by ``|``
(``report_files.key_sql``). A difference's values are text: decimals with six decimals, timestamps
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, NULL when empty.

Form ``reconciliation-exceptions/v4``: only the exceptions (``partial``, ``buyerOnly``, ``sellerOnly``) are stored,
sorted by key, as ``<data_dir>/reconciliations/<resultsHash>.parquet``. The matched results are implied (every key
in both reports that is not ``partial``, with no differences) and are derived from the two reports when read
(``StoredResults``): a reconciliation is recorded with both reports' content hashes and its agreement version, which
fix them. The first read that needs them keeps every result, sorted, in ``reconciliations/paged/<id>.parquet``, a
cache that later reads use. Typically 95 % of keys match; storing them cost more than the whole join, and they say
nothing a reader cannot derive. Form ``reconciliation-results/v3`` stored every result; such files are still read.

``resultsHash`` is the ``key-ordered-row-encodings`` construction of ``row_hashes`` over the stored results: the hex
SHA-256 of the header line ``serviceKey TAB classification TAB differences`` and LF, then, for each stored result in
ascending order of ``serviceKey`` (UTF-8 bytes), its encoding and LF. A result's encoding is its cells
``serviceKey``, ``classification``, then ``field``, ``buyerValue``, ``sellerValue`` of each difference in stored order
(the agreement's order of compared fields), concatenated; each cell is ``-`` when empty, else ``<n>:<text>`` with
``n`` the text's UTF-8 byte length. ``tests/billing/reference_hashes.py`` recomputes it in plain Python.
"""

# SQL here is assembled from fixed column names (report_rows.REPORT_COLUMNS, checked by quoted()), numbers
# from validated Decimals and paths we generate, quoted by sql_text(); user values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sonata_dlt.bilateral.agreement_terms import ComparedField, MatchingRules
from sonata_dlt.bilateral.report_columns import REPORT_COLUMNS, ColumnKind
from sonata_dlt.bilateral.reports import report_files
from sonata_dlt.bilateral.reports.report_files import key_sql, key_values_sql, quoted, sql_text
from sonata_dlt.bilateral.reports.row_hashes import cell_sql, encoding_sql, encodings_hash

CANONICAL_FORM = "reconciliation-exceptions/v4"
FULL_RESULTS_FORMS = ("reconciliation-results/v2", "reconciliation-results/v3")  # every result stored
CLASSIFICATIONS = ("matched", "partial", "buyerOnly", "sellerOnly")
RESULTS_HEADER = "serviceKey\tclassification\tdifferences"
DIFF_TYPE = "STRUCT(field VARCHAR, buyerValue VARCHAR, sellerValue VARCHAR)[]"


@dataclass(frozen=True)
class Results:
    path: Path
    results_hash: str
    counts: dict[str, int]


def results_dir(data_dir: Path) -> Path:
    path = data_dir / "reconciliations"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _display(column: str, prefix: str) -> str:
    ref = f"{prefix}{quoted(column)}"
    kind = REPORT_COLUMNS[column]
    if kind is ColumnKind.TEXT:
        return ref
    if kind is ColumnKind.DECIMAL:
        return f"CAST({ref} AS VARCHAR)"
    return f"strftime({ref} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')"


def _agrees(rule: ComparedField) -> str:
    b, s = f"b.{quoted(rule.field)}", f"s.{quoted(rule.field)}"
    both_empty = f"({b} IS NULL AND {s} IS NULL)"
    if rule.comparison == "exact":
        return f"({b} IS NOT DISTINCT FROM {s})"
    if rule.comparison == "caseInsensitive":
        return f"(lower({b}) IS NOT DISTINCT FROM lower({s}))"
    if rule.comparison == "numeric":
        gap = f"abs(CAST({b} AS DECIMAL(38,6)) - {s})"
        within = f"{gap} <= {rule.tolerance}"
        if rule.relative_tolerance:
            within += f" OR {gap} <= {rule.relative_tolerance} * greatest(abs({b}), abs({s}))"
        return f"coalesce({both_empty} OR ({within}), false)"
    return f"coalesce({both_empty} OR abs(epoch({b}) - epoch({s})) <= {rule.tolerance}, false)"


def _on(matching: MatchingRules) -> str:
    """The join condition: the key parts themselves (equal parts give equal ``serviceKey``: the escaping is
    injective), without building the escaped key for every row."""
    return " AND ".join(
        f"{b} = {s}" for b, s in zip(key_values_sql(matching, "b."), key_values_sql(matching, "s."), strict=True)
    )


def exceptions_sql(matching: MatchingRules, buyer: Path, seller: Path) -> str:
    """The classification query: one row per key that is not ``matched``, sorted by key."""
    entries = [
        f"CASE WHEN NOT {_agrees(rule)} THEN struct_pack(field := {sql_text(rule.field)},"
        f" buyerValue := {_display(rule.field, 'b.')}, sellerValue := {_display(rule.field, 's.')}) END"
        for rule in matching.compared_fields
    ]
    differences = (
        f"list_filter([{', '.join(entries)}], lambda x: x IS NOT NULL)" if entries else f"CAST([] AS {DIFF_TYPE})"
    )
    agreed = " AND ".join(_agrees(rule) for rule in matching.compared_fields) or "true"
    # Key fields are never empty in a stored report, so a NULL first key field means "absent on that side".
    first = quoted(matching.key_fields[0].field)
    only_s, only_b = f"b.{first} IS NULL", f"s.{first} IS NULL"
    # The escaped key and the differences are built for the exceptions only.
    return (
        f"SELECT CASE WHEN {only_s} THEN {key_sql(matching, 's.')} ELSE {key_sql(matching, 'b.')} END AS serviceKey,"
        f" CASE WHEN {only_s} THEN 'sellerOnly' WHEN {only_b} THEN 'buyerOnly' ELSE 'partial' END AS classification,"
        f" CASE WHEN {only_s} OR {only_b} THEN CAST([] AS {DIFF_TYPE}) ELSE {differences} END AS differences"
        f" FROM {report_files.rows_sql(buyer)} b FULL OUTER JOIN {report_files.rows_sql(seller)} s ON {_on(matching)}"
        f" WHERE {only_s} OR {only_b} OR NOT ({agreed}) ORDER BY serviceKey"
    )


def matched_sql(matching: MatchingRules, buyer: Path, seller: Path, exceptions: Path) -> str:
    """The implied ``matched`` results of form v4 (in no order): keys in both reports that are not ``partial``."""
    return (
        f"SELECT {key_sql(matching, 'b.')} AS serviceKey, 'matched' AS classification,"
        f" CAST([] AS {DIFF_TYPE}) AS differences"
        f" FROM {report_files.rows_sql(buyer)} b JOIN {report_files.rows_sql(seller)} s ON {_on(matching)}"
        f" ANTI JOIN (SELECT serviceKey FROM read_parquet({sql_text(str(exceptions))})"
        f" WHERE classification = 'partial') p ON p.serviceKey = {key_sql(matching, 'b.')}"
    )


@dataclass(frozen=True)
class StoredResults:
    """A reconciliation's stored results, and for form v4 what derives the matched ones."""

    path: Path
    derive_matched: tuple[MatchingRules, Path, Path] | None  # rules, buyer and seller report; None: all stored
    paged_copy: Path | None = None  # form v4: every result, sorted by key, once a page has needed the matched ones

    def stored_sql(self) -> str:
        """``serviceKey, classification, differences`` of the stored results (every one for form v3)."""
        return f"SELECT serviceKey, classification, differences FROM read_parquet({sql_text(str(self.path))})"

    def records_sql(self, classification: str | None = None) -> str:
        """``serviceKey, classification, differences`` of every result (or of one classification), in no order."""
        stored = self.stored_sql()
        if self.derive_matched is None:
            return stored if classification is None else f"{stored} WHERE classification = {sql_text(classification)}"
        matched = matched_sql(*self.derive_matched, self.path)
        if classification == "matched":
            return matched
        if classification is not None:
            return f"{stored} WHERE classification = {sql_text(classification)}"
        return f"{stored} UNION ALL {matched}"

    def pageable_sql(self, con: duckdb.DuckDBPyConnection, classification: str | None = None) -> str:
        """``records_sql`` as readers use it (pages, exports, billing runs). Deriving the matched results joins both
        reports (about a second at a million rows), too slow to repeat for every page: the first read that needs
        them writes every result, sorted by key, to ``paged_copy`` (a cache of derived data: deleting it costs one
        more derivation), and later reads use that file."""
        if self.derive_matched is None or self.paged_copy is None or classification not in (None, "matched"):
            return self.records_sql(classification)
        if not self.paged_copy.exists():
            self.paged_copy.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.paged_copy.with_name(f".{self.paged_copy.name}.{uuid.uuid4().hex}")
            try:
                con.execute(
                    f"COPY (SELECT * FROM ({self.records_sql()}) ORDER BY serviceKey)"
                    f" TO {sql_text(str(temporary))} (FORMAT parquet)"
                )
                os.replace(temporary, self.paged_copy)  # concurrent first pages write the same rows; either wins
            finally:
                temporary.unlink(missing_ok=True)
        every = f"SELECT serviceKey, classification, differences FROM read_parquet({sql_text(str(self.paged_copy))})"
        return every if classification is None else f"{every} WHERE classification = 'matched'"


def result_encoding_sql() -> str:
    """The encoding of a stored result (see the module docstring)."""
    difference = encoding_sql(["x.field", "x.buyerValue", "x.sellerValue"])
    differences = f"array_to_string(list_transform(differences, lambda x: {difference}), '')"
    return f"concat({cell_sql('serviceKey')}, {cell_sql('classification')}, {differences})"


def compute_results(data_dir: Path, matching: MatchingRules, buyer: Path, seller: Path, buyer_rows: int) -> Results:
    """Join, classify and store the exceptions under their hash (pure file work: no database); ``buyer_rows`` is the
    buyer report's row count (each of its keys is matched, partial or buyer-only)."""
    temporary = report_files.scratch_dir(data_dir) / f"{uuid.uuid4().hex}.parquet"
    con = report_files.connect(data_dir)
    try:
        con.execute(f"COPY ({exceptions_sql(matching, buyer, seller)}) TO {sql_text(str(temporary))} (FORMAT parquet)")
        table = f"read_parquet({sql_text(str(temporary))})"
        counts = {name: 0 for name in CLASSIFICATIONS}
        for name, count in con.execute(f"SELECT classification, count(*) FROM {table} GROUP BY 1").fetchall():
            counts[str(name)] = int(count)
        counts["matched"] = buyer_rows - counts["partial"] - counts["buyerOnly"]
        # The file is sorted by key (exceptions_sql): its encodings are already in key order.
        results_hash = encodings_hash(
            con, report_files.scratch_dir(data_dir), RESULTS_HEADER, f"SELECT {result_encoding_sql()} AS e FROM {table}"
        )
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    final = results_dir(data_dir) / f"{results_hash}.parquet"
    if final.exists():
        temporary.unlink()
    else:
        os.replace(temporary, final)
    return Results(final, results_hash, counts)
