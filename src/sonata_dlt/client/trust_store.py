"""The verifier's own memory, in a small local SQLite file: what it saw and what it came to trust.

Per log (checkpoint origin) it keeps:

- the pinned host key (trusted on first use unless given explicitly);
- **every checkpoint it ever saw** (size, root, note): a second checkpoint of a size it knows, with another root,
  is a signed fork, reported at once and kept as evidence;
- the last checkpoint it fully verified (size, root and the Merkle frontier of that tree), from which the next run
  checks consistency and replays only the new leaves;
- the last version and state hash of every resource it checked, and the last version the log showed for every
  resource it replayed, so a rolled-back or rewritten history shows up even where proofs alone would not;
- its own public keys, so a cosignature attributed to this party by a key it never held is caught.

The server never sees this file. Losing it only loses history (the next run starts afresh); it holds no secret.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from sonata_dlt.errors import ConfigurationError, VerificationError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS host_key (origin TEXT PRIMARY KEY, vkey TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_checkpoint (
    origin TEXT NOT NULL, size INTEGER NOT NULL, root_hash BLOB NOT NULL, note BLOB NOT NULL, seen_at TEXT NOT NULL,
    PRIMARY KEY (origin, size));
CREATE TABLE IF NOT EXISTS fork_evidence (
    origin TEXT NOT NULL, size INTEGER NOT NULL, root_hash BLOB NOT NULL, note BLOB NOT NULL, seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trusted (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root_hash BLOB NOT NULL, frontier BLOB NOT NULL,
    verified_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resource_state (
    origin TEXT NOT NULL, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL,
    version INTEGER NOT NULL, state_hash TEXT NOT NULL, leaf_index INTEGER NOT NULL,
    PRIMARY KEY (origin, resource_type, resource_id));
CREATE TABLE IF NOT EXISTS log_version (
    origin TEXT NOT NULL, resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, version INTEGER NOT NULL,
    leaf_index INTEGER NOT NULL, PRIMARY KEY (origin, resource_type, resource_id));
CREATE TABLE IF NOT EXISTS own_key (public_key BLOB PRIMARY KEY, vkey TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Trusted:
    size: int
    root_hash: bytes
    frontier: list[bytes]


@dataclass(frozen=True)
class KnownState:
    version: int
    state_hash: str
    leaf_index: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


class TrustStore:
    """Open with ``TrustStore.open(path)``; use as a context manager. Writes commit only through ``commit()``,
    except fork evidence and seen checkpoints, which are kept even when the run that saw them fails."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path) -> TrustStore:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path)
            connection.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the verifier state file {path}: {exc}") from exc
        return cls(connection)

    def __enter__(self) -> TrustStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.rollback()
        self._db.close()

    def commit(self) -> None:
        self._db.commit()

    # -- host key -----------------------------------------------------------------------------------------------

    def host_vkey(self, origin: str) -> str | None:
        row = self._db.execute("SELECT vkey FROM host_key WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else str(row[0])

    def pin_host_vkey(self, origin: str, vkey: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO host_key (origin, vkey) VALUES (?, ?)", (origin, vkey))

    # -- checkpoints --------------------------------------------------------------------------------------------

    def seen_root(self, origin: str, size: int) -> bytes | None:
        row = self._db.execute(
            "SELECT root_hash FROM seen_checkpoint WHERE origin = ? AND size = ?", (origin, size)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def remember_checkpoint(self, origin: str, size: int, root_hash: bytes, note: bytes) -> bool:
        """Record a checkpoint whose signature verified; return True when it is new to this verifier.

        Raises ``VerificationError`` on a fork: this size was seen before with another root. Both notes are
        signed by the host, so together they prove the fork; the new one is kept as evidence.
        """
        row = self._db.execute(
            "SELECT root_hash, seen_at FROM seen_checkpoint WHERE origin = ? AND size = ?", (origin, size)
        ).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO seen_checkpoint (origin, size, root_hash, note, seen_at) VALUES (?, ?, ?, ?, ?)",
                (origin, size, root_hash, note, _now()),
            )
            self._db.commit()
            return True
        if bytes(row[0]) != root_hash:
            self._db.execute(
                "INSERT INTO fork_evidence (origin, size, root_hash, note, seen_at) VALUES (?, ?, ?, ?, ?)",
                (origin, size, root_hash, note, _now()),
            )
            self._db.commit()
            raise VerificationError(
                f"forked history: the checkpoint of size {size} now has root {root_hash.hex()}, but this verifier "
                f"saw a host-signed checkpoint of size {size} with root {bytes(row[0]).hex()} on {row[1]}"
            )
        return False

    def seen_sizes(self, origin: str) -> list[int]:
        rows = self._db.execute("SELECT size FROM seen_checkpoint WHERE origin = ? ORDER BY size", (origin,))
        return [int(size) for (size,) in rows]

    def trusted(self, origin: str) -> Trusted | None:
        row = self._db.execute("SELECT size, root_hash, frontier FROM trusted WHERE origin = ?", (origin,)).fetchone()
        if row is None:
            return None
        packed = bytes(row[2])
        return Trusted(int(row[0]), bytes(row[1]), [packed[i : i + 32] for i in range(0, len(packed), 32)])

    def set_trusted(self, origin: str, size: int, root_hash: bytes, frontier: list[bytes]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO trusted (origin, size, root_hash, frontier, verified_at) VALUES (?, ?, ?, ?, ?)",
            (origin, size, root_hash, b"".join(frontier), _now()),
        )

    # -- resources ----------------------------------------------------------------------------------------------

    def known_state(self, origin: str, resource_type: str, resource_id: str) -> KnownState | None:
        row = self._db.execute(
            "SELECT version, state_hash, leaf_index FROM resource_state "
            "WHERE origin = ? AND resource_type = ? AND resource_id = ?",
            (origin, resource_type, resource_id),
        ).fetchone()
        return None if row is None else KnownState(int(row[0]), str(row[1]), int(row[2]))

    def known_resources(self, origin: str) -> set[tuple[str, str]]:
        rows = self._db.execute(
            "SELECT resource_type, resource_id FROM resource_state WHERE origin = ? "
            "UNION SELECT resource_type, resource_id FROM log_version WHERE origin = ?",
            (origin, origin),
        )
        return {(str(kind), str(ident)) for kind, ident in rows}

    def remember_state(
        self, origin: str, resource_type: str, resource_id: str, version: int, state_hash: str, leaf_index: int
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO resource_state "
            "(origin, resource_type, resource_id, version, state_hash, leaf_index) VALUES (?, ?, ?, ?, ?, ?)",
            (origin, resource_type, resource_id, version, state_hash, leaf_index),
        )

    def log_version(self, origin: str, resource_type: str, resource_id: str) -> tuple[int, int] | None:
        """(version, leaf index) of the resource's last leaf this verifier replayed."""
        row = self._db.execute(
            "SELECT version, leaf_index FROM log_version WHERE origin = ? AND resource_type = ? AND resource_id = ?",
            (origin, resource_type, resource_id),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def remember_log_version(
        self, origin: str, resource_type: str, resource_id: str, version: int, leaf_index: int
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO log_version (origin, resource_type, resource_id, version, leaf_index) "
            "VALUES (?, ?, ?, ?, ?)",
            (origin, resource_type, resource_id, version, leaf_index),
        )

    # -- own keys -----------------------------------------------------------------------------------------------

    def remember_own_key(self, public_key: bytes, vkey: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO own_key (public_key, vkey) VALUES (?, ?)", (public_key, vkey))
        self._db.commit()

    def is_own_key(self, public_key: bytes) -> bool:
        row = self._db.execute("SELECT 1 FROM own_key WHERE public_key = ?", (public_key,)).fetchone()
        return row is not None
