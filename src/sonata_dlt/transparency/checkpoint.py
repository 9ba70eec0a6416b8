"""C2SP tlog-checkpoint note bodies: origin, tree size and root hash, one per line.

``Checkpoint.body()`` is the text a log signs (see ``sonata_dlt.signing.note``); ``Checkpoint.from_body``
reads one back strictly, because a checkpoint arrives from the other party and two readings of the same
bytes must never disagree.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sonata_dlt.errors import VerificationError

HASH_SIZE = 32
MAX_TREE_SIZE = 2**63 - 1  # what a uint64-based peer (Go, Rust) can also hold without surprises


def _line_problem(line: str) -> str | None:
    if not line:
        return "is empty"
    if any(ord(char) < 0x20 or char == "\x7f" for char in line):
        return "holds a control character"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head. ``extensions`` are the optional extra lines, without their newlines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _line_problem(self.origin)
        if problem:
            raise ValueError(f"checkpoint origin {problem}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size {self.size} is outside 0..2**63-1")
        if len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}")
        for position, line in enumerate(self.extensions):
            problem = _line_problem(line)
            if problem:
                raise ValueError(f"checkpoint extension line {position} {problem}")

    def body(self) -> bytes:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii"), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint note text; raise ``VerificationError`` on anything that is not exactly canonical."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("checkpoint is not valid UTF-8") from None
        if not text.endswith("\n"):
            raise VerificationError("checkpoint does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise VerificationError(f"checkpoint has {len(lines)} lines, at least 3 are required")
        origin, size_text, root_text, *extensions = lines
        for name, line in (("origin", origin), ("size", size_text), ("root hash", root_text)):
            problem = _line_problem(line)
            if problem:
                raise VerificationError(f"checkpoint {name} line {problem}")
        for position, line in enumerate(extensions):
            problem = _line_problem(line)
            if problem:
                raise VerificationError(f"checkpoint extension line {position} {problem}")
        # int() would also take "+5", " 5", "5_0" and non-ASCII digits; a checkpoint has exactly one spelling.
        if not (size_text.isascii() and size_text.isdigit()) or (size_text.startswith("0") and size_text != "0"):
            raise VerificationError(f"checkpoint size {size_text!r} is not a decimal number without leading zeros")
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise VerificationError(f"checkpoint size {size} is beyond 2**63-1")
        try:
            root_hash = base64.b64decode(root_text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise VerificationError("checkpoint root hash is not standard base64") from None
        if len(root_hash) != HASH_SIZE:
            raise VerificationError(f"checkpoint root hash is {len(root_hash)} bytes, expected {HASH_SIZE}")
        if base64.b64encode(root_hash).decode("ascii") != root_text:
            raise VerificationError("checkpoint root hash is not in canonical base64")
        return cls(origin=origin, size=size, root_hash=root_hash, extensions=tuple(extensions))
