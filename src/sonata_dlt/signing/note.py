"""C2SP signed notes and tlog-cosignature/v1 cosignatures.

A signed note is a text ending in a newline, a blank line, then one line per signature::

    — <key name> <base64(4-byte key id || signature)>

(the dash is U+2014). Parsing follows the C2SP spec and Go's ``golang.org/x/mod/sumdb/note.Open``: valid UTF-8,
no control character but newline, the text ends at the *last* blank line, at most 100 signatures. A signature
from an unknown (name, key id) is ignored; one from a known key that does not verify rejects the whole note,
because a forged signature is an attack, not noise.

A cosignature is a signature line whose key id uses type 0x04 and whose payload is an 8-byte big-endian POSIX
timestamp followed by an Ed25519 signature over ``"cosignature/v1\\ntime <timestamp>\\n" + checkpoint body``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from sonata_dlt.errors import VerificationError
from sonata_dlt.signing.keys import (
    KEY_ID_SIZE,
    SIGNATURE_SIZE,
    SIGNATURE_TYPE_COSIGNATURE,
    SigningKey,
    VerifierKey,
    compute_key_id,
    is_valid_key_name,
)

SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100
COSIGNATURE_HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
_TIMESTAMP_SIZE = 8


@dataclass(frozen=True)
class NoteSignature:
    """One parsed signature line. ``signature`` is what follows the key id; ``line`` ends with its newline."""

    name: str
    key_id: bytes
    signature: bytes
    line: str


def _text_problem(text: bytes) -> str | None:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8"
    if any(ord(char) < 0x20 and char != "\n" for char in decoded):
        return "holds a control character other than newline"
    return None


def _check_signable(text: bytes) -> None:
    if not text.endswith(b"\n"):
        raise ValueError("note text must end with a newline")
    problem = _text_problem(text)
    if problem:
        raise ValueError(f"note text {problem}")


def _signature_line(name: str, payload: bytes) -> str:
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(payload).decode('ascii')}\n"


def sign_note(text: bytes, keys: Sequence[SigningKey]) -> bytes:
    """Sign ``text`` (which must end with a newline) with every key; return the signed note."""
    _check_signable(text)
    if not keys:
        raise ValueError("a note needs at least one signing key")
    # Domain separation: a note key may also cosign, and a cosignature message starts with this header.
    if text.startswith(COSIGNATURE_HEADER):
        raise ValueError("a note text must not start with the cosignature/v1 header")
    lines = [_signature_line(key.name, key.key_id + key.sign(text)) for key in keys]
    return text + b"\n" + "".join(lines).encode("utf-8")


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line, with or without its final newline; raise ``VerificationError`` if malformed."""
    body = line.removesuffix("\n")
    if "\n" in body:
        raise VerificationError("malformed note: a signature line holds a newline")
    if not body.startswith(SIGNATURE_PREFIX):
        raise VerificationError("malformed note: a signature line does not start with an em dash and a space")
    name, space, encoded = body[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not is_valid_key_name(name):
        raise VerificationError(f"malformed note: bad key name in signature line {body!r}")
    try:
        raw = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise VerificationError(f"malformed note: signature of {name} is not standard base64") from None
    if base64.b64encode(raw).decode("ascii") != encoded:
        raise VerificationError(f"malformed note: signature of {name} is not in canonical base64")
    if len(raw) <= KEY_ID_SIZE:
        raise VerificationError(f"malformed note: signature of {name} is too short")
    return NoteSignature(name=name, key_id=raw[:KEY_ID_SIZE], signature=raw[KEY_ID_SIZE:], line=body + "\n")


def parse_note(note: bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text and signature lines without verifying anything."""
    problem = _text_problem(note)
    if problem:
        raise VerificationError(f"malformed note: it {problem}")
    split = note.rfind(b"\n\n")
    if split < 0:
        raise VerificationError("malformed note: no blank line separates the text from signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise VerificationError("malformed note: it has no signature lines")
    if not block.endswith(b"\n"):
        raise VerificationError("malformed note: the last signature line does not end with a newline")
    lines = block[:-1].decode("utf-8").split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"malformed note: {len(lines)} signatures, at most {MAX_SIGNATURES} are accepted")
    return text, [parse_signature_line(line) for line in lines]


def _index(verifiers: Sequence[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    known: dict[tuple[str, bytes], VerifierKey] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if slot in known and known[slot] != verifier:
            raise VerificationError(f"ambiguous key {verifier.name}+{verifier.key_id.hex()}: two verifiers share it")
        known[slot] = verifier
    return known


def verify_note(note: bytes, verifiers: Sequence[VerifierKey]) -> tuple[bytes, list[VerifierKey]]:
    """Return the note text and the known keys that signed it; raise ``VerificationError`` otherwise.

    Type-0x04 verifiers (``VerifierKey.for_cosignature()``) check cosignature lines, so a checkpoint signed by
    the log and cosigned by the counter-party verifies in one call. Every signature from a known key must
    verify, and at least one must be present.
    """
    text, signatures = parse_note(note)
    known = _index(verifiers)
    signed: list[VerifierKey] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if verifier.signature_type == SIGNATURE_TYPE_COSIGNATURE:
            _check_cosignature(text, signature, verifier)
        else:
            verifier.verify(text, signature.signature)
        if verifier not in signed:
            signed.append(verifier)
    if not signed:
        present = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in signatures)
        raise VerificationError(f"note has no signature from a known key (it is signed by {present})")
    return text, signed


def cosignature_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + checkpoint_body


def cosign_checkpoint(checkpoint_body: bytes, key: SigningKey, timestamp: int) -> str:
    """Return the tlog-cosignature/v1 signature line (with its newline) of ``key`` over a checkpoint body."""
    _check_signable(checkpoint_body)
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp} is outside 0..2**63-1")
    key_id = compute_key_id(key.name, SIGNATURE_TYPE_COSIGNATURE, key.public_key_bytes)
    signature = key.sign(cosignature_message(checkpoint_body, timestamp))
    return _signature_line(key.name, key_id + timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature)


def _check_cosignature(checkpoint_body: bytes, signature: NoteSignature, cosigner: VerifierKey) -> int:
    who = f"{cosigner.name}+{cosigner.key_id.hex()}"
    if len(signature.signature) != _TIMESTAMP_SIZE + SIGNATURE_SIZE:
        raise VerificationError(
            f"cosignature of {who} is {len(signature.signature)} bytes, expected {_TIMESTAMP_SIZE + SIGNATURE_SIZE}"
        )
    timestamp = int.from_bytes(signature.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise VerificationError(f"cosignature of {who} has timestamp {timestamp}, beyond 2**63-1")
    try:
        cosigner.verify(cosignature_message(checkpoint_body, timestamp), signature.signature[_TIMESTAMP_SIZE:])
    except VerificationError:
        raise VerificationError(f"invalid cosignature for key {who} at time {timestamp}") from None
    return timestamp


def verify_cosignature(checkpoint_body: bytes, line: str, verifier: VerifierKey) -> int:
    """Check one cosignature line over a checkpoint body; return its timestamp or raise ``VerificationError``.

    ``verifier`` may be the cosigner's plain (0x01) or cosignature (0x04) verifier key; the line must carry the
    0x04 key id either way.
    """
    cosigner = verifier if verifier.signature_type == SIGNATURE_TYPE_COSIGNATURE else verifier.for_cosignature()
    signature = parse_signature_line(line)
    if (signature.name, signature.key_id) != (cosigner.name, cosigner.key_id):
        raise VerificationError(
            f"cosignature line is from key {signature.name}+{signature.key_id.hex()}, "
            f"not from cosigner {cosigner.name}+{cosigner.key_id.hex()}"
        )
    return _check_cosignature(checkpoint_body, signature, cosigner)
