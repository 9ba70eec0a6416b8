"""The ledger backend interface and the receipt every backend returns.

A backend anchors a checkpoint (origin, tree size, root hash) somewhere the host cannot quietly rewrite, and can
later show, independently of the database, that the anchor is still there. Backends are plugins: anything
implementing :class:`LedgerBackend` and registered under the entry-point group ``sonata_dlt.ledger_backends``.
Every backend must pass the shared contract tests in ``tests/ledger/test_backend_contract.py``.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from sonata_dlt.errors import VerificationError

ROOT_HASH_SIZE = 32

_T = TypeVar("_T")


@dataclass(frozen=True)
class AnchorReceipt:
    """Proof of where a checkpoint was anchored; enough for the backend to find and re-check it later.

    ``reference`` is backend specific: ``local`` puts the whole signed journal entry there (sequence, entryHash,
    previousHash, signature, ...), so the receipt can be checked offline; ``ethereum`` puts the chain locator
    (chainId, contractAddress, transactionHash, blockNumber, blockHash, logIndex, sender).
    """

    backend: str
    origin: str
    size: int
    root_hash: bytes
    reference: Mapping[str, str | int]
    anchored_at: datetime

    def __post_init__(self) -> None:
        if len(self.root_hash) != ROOT_HASH_SIZE:
            raise ValueError(f"root_hash must be {ROOT_HASH_SIZE} bytes, got {len(self.root_hash)}")
        if self.size < 0:
            raise ValueError("size must not be negative")
        if self.anchored_at.tzinfo is None:
            raise ValueError("anchored_at must be timezone-aware (UTC)")
        object.__setattr__(self, "anchored_at", self.anchored_at.astimezone(UTC))
        # The reference is frozen too, so a receipt cannot be altered after a backend has checked it.
        object.__setattr__(self, "reference", MappingProxyType(dict(self.reference)))

    def __hash__(self) -> int:
        # The generated hash would fail on the (unhashable) mapping proxy; hash its sorted items instead.
        items = tuple(sorted(self.reference.items()))
        return hash((self.backend, self.origin, self.size, self.root_hash, items, self.anchored_at))

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: ``rootHash`` is lowercase hex, ``anchoredAt`` RFC 3339 UTC with microseconds."""
        return {
            "backend": self.backend,
            "origin": self.origin,
            "size": self.size,
            "rootHash": self.root_hash.hex(),
            "reference": dict(self.reference),
            "anchoredAt": format_timestamp(self.anchored_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AnchorReceipt:
        """Parse :meth:`to_json` output. A malformed receipt raises ``VerificationError`` saying which field."""
        try:
            backend = _field(data, "backend", str)
            origin = _field(data, "origin", str)
            size = _field(data, "size", int)
            root_hex = _field(data, "rootHash", str)
            raw_reference = _field(data, "reference", dict)
            anchored_at = parse_timestamp(_field(data, "anchoredAt", str))
            reference: dict[str, str | int] = {}
            for key, value in raw_reference.items():
                if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, str | int):
                    raise VerificationError(f"malformed receipt: reference.{key} must be a string or an integer")
                reference[key] = value
            try:
                root_hash = bytes.fromhex(root_hex)
            except ValueError:
                raise VerificationError("malformed receipt: rootHash is not hex") from None
            return cls(backend, origin, size, root_hash, reference, anchored_at)
        except ValueError as exc:
            raise VerificationError(f"malformed receipt: {exc}") from None


def _field(data: Mapping[str, object], name: str, kind: type[_T]) -> _T:
    value = data.get(name)
    # bool is an int subclass; a receipt with "size": true is malformed, not size 1.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise VerificationError(f"malformed receipt: {name} must be a {kind.__name__}")
    return value


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits, so the text form round-trips byte for byte."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise VerificationError(f"malformed timestamp {text!r}: expected RFC 3339") from None
    if moment.tzinfo is None:
        raise VerificationError(f"malformed timestamp {text!r}: no UTC offset")
    return moment.astimezone(UTC)


MAX_ORIGIN_BYTES = 1024
MAX_SIZE = 2**64 - 1  # the ethereum contract carries size as uint64; every backend accepts the same range


def check_anchor_input(origin: str, size: int, root_hash: bytes) -> None:
    """Reject values no checkpoint can have. These are caller bugs, hence ``ValueError``, not a ledger error."""
    if not origin or "\n" in origin or len(origin.encode()) > MAX_ORIGIN_BYTES:
        raise ValueError(f"origin must be one non-empty line of at most {MAX_ORIGIN_BYTES} UTF-8 bytes")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
        raise ValueError("size must be an integer in [0, 2**64)")
    if not isinstance(root_hash, bytes) or len(root_hash) != ROOT_HASH_SIZE:
        raise ValueError(f"root_hash must be {ROOT_HASH_SIZE} bytes")


def decode_hex(text: str, what: str, size: int | None = None) -> bytes:
    """Hex (with or without 0x) to bytes, raising ``VerificationError`` naming ``what`` when it is not."""
    try:
        raw = binascii.unhexlify(text.removeprefix("0x"))
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not hex") from None
    if size is not None and len(raw) != size:
        raise VerificationError(f"{what} must be {size} bytes, got {len(raw)}")
    return raw


@runtime_checkable
class LedgerBackend(Protocol):
    """What the application needs from a ledger. Keep it this small."""

    name: ClassVar[str]

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LedgerBackend:
        """Build a backend from its settings. Must not need the ledger to be reachable (it may be down now)."""
        ...

    def anchor(self, origin: str, size: int, root_hash: bytes) -> AnchorReceipt:
        """Submit one anchor; return once it is confirmed at the configured depth. Raises ``LedgerUnavailable``."""
        ...

    def verify_anchor(self, receipt: AnchorReceipt) -> None:
        """Re-read the ledger independently; raise ``VerificationError`` unless it holds exactly
        (origin, size, root_hash) at ``receipt.reference``. Raises ``LedgerUnavailable`` if it cannot look."""
        ...

    def close(self) -> None:
        """Release files, connections and locks. Idempotent."""
        ...
