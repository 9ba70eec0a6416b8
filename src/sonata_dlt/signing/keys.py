"""Ed25519 keys in the C2SP signed-note / Go ``golang.org/x/mod/sumdb/note`` text formats.

- verifier key (vkey): ``<name>+<hex key id>+<base64(type || 32-byte public key)>``
- signer key (skey):   ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>``

The key id is ``SHA-256(name || "\\n" || type || public key)[:4]``. Type ``0x01`` is a plain Ed25519 note
signature, type ``0x04`` a timestamped C2SP tlog-cosignature/v1; the same Ed25519 key yields a different key id
for each, so a verifier always knows which kind of signature it is checking.

Malformed key material raises ``ConfigurationError``: keys come from settings and files, not from requests.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass, replace
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from sonata_dlt.errors import ConfigurationError, VerificationError

SIGNATURE_TYPE_ED25519 = 0x01
SIGNATURE_TYPE_COSIGNATURE = 0x04
KEY_ID_SIZE = 4
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
_SKEY_PREFIX = "PRIVATE+KEY+"


def is_valid_key_name(name: str) -> bool:
    """C2SP signed-note: non-empty, no Unicode space, no ``+``; control characters could never be in a note."""
    return bool(name) and not any(char.isspace() or char == "+" or ord(char) < 0x20 or char == "\x7f" for char in name)


def _check_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise ConfigurationError(f"key name {name!r} must be non-empty without spaces, '+' or control characters")


def compute_key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    return sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key).digest()[:KEY_ID_SIZE]


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ConfigurationError(f"{what} is not standard base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ConfigurationError(f"{what} is not in canonical base64")
    return raw


def _parse_key_id(text: str, what: str) -> bytes:
    if len(text) != 2 * KEY_ID_SIZE or any(char not in "0123456789abcdef" for char in text):
        raise ConfigurationError(f"{what} key id {text!r} is not 8 lowercase hex digits")
    return bytes.fromhex(text)


@dataclass(frozen=True)
class VerifierKey:
    """A public key with the name and signature type it verifies under; ``key_id`` must match both."""

    name: str
    key_id: bytes
    public_key: bytes
    signature_type: int = SIGNATURE_TYPE_ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.signature_type not in (SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_COSIGNATURE):
            raise ConfigurationError(f"signature type 0x{self.signature_type:02x} is not supported")
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ConfigurationError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {len(self.public_key)}")
        expected = compute_key_id(self.name, self.signature_type, self.public_key)
        if self.key_id != expected:
            raise ConfigurationError(f"key id {self.key_id.hex()} does not match key {self.name} ({expected.hex()})")

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes, signature_type: int = SIGNATURE_TYPE_ED25519) -> VerifierKey:
        _check_name(name)
        return cls(name, compute_key_id(name, signature_type, public_key), bytes(public_key), signature_type)

    def for_cosignature(self) -> VerifierKey:
        """The same public key as a tlog-cosignature/v1 verifier (signature type 0x04, its own key id)."""
        return self.with_signature_type(SIGNATURE_TYPE_COSIGNATURE)

    def with_signature_type(self, signature_type: int) -> VerifierKey:
        key_id = compute_key_id(self.name, signature_type, self.public_key)
        return replace(self, key_id=key_id, signature_type=signature_type)

    def to_vkey(self) -> str:
        encoded = base64.b64encode(bytes([self.signature_type]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> VerifierKey:
        parts = vkey.split("+", 2)  # base64 may itself contain "+"
        if len(parts) != 3:
            raise ConfigurationError("a verifier key has the form <name>+<hex key id>+<base64 key>")
        name, id_text, key_text = parts
        _check_name(name)
        key_id = _parse_key_id(id_text, f"verifier key {name}")
        raw = _b64decode(key_text, f"verifier key {name}")
        if len(raw) != 1 + PUBLIC_KEY_SIZE:
            raise ConfigurationError(f"verifier key {name} holds {len(raw)} bytes, expected {1 + PUBLIC_KEY_SIZE}")
        return cls(name, key_id, raw[1:], raw[0])

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check a raw Ed25519 signature by this key over ``message``; raise ``VerificationError`` if it fails."""
        if len(signature) != SIGNATURE_SIZE:
            who = f"{self.name}+{self.key_id.hex()}"
            size = len(signature)
            raise VerificationError(f"invalid signature for key {who}: {size} bytes, Ed25519 has {SIGNATURE_SIZE}")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            raise VerificationError(f"invalid signature for key {self.name}+{self.key_id.hex()}") from None


class SigningKey:
    """An Ed25519 private key with its note name. ``repr`` never shows the secret."""

    __slots__ = ("_name", "_private", "_public")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self._name = name
        self._private = private_key
        self._public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> SigningKey:
        if len(seed) != 32:
            raise ConfigurationError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key_bytes(self) -> bytes:
        return self._public

    @property
    def key_id(self) -> bytes:
        """The key id of plain note signatures (type 0x01)."""
        return compute_key_id(self._name, SIGNATURE_TYPE_ED25519, self._public)

    def verifier(self) -> VerifierKey:
        return VerifierKey.from_public_key(self._name, self._public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def seed(self) -> bytes:
        """The raw 32-byte Ed25519 seed, for components that take raw keys (the local ledger journal)."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def to_skey(self) -> str:
        encoded = base64.b64encode(bytes([SIGNATURE_TYPE_ED25519]) + self.seed()).decode("ascii")
        return f"{_SKEY_PREFIX}{self._name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_skey(cls, skey: str) -> SigningKey:
        if not skey.startswith(_SKEY_PREFIX):
            raise ConfigurationError("a signer key starts with PRIVATE+KEY+")
        parts = skey[len(_SKEY_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise ConfigurationError("a signer key has the form PRIVATE+KEY+<name>+<hex key id>+<base64 key>")
        name, id_text, key_text = parts
        _check_name(name)
        key_id = _parse_key_id(id_text, f"signer key {name}")
        raw = _b64decode(key_text, f"signer key {name}")
        if len(raw) != 33 or raw[0] != SIGNATURE_TYPE_ED25519:
            raise ConfigurationError(f"signer key {name} is not an Ed25519 seed (0x01 followed by 32 bytes)")
        key = cls.from_seed(name, raw[1:])
        # The id commits to the public key: a mismatch means a corrupted or hand-edited file.
        if key.key_id != key_id:
            raise ConfigurationError(f"signer key {name} has key id {id_text}, its key gives {key.key_id.hex()}")
        return key

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the skey to ``path`` with mode 0600, refusing to replace an existing file unless asked."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL) | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(path, flags, 0o600)
        except FileExistsError:
            raise ConfigurationError(f"{os.fspath(path)} exists; refusing to overwrite a key file") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            # An existing file keeps its old mode through O_TRUNC; tighten it before the secret goes in.
            os.fchmod(handle.fileno(), 0o600)
            handle.write(self.to_skey() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SigningKey:
        """Read an skey file; refuse one that group or others could read or write."""
        try:
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as error:
            raise ConfigurationError(f"cannot open private key file {os.fspath(path)}: {error.strerror}") from None
        with os.fdopen(descriptor, encoding="utf-8") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if mode & 0o077:
                raise ConfigurationError(
                    f"private key file {os.fspath(path)} has mode {mode:04o}; it must not be accessible to group "
                    "or others (chmod 600)"
                )
            text = handle.read()
        return cls.from_skey(text.removesuffix("\n"))

    def __repr__(self) -> str:
        return f"SigningKey(name={self._name!r}, key_id={self.key_id.hex()!r})"
