"""Plain-Python references, written from the documented forms only: the hash of reconciliation results
(``reconciliation-results/v3``, ``bilateral/reconciliation/results.py``: the ``key-ordered-row-encodings`` construction
of ``bilateral/reports/row_hashes.py``) and the text of a stored report value (``bilateral/reports/report_files.py``).
Nothing here imports the server's code: a verifier could copy this file.
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
RESULTS_HEADER = "serviceKey\tclassification\tdifferences"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cell(text: str | None) -> str:
    return "-" if text is None else f"{len(text.encode())}:{text}"


def encodings_hash(header: str, encodings: Iterable[str]) -> str:
    lines = [encoding.encode() for encoding in encodings]
    return hashlib.sha256(b"".join(line + b"\n" for line in [header.encode(), *lines])).hexdigest()


def report_text(value: Any, kind: str) -> str | None:
    """A report cell as stored: text as is, decimals with six decimals, timestamps as microseconds since 1970 (UTC)."""
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
    )
