"""The ``local`` backend: an embedded, append-only, hash-chained, Ed25519-signed anchor journal.

It needs no service, which makes it the default, but it is the host vouching for itself: it proves what the
journal key signed and in which order, not that a third party saw it. Counter-parties that keep the receipts they
are shown turn it into more than that (see :func:`verify_receipt_offline`).

File format: JSON lines (UTF-8), one entry per line, each line the canonical JSON (keys sorted, no spaces; equal to
RFC 8785 for these value types: strings and integers below 2**53) of::

    {"anchoredAt": "2025-01-01T00:00:00.000000Z", "entryHash": hex, "origin": str, "previousHash": hex,
     "root": hex, "sequence": int, "signature": base64, "size": int}

- ``sequence`` counts from 0 and equals the line number (0-based).
- ``previousHash`` is the previous entry's ``entryHash``; 32 zero bytes for entry 0.
- ``entryHash`` = SHA-256(``ENTRY_HASH_PREFIX`` || canonical JSON of the six other fields, i.e. without
  ``entryHash`` and ``signature``).
- ``signature`` = Ed25519 over ``SIGNATURE_PREFIX`` || entryHash (raw 32 bytes), standard base64. The prefix keeps
  a journal signature from ever being mistaken for a signed note or cosignature made with the same host key.

Appends take an exclusive ``flock`` on the journal (so several processes may share it), write the line with one
``write`` and ``fsync`` before returning the receipt. A crash mid-append leaves bytes after the last newline: a
*torn* line. It was never acknowledged (no receipt was returned), so it is never valid; verification reports it,
and the next append moves it to ``<path>.torn`` (kept for forensics) and truncates it away.

Options (``from_options``):

- ``path`` (required): the journal file, created with its parent directories on first append.
- ``signing_key_seed``: the journal key's 32-byte Ed25519 seed, as bytes or 64 hex characters; or
  ``signing_key_path``: a file holding that seed as 64 hex characters (surrounding whitespace ignored).
  Without either, the backend can verify but not anchor.
- ``verify_key``: the 32-byte Ed25519 public key (bytes or hex) that verification trusts. Defaults to the public
  half of the signing key; if both are given they must match.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError
from sonata_dlt.ledger.base import (
    AnchorReceipt,
    check_anchor_input,
    decode_hex,
    format_timestamp,
    parse_timestamp,
)

__all__ = ["ENTRY_HASH_PREFIX", "SIGNATURE_PREFIX", "LocalLedger", "verify_receipt_offline"]

log = logging.getLogger(__name__)

ENTRY_HASH_PREFIX = b"sonata-dlt/local-anchor-journal/v1/entry\n"
SIGNATURE_PREFIX = b"sonata-dlt/local-anchor-journal/v1/signature\n"
GENESIS_PREVIOUS_HASH = bytes(32)
_TAIL_BLOCK = 4096
_ENTRY_FIELDS = frozenset(
    {"anchoredAt", "entryHash", "origin", "previousHash", "root", "sequence", "signature", "size"}
)


def _canonical(obj: Mapping[str, object]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class _Entry:
    sequence: int
    origin: str
    size: int
    root: bytes
    anchored_at: str  # kept as text: it is hashed as written
    previous_hash: bytes
    entry_hash: bytes
    signature: bytes

    def body(self) -> dict[str, object]:
        return {
            "anchoredAt": self.anchored_at,
            "origin": self.origin,
            "previousHash": self.previous_hash.hex(),
            "root": self.root.hex(),
            "sequence": self.sequence,
            "size": self.size,
        }

    def computed_hash(self) -> bytes:
        return hashlib.sha256(ENTRY_HASH_PREFIX + _canonical(self.body())).digest()

    def to_line(self) -> bytes:
        record = self.body() | {
            "entryHash": self.entry_hash.hex(),
            "signature": base64.b64encode(self.signature).decode(),
        }
        return _canonical(record) + b"\n"

    def check(self, verify_key: Ed25519PublicKey, label: str = "journal entry") -> None:
        """Raise ``VerificationError`` unless the hash matches the content and the signature holds."""
        if self.computed_hash() != self.entry_hash:
            raise VerificationError(f"{label} {self.sequence}: entryHash does not match its content")
        try:
            verify_key.verify(self.signature, SIGNATURE_PREFIX + self.entry_hash)
        except InvalidSignature:
            raise VerificationError(
                f"{label} {self.sequence}: signature does not verify under the journal key"
            ) from None

    @classmethod
    def parse(cls, line: bytes, where: str) -> _Entry:
        try:
            record = json.loads(line)
        except ValueError:
            raise VerificationError(f"{where} is not valid JSON") from None
        if not isinstance(record, dict) or set(record) != _ENTRY_FIELDS:
            raise VerificationError(f"{where} does not have exactly the fields {sorted(_ENTRY_FIELDS)}")
        sequence, size = record["sequence"], record["size"]
        texts = [record[k] for k in ("anchoredAt", "entryHash", "origin", "previousHash", "root", "signature")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (sequence, size)) or not all(
            isinstance(t, str) for t in texts
        ):
            raise VerificationError(f"{where} has a field of the wrong type")
        try:
            signature = base64.b64decode(record["signature"], validate=True)
        except ValueError:
            raise VerificationError(f"{where}: signature is not base64") from None
        return cls(
            sequence=sequence,
            origin=record["origin"],
            size=size,
            root=decode_hex(record["root"], f"{where}: root", 32),
            anchored_at=record["anchoredAt"],
            previous_hash=decode_hex(record["previousHash"], f"{where}: previousHash", 32),
            entry_hash=decode_hex(record["entryHash"], f"{where}: entryHash", 32),
            signature=signature,
        )

    def receipt(self) -> AnchorReceipt:
        return AnchorReceipt(
            backend=LocalLedger.name,
            origin=self.origin,
            size=self.size,
            root_hash=self.root,
            reference={
                "sequence": self.sequence,
                "entryHash": self.entry_hash.hex(),
                "previousHash": self.previous_hash.hex(),
                "signature": base64.b64encode(self.signature).decode(),
            },
            anchored_at=parse_timestamp(self.anchored_at),
        )

    @classmethod
    def from_receipt(cls, receipt: AnchorReceipt) -> _Entry:
        if receipt.backend != LocalLedger.name:
            raise VerificationError(f"receipt is from backend {receipt.backend!r}, not {LocalLedger.name!r}")
        ref = receipt.reference
        sequence = ref.get("sequence")
        if not isinstance(sequence, int) or sequence < 0:
            raise VerificationError("receipt reference.sequence must be a non-negative integer")
        texts = {k: ref.get(k) for k in ("entryHash", "previousHash", "signature")}
        for key, value in texts.items():
            if not isinstance(value, str):
                raise VerificationError(f"receipt reference.{key} must be a string")
        try:
            signature = base64.b64decode(str(texts["signature"]), validate=True)
        except ValueError:
            raise VerificationError("receipt reference.signature is not base64") from None
        return cls(
            sequence=sequence,
            origin=receipt.origin,
            size=receipt.size,
            root=receipt.root_hash,
            anchored_at=format_timestamp(receipt.anchored_at),
            previous_hash=decode_hex(str(texts["previousHash"]), "receipt reference.previousHash", 32),
            entry_hash=decode_hex(str(texts["entryHash"]), "receipt reference.entryHash", 32),
            signature=signature,
        )


def _sign(key: Ed25519PrivateKey, last: _Entry | None, origin: str, size: int, root: bytes) -> _Entry:
    """The entry that follows ``last`` (or the first one), hashed and signed."""
    sequence = 0 if last is None else last.sequence + 1
    previous_hash = GENESIS_PREVIOUS_HASH if last is None else last.entry_hash
    now = datetime.now(UTC)
    if last is not None:
        # Time never runs backwards in the journal, even if the system clock is stepped back.
        now = max(now, parse_timestamp(last.anchored_at))
    draft = _Entry(sequence, origin, size, root, format_timestamp(now), previous_hash, b"", b"")
    entry_hash = draft.computed_hash()
    signature = key.sign(SIGNATURE_PREFIX + entry_hash)
    return _Entry(sequence, origin, size, root, draft.anchored_at, previous_hash, entry_hash, signature)


def verify_receipt_offline(receipt: AnchorReceipt, verify_key: bytes) -> None:
    """Check a ``local`` receipt from the receipt alone and the journal's raw 32-byte Ed25519 public key.

    The receipt embeds the signed journal entry, so this recomputes its ``entryHash`` from (sequence, origin, size,
    root, anchoredAt, previousHash) and checks the signature. Raises ``VerificationError`` on any mismatch.

    What it proves: the holder of the journal key declared, at the time it wrote in ``anchoredAt`` (its own clock),
    that (origin, size, root) is entry ``sequence`` of its journal, following the entry whose hash is
    ``previousHash``. What it does not prove: that the entry is still in the journal, that the journal was not
    forked (the key holder can sign two different entries with one sequence number), or that the time is true.
    Two receipts with the same sequence and different entry hashes are themselves a signed proof of such a fork,
    which is why counter-parties should keep every receipt they are shown; for independence from the host, anchor
    on the ``ethereum`` backend.
    """
    entry = _Entry.from_receipt(receipt)
    entry.check(_public_key(verify_key, "verify_key", VerificationError), "receipt for journal entry")


def _public_key(raw: bytes, what: str, error: type[Exception]) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise error(f"{what} must be a raw 32-byte Ed25519 public key, got {len(raw)} bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise error(f"{what} is not a valid Ed25519 public key: {exc}") from None


def _key_bytes(value: object, what: str) -> bytes:
    """Raw key bytes from bytes or hex text (settings carry text)."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        try:
            raw = bytes.fromhex(value.strip())
        except ValueError:
            raise ConfigurationError(f"{what} is not hex") from None
    else:
        raise ConfigurationError(f"{what} must be bytes or hex text")
    if len(raw) != 32:
        raise ConfigurationError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


class LocalLedger:
    """Anchors into a signed, hash-chained journal file. See the module docstring for format and options."""

    name: ClassVar[str] = "local"

    def __init__(self, path: Path, signing_key: Ed25519PrivateKey | None, verify_key: Ed25519PublicKey) -> None:
        self.path = path
        self._signing_key = signing_key
        self._verify_key = verify_key

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LocalLedger:
        if not options.get("path"):
            raise ConfigurationError("local ledger: option 'path' (the journal file) is required")
        seed: bytes | None = None
        if options.get("signing_key_seed") is not None:
            seed = _key_bytes(options["signing_key_seed"], "local ledger signing_key_seed")
        elif options.get("signing_key_path"):
            key_path = Path(options["signing_key_path"])
            try:
                seed = _key_bytes(key_path.read_text(), f"local ledger key file {key_path}")
            except OSError as exc:
                raise ConfigurationError(f"local ledger: cannot read signing_key_path {key_path}: {exc}") from None
        signing_key = Ed25519PrivateKey.from_private_bytes(seed) if seed is not None else None
        derived = signing_key.public_key() if signing_key is not None else None
        if options.get("verify_key") is not None:
            raw = _key_bytes(options["verify_key"], "local ledger verify_key")
            verify_key = _public_key(raw, "local ledger verify_key", ConfigurationError)
            if derived is not None and derived.public_bytes(Encoding.Raw, PublicFormat.Raw) != raw:
                raise ConfigurationError("local ledger: verify_key is not the public key of the signing key")
        elif derived is not None:
            verify_key = derived
        else:
            raise ConfigurationError("local ledger: give signing_key_seed, signing_key_path or verify_key")
        return cls(Path(options["path"]), signing_key, verify_key)

    @property
    def verify_key(self) -> bytes:
        """The raw public key receipts verify under (hand it to :func:`verify_receipt_offline`)."""
        return self._verify_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    # -- anchoring -------------------------------------------------------------------------------------------

    def anchor(self, origin: str, size: int, root_hash: bytes) -> AnchorReceipt:
        check_anchor_input(origin, size, root_hash)
        signing_key = self._signing_key
        if signing_key is None:
            raise ConfigurationError("local ledger opened without a signing key cannot anchor")
        try:
            with self._locked() as journal:
                last = self._last_entry(journal)
                entry = _sign(signing_key, last, origin, size, root_hash)
                journal.write(entry.to_line())
                journal.flush()
                os.fsync(journal.fileno())
        except OSError as exc:
            raise LedgerUnavailable(f"local ledger journal {self.path} cannot be written: {exc}") from exc
        return entry.receipt()

    @contextmanager
    def _locked(self) -> Iterator[IO[bytes]]:
        """The journal opened for append under an exclusive lock, released on exit."""
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as journal:
            fcntl.flock(journal.fileno(), fcntl.LOCK_EX)
            try:
                if created:
                    # Make the new file's directory entry durable too, or a crash could lose the whole journal.
                    dir_fd = os.open(self.path.parent, os.O_RDONLY)
                    try:
                        os.fsync(dir_fd)
                    finally:
                        os.close(dir_fd)
                yield journal
            finally:
                fcntl.flock(journal.fileno(), fcntl.LOCK_UN)

    def _last_entry(self, journal: IO[bytes]) -> _Entry | None:
        """The last complete entry, after cutting off a torn tail. Raises LedgerUnavailable if it is corrupt."""
        end = journal.seek(0, os.SEEK_END)
        buffer, start = b"", end
        # Read backwards until the buffer holds the last complete line (two newlines, or the file start).
        while start > 0 and buffer.count(b"\n") < 2:
            step = min(_TAIL_BLOCK, start)
            start -= step
            journal.seek(start)
            buffer = journal.read(step) + buffer
        complete_end = start + buffer.rfind(b"\n") + 1  # 0 when no newline at all
        if complete_end < end:
            self._cut_torn_tail(journal, complete_end, end)
        if complete_end == 0:
            return None
        lines = buffer[: complete_end - start].split(b"\n")
        last_line = lines[-2]  # the element after the final newline is empty
        try:
            entry = _Entry.parse(last_line, f"journal {self.path} last line")
            entry.check(self._verify_key)
        except VerificationError as exc:
            # Chaining onto a damaged entry would extend a history nobody can verify: stop and let a human look.
            raise LedgerUnavailable(f"refusing to append: {exc}") from None
        return entry

    def _cut_torn_tail(self, journal: IO[bytes], complete_end: int, end: int) -> None:
        journal.seek(complete_end)
        torn = journal.read(end - complete_end)
        sidecar = self.path.with_name(self.path.name + ".torn")
        with open(sidecar, "ab") as keep:
            keep.write(torn + b"\n")
            keep.flush()
            os.fsync(keep.fileno())
        journal.truncate(complete_end)
        journal.flush()
        os.fsync(journal.fileno())
        log.warning(
            "event=ledger.local.torn_tail path=%s offset=%d bytes=%d saved_to=%s",
            self.path,
            complete_end,
            len(torn),
            sidecar,
        )

    # -- verification ----------------------------------------------------------------------------------------

    def verify_anchor(self, receipt: AnchorReceipt) -> None:
        """Check the receipt offline, then that the journal holds exactly that entry at that sequence.

        The hash chain is recomputed from entry 0 up to the receipt's entry; the signature is checked on that
        entry, which covers every earlier one through ``previousHash``. :meth:`verify_journal` checks them all.
        """
        claimed = _Entry.from_receipt(receipt)
        claimed.check(self._verify_key, "receipt for journal entry")
        found = None
        for entry in self._read_chain(stop_at=claimed.sequence):
            found = entry
        if found is None or found.sequence != claimed.sequence:
            count = 0 if found is None else found.sequence + 1
            raise VerificationError(f"journal {self.path} holds {count} entries; entry {claimed.sequence} is absent")
        found.check(self._verify_key)
        if found != claimed:
            raise VerificationError(
                f"journal entry {claimed.sequence} differs from the receipt (journal entryHash "
                f"{found.entry_hash.hex()}, receipt {claimed.entry_hash.hex()})"
            )

    def verify_journal(self) -> None:
        """Audit the whole journal: every line, hash link and signature; a torn tail is an error here."""
        for entry in self._read_chain(stop_at=None):
            entry.check(self._verify_key)

    def _read_chain(self, stop_at: int | None) -> Iterator[_Entry]:
        """Entries in order with their hash links checked, up to ``stop_at`` inclusive (or all)."""
        try:
            # Opened outside a `with` so that only the open itself maps to "does not exist"; closed in the finally.
            journal = open(self.path, "rb")
        except FileNotFoundError:
            raise VerificationError(f"journal {self.path} does not exist") from None
        except OSError as exc:
            raise LedgerUnavailable(f"local ledger journal {self.path} cannot be read: {exc}") from exc
        try:
            previous_hash = GENESIS_PREVIOUS_HASH
            for index, line in enumerate(journal):
                where = f"journal {self.path} line {index + 1}"
                if not line.endswith(b"\n"):
                    raise VerificationError(
                        f"{where} is torn (an append that never completed); it is not a valid entry"
                    )
                entry = _Entry.parse(line[:-1], where)
                if entry.sequence != index:
                    raise VerificationError(
                        f"{where} holds sequence {entry.sequence}, expected {index}: entries deleted or reordered"
                    )
                if entry.previous_hash != previous_hash:
                    raise VerificationError(
                        f"{where}: previousHash does not match entry {index - 1}; the chain is broken"
                    )
                if entry.computed_hash() != entry.entry_hash:
                    raise VerificationError(f"journal entry {index}: entryHash does not match its content")
                yield entry
                previous_hash = entry.entry_hash
                if stop_at is not None and index >= stop_at:
                    return
        except OSError as exc:
            raise LedgerUnavailable(f"local ledger journal {self.path} cannot be read: {exc}") from exc
        finally:
            journal.close()

    def close(self) -> None:
        """Nothing to release: every call opens, locks and closes the journal itself."""
