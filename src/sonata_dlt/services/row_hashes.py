"""Content hashes of row files (inventory reports, reconciliation results), computed by DuckDB without Python loops.

One construction serves both, so that a million rows cost one SHA-256 per row, at most one sort of digests and one
streaming SHA-256, instead of a sort of whole rows:

1. Each row is encoded as the concatenation of its cells, in a fixed column order. A cell is ``-`` when empty
   (NULL), else ``<n>:<text>``: ``n`` the length of ``text`` in UTF-8 bytes, in decimal. The length prefix makes the
   encoding self-delimiting: any text, TAB and newline included, is taken as is, with no escaping to get wrong.
2. The row digest is the lowercase hex SHA-256 of the row's UTF-8 encoding.
3. The content hash is the lowercase hex SHA-256 of the UTF-8 bytes of: a header line (naming the form's columns),
   then the row digests, each line ending in LF, in the form's order:

   - ``sorted-row-digests`` (inventory reports, whose row order means nothing): the digests in ascending order.
     This makes the hash independent of row order; it stays collision-resistant because the sorted list of digests
     determines the multiset of rows (up to a SHA-256 collision) and the outer SHA-256 covers that list whole.
     (Adding or XOR-ing digests would also be order-independent, but is not collision-resistant.)
   - ``key-ordered-row-digests`` (reconciliation results, one row per unique key, stored sorted by key): the digests
     in the order of the rows' keys, ascending by UTF-8 bytes. The stored file is already in that order, so no
     second sort is needed: DuckDB reads a file back in its order (``preserve_insertion_order``, set in
     ``report_files.connect``).

Each form says which text a typed value has (``inventory_reports`` and ``reconciliation`` hold the forms'
descriptions). DuckDB sorts the digests (spilling past its memory limit) and writes them, one per line, to a scratch
file that hashlib then reads in chunks: memory stays flat whatever the row count.
"""

# SQL here is assembled from column expressions built by our own modules (fixed column names, see
# report_files.quoted) and paths we generate, quoted by sql_text.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from pathlib import Path

import duckdb

CHUNK = 1 << 20  # bytes of the digest file handed to hashlib at a time


def sql_text(value: str) -> str:
    """A SQL string literal (paths and constants we build ourselves; quotes doubled all the same)."""
    return "'" + value.replace("'", "''") + "'"


def cell_sql(text: str) -> str:
    """The pieces of one cell, for ``concat``: ``<n>:<text>``, or ``-`` when ``text`` (a VARCHAR expression) is NULL.

    ``concat`` skips NULL arguments, so a NULL text leaves only the ``-``; ``strlen`` counts UTF-8 bytes."""
    return f"strlen({text}), CASE WHEN {text} IS NULL THEN '-' ELSE ':' END, {text}"


def encoding_sql(cells: Iterable[str]) -> str:
    """The row encoding of VARCHAR expressions, one per cell, in order."""
    return "concat(" + ", ".join(cell_sql(text) for text in cells) + ")"


def digest_sql(encoding: str) -> str:
    return f"sha256({encoding})"


def digests_hash(
    con: duckdb.DuckDBPyConnection, scratch: Path, header: str, digests_sql: str, *, sort: bool = True
) -> str:
    """SHA-256 of ``header`` LF, then the digests of ``digests_sql`` (a query with one column ``d``), each LF: sorted
    (``sorted-row-digests``) or in the query's own order (``key-ordered-row-digests``: the query must keep it).

    ``scratch`` is a directory for the digest file (removed before returning)."""
    path = scratch / f"digests-{uuid.uuid4().hex}.txt"
    query = f"SELECT d FROM ({digests_sql})" + (" ORDER BY d" if sort else "")
    try:
        # Hex digests never need CSV quoting, so the file is exactly the digest lines.
        con.execute(f"COPY ({query}) TO {sql_text(str(path))} (FORMAT csv, HEADER false)")
        digest = hashlib.sha256((header + "\n").encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    finally:
        path.unlink(missing_ok=True)
