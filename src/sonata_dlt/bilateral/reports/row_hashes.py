"""The content hash of a row file stored in key order (reconciliation results), computed by DuckDB and one hashlib
pass: one DuckDB pass over the rows and one streaming SHA-256 over their encodings, no per-row hash and no sort.

1. Each row is encoded as the concatenation of its cells, in a fixed column order. A cell is ``-`` when empty
   (NULL), else ``<n>:<text>``: ``n`` the length of ``text`` in UTF-8 bytes, in decimal. The length prefix makes the
   encoding self-delimiting: any text, TAB and newline included, is taken as is, with no escaping to get wrong.
2. The content hash is the lowercase hex SHA-256 of the UTF-8 bytes of: a header line (naming the form's columns),
   then the row encodings, each followed by LF, in the order of the rows' keys (``key-ordered-row-encodings``:
   ascending by UTF-8 bytes; one row per unique key). The stored file is already in that order, and DuckDB reads a
   file back in its order (``preserve_insertion_order``, set in ``report_files.connect``).

   The bytes split back into rows without ambiguity: every cell starts with a digit or ``-`` and its length prefix
   says where it ends, so an LF where the next cell would start ends the row.

The form says which text a typed value has (``reconciliation_results`` describes it). Forms before ``v3`` hashed
each row's encoding with DuckDB's SHA-256 and hashed the hex digests instead; DuckDB's SHA-256 does not use the
CPU's SHA instructions and cost, per row, as much as encoding and writing together, so v3 hands the encodings to
hashlib (OpenSSL, which uses them) whole.

How the bytes leave DuckDB: ``COPY ... (FORMAT csv, QUOTE '', ESCAPE '')`` of the one encoding column writes each
value as is followed by LF (no quoting, no escaping: nothing in a value is special to it) into a named pipe that a
thread feeds to hashlib while DuckDB encodes and writes, so the hashing overlaps DuckDB's work and the encodings
never touch the disk (where ``os.mkfifo`` is missing, a scratch file read back after the COPY). Memory stays flat
whatever the row count: the pipe holds 64 KiB. ``tests/billing/reference_hashes.py`` recomputes the hash in plain
Python, awkward values (newlines, quotes, commas, non-ASCII) included.
"""

# SQL here is assembled from column expressions built by our own modules (fixed column names, see
# report_files.quoted) and paths we generate, quoted by sql_text.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

CHUNK = 1 << 20  # bytes of encodings handed to hashlib at a time


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


def encodings_hash(con: duckdb.DuckDBPyConnection, scratch: Path, header: str, encodings_sql: str) -> str:
    """SHA-256 of ``header`` LF, then the encodings of ``encodings_sql`` (a query with one column ``e``, in key
    order: the query must keep it), each LF.

    ``scratch`` is a directory for the pipe or file (removed before returning)."""
    path = scratch / f"encodings-{uuid.uuid4().hex}"
    query = f"SELECT e FROM ({encodings_sql})"
    # An encoding is never empty (a cell has at least one byte), so DuckDB's empty NULL string never shows.
    # USE_TMP_FILE false: DuckDB must write into the pipe, not into a file renamed over it afterwards.
    options = "FORMAT csv, HEADER false, QUOTE '', ESCAPE '', USE_TMP_FILE false"
    copy = f"COPY ({query}) TO {sql_text(str(path))} ({options})"
    digest = hashlib.sha256((header + "\n").encode())
    try:
        if hasattr(os, "mkfifo"):
            _hash_through_pipe(con, copy, path, digest)
        else:  # pragma: no cover - platforms without named pipes
            con.execute(copy)
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
    finally:
        path.unlink(missing_ok=True)
    return digest.hexdigest()


def _hash_through_pipe(con: duckdb.DuckDBPyConnection, copy: str, path: Path, digest: Any) -> None:
    """Run ``copy`` into the named pipe ``path`` while a thread feeds what comes out of it to ``digest``.

    We hold a write end of our own until the COPY has returned: the reader sees the end of the data only once both
    DuckDB's and ours are closed, so it can neither stop before DuckDB opens the pipe nor wait forever when the COPY
    fails before opening it."""
    os.mkfifo(path, 0o600)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # does not wait for a writer
    holder = os.open(path, os.O_WRONLY)
    os.set_blocking(reader, True)
    failure: list[BaseException] = []

    def drain() -> None:
        try:
            while chunk := os.read(reader, CHUNK):
                digest.update(chunk)  # hashlib releases the GIL on large buffers
        except BaseException as exc:  # pragma: no cover - a read error on our own pipe
            failure.append(exc)

    thread = threading.Thread(target=drain, name="encodings-hash", daemon=True)
    thread.start()
    try:
        con.execute(copy)
    finally:
        os.close(holder)
        thread.join()
        os.close(reader)
    if failure:  # pragma: no cover
        raise failure[0]
