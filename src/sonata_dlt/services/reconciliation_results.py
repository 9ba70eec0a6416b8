"""Reconciliation results: the DuckDB join that classifies every key, stored as content-addressed Parquet.

DuckDB joins the two reports' Parquet files (full outer join on the key fields, compared as the agreement says:
lower-cased where case-insensitive) and classifies every key:

- ``matched``: on both sides and every compared field agrees (within its tolerance: ``agreement_terms``);
- ``partial``: on both sides, some compared fields differ: ``differences`` lists each with both values;
- ``buyerOnly`` / ``sellerOnly``: reported by one side only.

The results (``serviceKey, classification, differences[{field, buyerValue, sellerValue}]``, sorted by key) are
stored as ``<data_dir>/reconciliations/<resultsHash>.parquet``. ``serviceKey`` is the key values (lower-cased where
case-insensitive) with ``\\`` and ``|`` escaped as ``\\\\`` and ``\\|``, joined by ``|`` (``report_files.key_sql``).
A difference's values are text: decimals with six decimals, timestamps ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, NULL
when empty.

``resultsHash`` (canonical form ``reconciliation-results/v3``) is the ``key-ordered-row-encodings`` construction of
``row_hashes``: the hex SHA-256 of the header line ``serviceKey TAB classification TAB differences`` and LF, then,
for each result in ascending order of ``serviceKey`` (UTF-8 bytes), its encoding and LF. A result's encoding is its
cells ``serviceKey``, ``classification``, then ``field``, ``buyerValue``, ``sellerValue`` of each difference in
stored order (the agreement's order of compared fields), concatenated; each cell is ``-`` when empty, else
``<n>:<text>`` with ``n`` the text's UTF-8 byte length. ``tests/billing/reference_hashes.py`` recomputes it in plain
Python.
"""

# SQL here is assembled from fixed column names (report_rows.REPORT_COLUMNS, checked by quoted()), numbers
# from validated Decimals and paths we generate, quoted by sql_text(); user values travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from sonata_dlt.services import report_files
from sonata_dlt.services.agreement_terms import ComparedField, MatchingRules
from sonata_dlt.services.report_files import key_sql, key_values_sql, quoted, sql_text
from sonata_dlt.services.report_rows import REPORT_COLUMNS, ColumnKind
from sonata_dlt.services.row_hashes import cell_sql, encoding_sql, encodings_hash

CANONICAL_FORM = "reconciliation-results/v3"
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
        within = f"{gap} <= {rule.tolerance} OR {gap} <= {rule.relative_tolerance} * greatest(abs({b}), abs({s}))"
        return f"coalesce({both_empty} OR ({within}), false)"
    return f"coalesce({both_empty} OR abs(epoch({b}) - epoch({s})) <= {rule.tolerance}, false)"


def results_sql(matching: MatchingRules, buyer: Path, seller: Path) -> str:
    """The classification query: one row per key present in either report, sorted by key.

    The join compares the key parts themselves; the escaped ``serviceKey`` is built once per result, from the side
    that has the key (equal parts give equal keys: the escaping is injective)."""
    entries = [
        f"CASE WHEN NOT {_agrees(rule)} THEN struct_pack(field := {sql_text(rule.field)},"
        f" buyerValue := {_display(rule.field, 'b.')}, sellerValue := {_display(rule.field, 's.')}) END"
        for rule in matching.compared_fields
    ]
    differences = (
        f"list_filter([{', '.join(entries)}], lambda x: x IS NOT NULL)" if entries else f"CAST([] AS {DIFF_TYPE})"
    )
    # 95 % of keys typically agree: test that first, and build the list of differences only for the others.
    agreed = " AND ".join(_agrees(rule) for rule in matching.compared_fields) or "true"
    # Key fields are never empty in a stored report, so a NULL first key field means "absent on that side".
    first = quoted(matching.key_fields[0].field)
    on = " AND ".join(
        f"{b} = {s}" for b, s in zip(key_values_sql(matching, "b."), key_values_sql(matching, "s."), strict=True)
    )
    joined = (
        f"SELECT CASE WHEN b.{first} IS NULL THEN {key_sql(matching, 's.')} ELSE {key_sql(matching, 'b.')} END"
        f" AS serviceKey, b.{first} IS NOT NULL AS on_b, s.{first} IS NOT NULL AS on_s, ({agreed}) AS agreed,"
        f" CASE WHEN b.{first} IS NOT NULL AND s.{first} IS NOT NULL AND NOT ({agreed}) THEN {differences}"
        f" ELSE CAST([] AS {DIFF_TYPE}) END AS differences"
        f" FROM {report_files.rows_sql(buyer)} b FULL OUTER JOIN {report_files.rows_sql(seller)} s"
        f" ON {on}"
    )
    return (
        "SELECT serviceKey, CASE WHEN NOT on_b THEN 'sellerOnly' WHEN NOT on_s THEN 'buyerOnly'"
        " WHEN agreed THEN 'matched' ELSE 'partial' END AS classification, differences"
        f" FROM ({joined}) ORDER BY serviceKey"
    )


def result_encoding_sql() -> str:
    """The encoding of a stored result (see the module docstring)."""
    difference = encoding_sql(["x.field", "x.buyerValue", "x.sellerValue"])
    differences = f"array_to_string(list_transform(differences, lambda x: {difference}), '')"
    return f"concat({cell_sql('serviceKey')}, {cell_sql('classification')}, {differences})"


def compute_results(data_dir: Path, matching: MatchingRules, buyer: Path, seller: Path) -> Results:
    """Join, classify and store the results under their hash (pure file work: no database)."""
    temporary = report_files.scratch_dir(data_dir) / f"{uuid.uuid4().hex}.parquet"
    con = report_files.connect(data_dir)
    try:
        con.execute(f"COPY ({results_sql(matching, buyer, seller)}) TO {sql_text(str(temporary))} (FORMAT parquet)")
        table = f"read_parquet({sql_text(str(temporary))})"
        counts = {name: 0 for name in CLASSIFICATIONS}
        for name, count in con.execute(f"SELECT classification, count(*) FROM {table} GROUP BY 1").fetchall():
            counts[str(name)] = int(count)
        # The file is sorted by key (results_sql): its encodings are already in key order.
        results_hash = encodings_hash(
            con,
            report_files.scratch_dir(data_dir),
            RESULTS_HEADER,
            f"SELECT {result_encoding_sql()} AS e FROM {table}",
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
