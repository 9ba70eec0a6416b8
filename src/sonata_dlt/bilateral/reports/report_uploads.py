"""Reading inventory report uploads: their content hash, the CSV header, and NDJSON / JSON rows checked and rewritten
as CSV.

DuckDB loads every report from CSV (``report_files.store_csv``); NDJSON and JSON rows are checked here first, one by
one, so that a type problem is named by its exact line (``line <n>``) or pointer (``/rows/<index>``), then written as
CSV cells in ``report_rows.REPORT_COLUMNS`` order. Nothing here holds a whole report in memory except a JSON array
that the API has already parsed.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sonata_dlt.bilateral.report_columns import REPORT_COLUMNS, ColumnKind
from sonata_dlt.errors import Issue, Unprocessable

MAX_ISSUES = 20  # a 422 lists at most this many problems; the first ones are enough to fix a file
COLUMN_NAMES = frozenset(REPORT_COLUMNS)
DECIMAL_LIMIT = 10**12  # |bandwidth| and other decimals stay below this (DECIMAL(18,6))
_decode = json.JSONDecoder().decode  # NDJSON is UTF-8: skip json.loads' encoding detection on every line


@dataclass(frozen=True)
class Upload:
    """A report file as submitted, on disk, with the SHA-256 (lowercase hex) of its bytes: its content hash.

    The API hashes the body as it streams it to disk (``api.smart_bilateral.receive_to_file``), so a large upload
    is read once; ``of_file`` hashes a file that is already there."""

    path: Path
    sha256: str

    @classmethod
    def of_file(cls, path: Path) -> Upload:
        with open(path, "rb") as handle:
            return cls(path, hashlib.file_digest(handle, "sha256").hexdigest())


def read_header(csv_path: Path) -> list[str]:
    with open(csv_path, encoding="utf-8", newline="") as handle:
        try:
            first = next(csv.reader(handle))
        except StopIteration:
            raise Unprocessable.single(
                "invalidValue", "line 1: the CSV file is empty; a header row is required", "line 1"
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise Unprocessable.single("invalidFormat", f"line 1: unreadable CSV header: {exc}", "line 1") from None
    names = [name.strip() for name in first]
    issues = [
        Issue(
            "unexpectedProperty", f"line 1: unknown column {name!r}; columns are {', '.join(REPORT_COLUMNS)}", "line 1"
        )
        for name in names
        if name not in REPORT_COLUMNS
    ]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            issues.append(Issue("invalidValue", f"line 1: column {name!r} appears twice", "line 1"))
        seen.add(name)
    if issues:
        raise Unprocessable(issues[:MAX_ISSUES])
    return names


def ndjson_to_csv(source: Iterable[bytes], target: Path) -> int:
    """Check NDJSON objects line by line and write them as CSV in ``REPORT_COLUMNS`` order; return the count."""
    issues: list[Issue] = []
    count = 0
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        for number, raw in enumerate(source, start=1):
            if not raw.strip():
                issues.append(Issue("invalidFormat", f"line {number}: empty line", f"line {number}"))
            else:
                try:
                    value = _decode(raw.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    issues.append(Issue("invalidFormat", f"line {number}: not a JSON object: {exc}", f"line {number}"))
                    value = None
                if value is not None:
                    row = _checked_row(value, f"line {number}", f"line {number}: ", issues)
                    writer.writerow(row)
                    count += 1
            if len(issues) >= MAX_ISSUES:
                break
    if issues:
        raise Unprocessable(issues[:MAX_ISSUES])
    return count


def rows_to_csv(rows: Sequence[Any], target: Path, pointer: str = "/rows") -> int:
    issues: list[Issue] = []
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        for index, value in enumerate(rows):
            writer.writerow(_checked_row(value, f"{pointer}/{index}", f"{pointer}/{index}: ", issues))
    if issues:
        raise Unprocessable(issues[:MAX_ISSUES])
    return len(rows)


def _checked_row(value: Any, path: str, prefix: str, issues: list[Issue]) -> list[str]:
    """One JSON row as CSV cells; type problems are found here so that their line numbers are exact."""
    if not isinstance(value, dict):
        issues.append(Issue("invalidFormat", f"{prefix}a row must be a JSON object", path))
        return [""] * len(REPORT_COLUMNS)
    if not COLUMN_NAMES.issuperset(value):
        for key in value:
            if key not in REPORT_COLUMNS:
                issues.append(Issue("unexpectedProperty", f"{prefix}unknown column {key!r}", f"{path}/{key}"))
    cells = []
    for column, kind in REPORT_COLUMNS.items():
        cell = value.get(column)
        if cell is None or cell == "":
            cells.append("")
            continue
        # The common cells pass without a call (a million rows are checked one by one).
        if type(cell) is str and kind is ColumnKind.TEXT:
            cells.append(cell)
            continue
        if type(cell) is int and kind is ColumnKind.DECIMAL and -DECIMAL_LIMIT < cell < DECIMAL_LIMIT:
            cells.append(str(cell))
            continue
        problem = _cell_problem(cell, kind)
        if problem:
            issues.append(Issue("invalidValue", f"{prefix}{column} {problem}", f"{path}/{column}"))
            cells.append("")
        else:
            cells.append(str(cell))
    return cells


def _cell_problem(cell: Any, kind: ColumnKind) -> str | None:
    if kind is ColumnKind.TEXT:
        return None if isinstance(cell, str) else "must be a string"
    if kind is ColumnKind.DECIMAL:
        if isinstance(cell, bool) or not isinstance(cell, int | float | str):
            return "must be a number"
        try:
            number = Decimal(str(cell))
        except InvalidOperation:
            return f"must be a number, got {cell!r}"
        if not number.is_finite() or abs(number) >= DECIMAL_LIMIT:
            return f"is out of range: {cell!r}"
        return None
    if not isinstance(cell, str):
        return "must be an RFC 3339 date-time string"
    try:
        datetime.fromisoformat(cell.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return f"must be an RFC 3339 date-time, got {cell!r}"
    return None
