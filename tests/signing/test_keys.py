"""Note keys in the Go sumdb/note formats, key ids, and private key files."""

from __future__ import annotations

import base64
import os
import stat
from hashlib import sha256
from pathlib import Path

import pytest

from sonata_dlt.errors import ConfigurationError, VerificationError
from sonata_dlt.signing.keys import (
    SIGNATURE_TYPE_COSIGNATURE,
    SIGNATURE_TYPE_ED25519,
    SigningKey,
    VerifierKey,
    compute_key_id,
)

# Known-answer keys from golang.org/x/mod/sumdb/note/note_test.go (TestNewSigner, TestNewVerifier).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def test_go_known_answer_keys() -> None:
    key = SigningKey.from_skey(PETER_SKEY)
    assert key.name == "PeterNeumann"
    assert key.key_id.hex() == "c74f20a3"
    assert key.to_skey() == PETER_SKEY
    assert key.verifier().to_vkey() == PETER_VKEY
    assert VerifierKey.from_vkey(PETER_VKEY) == key.verifier()


def test_key_id_is_the_c2sp_recommendation() -> None:
    key = SigningKey.generate("sonata.example/seller")
    public = key.public_key_bytes
    for signature_type in (SIGNATURE_TYPE_ED25519, SIGNATURE_TYPE_COSIGNATURE):
        expected = sha256(b"sonata.example/seller\n" + bytes([signature_type]) + public).digest()[:4]
        assert compute_key_id("sonata.example/seller", signature_type, public) == expected
    assert key.verifier().key_id == compute_key_id(key.name, 0x01, public)
    cosigner = key.verifier().for_cosignature()
    assert cosigner.signature_type == 0x04
    assert cosigner.key_id == compute_key_id(key.name, 0x04, public)
    assert cosigner.public_key == public
    assert VerifierKey.from_vkey(cosigner.to_vkey()) == cosigner
    assert base64.b64decode(cosigner.to_vkey().split("+", 2)[2])[0] == 0x04


def test_sign_and_verify() -> None:
    key = SigningKey.generate("buyer.example")
    signature = key.sign(b"hello")
    key.verifier().verify(b"hello", signature)
    with pytest.raises(VerificationError, match=r"invalid signature for key buyer\.example\+"):
        key.verifier().verify(b"hellO", signature)
    with pytest.raises(VerificationError, match="invalid signature"):
        key.verifier().verify(b"hello", bytes([signature[0] ^ 1]) + signature[1:])
    with pytest.raises(
        VerificationError, match=r"invalid signature for key buyer\.example\+\w+: 63 bytes, Ed25519 has 64"
    ):
        key.verifier().verify(b"hello", signature[:63])
    assert "PRIVATE" not in repr(key)


def every_mangling(text: str) -> list[str]:
    """Like Go's TestNewSigner: every proper substring and every single-character increment."""
    variants = {text[i:j] for i in range(len(text) + 1) for j in range(i, len(text) + 1)} - {text}
    variants |= {text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :] for i in range(len(text))}
    return sorted(variants)


def test_mangled_skeys_are_refused() -> None:
    for mangled in every_mangling(PETER_SKEY):
        with pytest.raises(ConfigurationError):
            SigningKey.from_skey(mangled)


def test_mangled_vkeys_are_refused() -> None:
    for mangled in every_mangling(PETER_VKEY):
        with pytest.raises(ConfigurationError):
            VerifierKey.from_vkey(mangled)


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length, from Go
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm, from Go
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case id
    ],
)
def test_bad_vkeys_from_go_are_refused(vkey: str) -> None:
    with pytest.raises(ConfigurationError):
        VerifierKey.from_vkey(vkey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\nb", "a\u2003b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="key name"):
        SigningKey.generate(name)


def test_verifier_key_checks_its_own_key_id() -> None:
    verifier = SigningKey.generate("x.example").verifier()
    with pytest.raises(ConfigurationError, match=r"does not match key x\.example"):
        VerifierKey(verifier.name, b"\0\0\0\0", verifier.public_key)
    with pytest.raises(ConfigurationError, match="signature type 0x02"):
        VerifierKey(verifier.name, verifier.key_id, verifier.public_key, 0x02)


def test_save_writes_mode_0600_and_load_round_trips(tmp_path: Path) -> None:
    key = SigningKey.generate("seller.example/log")
    path = tmp_path / "seller.skey"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key.to_skey() + "\n"
    loaded = SigningKey.load(path)
    assert loaded.to_skey() == key.to_skey()


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "k.skey"
    first, second = SigningKey.generate("a"), SigningKey.generate("b")
    first.save(path)
    with pytest.raises(ConfigurationError, match="refusing to overwrite"):
        second.save(path)
    assert SigningKey.load(path).name == "a"
    path.chmod(0o644)
    second.save(path, overwrite=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).name == "b"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620])
def test_load_refuses_a_key_file_others_can_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.skey"
    SigningKey.generate("a").save(path)
    os.chmod(path, mode)
    with pytest.raises(ConfigurationError, match=f"has mode {mode:04o}"):
        SigningKey.load(path)


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot open private key file"):
        SigningKey.load(tmp_path / "absent.skey")


def test_load_refuses_a_corrupted_key_id(tmp_path: Path) -> None:
    path = tmp_path / "k.skey"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(PETER_SKEY.replace("c74f20a3", "c74f20a4") + "\n")
    with pytest.raises(ConfigurationError, match="has key id c74f20a4, its key gives c74f20a3"):
        SigningKey.load(path)
