"""Plain-Python reference implementations of the two content hashes, written from the documented forms only.

``inventory-report-rows/v3`` (``services/report_files.py``) and ``reconciliation-results/v3``
(``services/reconciliation_results.py``): the ``sorted-row-encodings`` and ``key-ordered-row-encodings``
constructions of ``services/row_hashes.py``.
Nothing here imports the server's hashing code: a verifier could copy this file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

REPORT_COLUMNS = {
    "serviceId": "text",
    "buyerReference": "text",
    "productType": "text",
    "bandwidthMbps": "decimal",
    "siteA": "text",
    "siteZ": "text",
    "status": "text",
    "startDate": "timestamp",
    "endDate": "timestamp",
}
REPORT_HEADER = "\t".join(REPORT_COLUMNS)
RESULTS_HEADER = "serviceKey\tclassification\tdifferences"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cell(text: str | None) -> str:
    return "-" if text is None else f"{len(text.encode())}:{text}"


def encodings_hash(header: str, encodings: Iterable[str], *, sort: bool = True) -> str:
    lines = [encoding.encode() for encoding in encodings]
    if sort:
        lines.sort()  # by UTF-8 bytes
    return hashlib.sha256(b"".join(line + b"\n" for line in [header.encode(), *lines])).hexdigest()


def report_text(value: Any, kind: str) -> str | None:
    if value is None or value == "":
        return None
    if kind == "text":
        return str(value)
    if kind == "decimal":
        # DuckDB rounds a seventh decimal half away from zero, and has no negative zero.
        number = Decimal(str(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        return str(number if number != 0 else Decimal("0.000000"))
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def rows_hash(rows: Iterable[Mapping[str, Any]]) -> str:
    """``inventory-report-rows/v3`` of rows given as JSON objects (missing columns are empty)."""
    return encodings_hash(
        REPORT_HEADER,
        ("".join(cell(report_text(row.get(column), kind)) for column, kind in REPORT_COLUMNS.items()) for row in rows),
    )


def results_hash(results: Iterable[tuple[str, str, Sequence[Mapping[str, str | None]]]]) -> str:
    """``reconciliation-results/v3`` of ``(serviceKey, classification, differences)`` results, in any order."""
    ordered = sorted(results, key=lambda result: result[0].encode())
    return encodings_hash(
        RESULTS_HEADER,
        (
            cell(key)
            + cell(kind)
            + "".join(cell(d["field"]) + cell(d["buyerValue"]) + cell(d["sellerValue"]) for d in differences)
            for key, kind, differences in ordered
        ),
        sort=False,
    )
