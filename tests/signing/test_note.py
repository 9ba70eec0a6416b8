"""C2SP signed notes and tlog-cosignature/v1: Go known answers, round trips and tampering."""

from __future__ import annotations

import base64

import pytest

from sonata_dlt.errors import VerificationError
from sonata_dlt.signing.keys import SigningKey, VerifierKey
from sonata_dlt.signing.note import (
    MAX_SIGNATURES,
    NoteSignature,
    cosign_checkpoint,
    cosignature_message,
    parse_note,
    parse_signature_line,
    sign_note,
    verify_cosignature,
    verify_note,
)
from sonata_dlt.transparency.checkpoint import Checkpoint
from sonata_dlt.transparency.merkle import MemoryTree

# Known answers from golang.org/x/mod/sumdb/note/note_test.go (TestSign, TestOpen).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

PETER = VerifierKey.from_vkey(PETER_VKEY)
ENOCH = VerifierKey.from_vkey(ENOCH_VKEY)


def note_of(*lines: str) -> bytes:
    return TEXT + b"\n" + "".join(lines).encode()


def test_sign_matches_go() -> None:
    assert sign_note(TEXT, [SigningKey.from_skey(PETER_SKEY)]) == note_of(PETER_SIG)


def test_open_matches_go() -> None:
    text, signed = verify_note(note_of(PETER_SIG, ENOCH_SIG), [PETER])
    assert text == TEXT
    assert signed == [PETER]
    assert verify_note(note_of(PETER_SIG, ENOCH_SIG), [PETER, ENOCH])[1] == [PETER, ENOCH]


def test_parse_note() -> None:
    text, signatures = parse_note(note_of(PETER_SIG, ENOCH_SIG))
    assert text == TEXT
    assert signatures[0] == NoteSignature(
        name="PeterNeumann",
        key_id=bytes.fromhex("c74f20a3"),
        signature=base64.b64decode(PETER_SIG.split()[2])[4:],
        line=PETER_SIG,
    )
    assert TEXT + b"\n" + "".join(s.line for s in signatures).encode() == note_of(PETER_SIG, ENOCH_SIG)


def test_unknown_keys_alone_do_not_verify() -> None:
    with pytest.raises(VerificationError, match="no signature from a known key"):
        verify_note(note_of(PETER_SIG, ENOCH_SIG), [])
    # Same name, other key id, and same id, other name, are unknown keys: ignored, not errors.
    other = SigningKey.generate("PeterNeumann").verifier()
    with pytest.raises(VerificationError, match=r"signed by PeterNeumann\+c74f20a3"):
        verify_note(note_of(PETER_SIG), [other])


def test_a_forged_signature_from_a_known_key_rejects_the_note() -> None:
    forged = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]  # Go's "invalid signature" case
    with pytest.raises(VerificationError, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        verify_note(note_of(forged), [PETER])
    # Even next to a good signature from another known key.
    bad_enoch = ENOCH_SIG[:50] + ("A" if ENOCH_SIG[50] != "A" else "B") + ENOCH_SIG[51:]
    with pytest.raises(VerificationError, match=r"invalid signature for key EnochRoot\+af0cfe78"):
        verify_note(note_of(PETER_SIG, bad_enoch), [PETER, ENOCH])


@pytest.mark.parametrize(
    ("note", "message"),
    [
        (TEXT, "no blank line"),
        (TEXT + b"\n", "no signature lines"),
        (note_of(PETER_SIG[:-1]), "does not end with a newline"),
        (b"\x01" + note_of(PETER_SIG), "control character"),
        (b"\xff" + note_of(PETER_SIG), "not valid UTF-8"),
        (note_of(PETER_SIG.replace("PeterNeumann", "Bad Name")), "not standard base64"),
        (note_of(PETER_SIG.replace("PeterNeumann", "Bad+Name")), "bad key name"),
        (note_of(PETER_SIG, "Unexpected line.\n"), "does not start with an em dash"),
        (note_of(PETER_SIG.replace("\u2014", "-")), "does not start with an em dash"),
        (note_of(PETER_SIG.replace(" x08", "x08")), "bad key name|not standard base64"),
        (note_of(PETER_SIG.replace("AM=", "A*=")), "not standard base64"),
        (note_of(PETER_SIG.replace("AM=", "AN=")), "not in canonical base64"),
        (note_of("\u2014 PeterNeumann x08g\n"), "too short"),
        (note_of(PETER_SIG * (MAX_SIGNATURES + 1)), "at most 100"),
    ],
)
def test_malformed_notes_are_refused(note: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        verify_note(note, [PETER])


def test_tampering_with_the_text_name_or_key_id_fails() -> None:
    key = SigningKey.generate("seller.example/log")
    note = sign_note(b"origin\n3\nroot\n", [key])
    verify_note(note, [key.verifier()])
    with pytest.raises(VerificationError, match="invalid signature"):
        verify_note(note.replace(b"3", b"4", 1), [key.verifier()])
    renamed = note.replace(b"\xe2\x80\x94 seller.example/log", "\u2014 buyer.example".encode())
    with pytest.raises(VerificationError, match="no signature from a known key"):
        verify_note(renamed, [key.verifier()])
    text, (signature,) = parse_note(note)
    raw = bytearray(signature.key_id + signature.signature)
    raw[0] ^= 1
    moved = text + b"\n" + f"\u2014 {key.name} {base64.b64encode(raw).decode()}\n".encode()
    with pytest.raises(VerificationError, match="no signature from a known key"):
        verify_note(moved, [key.verifier()])


def test_every_signature_bit_matters() -> None:
    key = SigningKey.generate("k")
    note = sign_note(b"hello\n", [key])
    text, (signature,) = parse_note(note)
    for bit in range(len(signature.signature) * 8):
        raw = bytearray(signature.signature)
        raw[bit // 8] ^= 1 << (bit % 8)
        line = f"\u2014 k {base64.b64encode(signature.key_id + bytes(raw)).decode()}\n"
        with pytest.raises(VerificationError):
            verify_note(text + b"\n" + line.encode(), [key.verifier()])


def test_truncated_signature_lines_fail() -> None:
    key = SigningKey.generate("k")
    note = sign_note(b"hello\n", [key])
    for cut in range(1, len(note) - len(b"hello\n\n")):
        with pytest.raises(VerificationError):
            verify_note(note[:-cut], [key.verifier()])


def test_ambiguous_verifiers_are_refused() -> None:
    twin = VerifierKey("PeterNeumann", PETER.key_id, PETER.public_key)
    assert verify_note(note_of(PETER_SIG), [PETER, twin])[1] == [PETER]  # the same key twice is harmless


def test_sign_note_refuses_bad_text() -> None:
    key = SigningKey.generate("k")
    with pytest.raises(ValueError, match="end with a newline"):
        sign_note(b"abc", [key])
    with pytest.raises(ValueError, match="control character"):
        sign_note(b"a\tb\n", [key])
    with pytest.raises(ValueError, match="at least one signing key"):
        sign_note(b"abc\n", [])
    with pytest.raises(ValueError, match="cosignature/v1 header"):
        sign_note(b"cosignature/v1\ntime 1\norigin\n1\nroot\n", [key])


def test_multiple_signers_and_blank_lines_in_text() -> None:
    seller, buyer = SigningKey.generate("seller"), SigningKey.generate("buyer")
    text = b"para one\n\npara two\n"
    note = sign_note(text, [seller, buyer])
    assert verify_note(note, [buyer.verifier(), seller.verifier()]) == (text, [seller.verifier(), buyer.verifier()])


# --- cosignatures --------------------------------------------------------------------------------------------


def checkpoint_body() -> bytes:
    tree = MemoryTree()
    for i in range(5):
        tree.append(b"%d" % i)
    return Checkpoint("seller.example/bilateral/7", tree.size, tree.root()).body()


def test_cosignature_round_trip_and_wire_format() -> None:
    buyer = SigningKey.generate("buyer.example")
    body = checkpoint_body()
    line = cosign_checkpoint(body, buyer, 1679315147)
    assert line.startswith("\u2014 buyer.example ") and line.endswith("\n")
    raw = base64.b64decode(line.split()[2])
    cosigner = buyer.verifier().for_cosignature()
    assert raw[:4] == cosigner.key_id
    assert raw[4:12] == (1679315147).to_bytes(8, "big")
    assert len(raw) == 4 + 8 + 64
    cosigner.verify(b"cosignature/v1\ntime 1679315147\n" + body, raw[12:])
    assert cosignature_message(body, 1679315147) == b"cosignature/v1\ntime 1679315147\n" + body
    assert verify_cosignature(body, line, cosigner) == 1679315147
    assert verify_cosignature(body, line.rstrip("\n"), buyer.verifier()) == 1679315147


def test_checkpoint_signed_and_cosigned_verifies_in_one_call() -> None:
    seller, buyer = SigningKey.generate("seller.example/bilateral/7"), SigningKey.generate("buyer.example")
    body = checkpoint_body()
    note = sign_note(body, [seller]) + cosign_checkpoint(body, buyer, 1700000000).encode()
    cosigner = buyer.verifier().for_cosignature()
    assert verify_note(note, [seller.verifier(), cosigner]) == (body, [seller.verifier(), cosigner])
    # A plain verifier of the buyer does not match the 0x04 key id: the cosignature is an unknown signature.
    assert verify_note(note, [seller.verifier(), buyer.verifier()])[1] == [seller.verifier()]


def test_cosignature_tampering_fails() -> None:
    buyer = SigningKey.generate("buyer.example")
    body = checkpoint_body()
    line = cosign_checkpoint(body, buyer, 1700000000)
    verifier = buyer.verifier()
    with pytest.raises(VerificationError, match=r"invalid cosignature for key buyer\.example"):
        verify_cosignature(body.replace(b"\n5\n", b"\n6\n"), line, verifier)
    raw = bytearray(base64.b64decode(line.split()[2]))
    raw[11] ^= 1  # the timestamp
    with pytest.raises(VerificationError, match="at time 1700000001"):
        verify_cosignature(body, f"\u2014 buyer.example {base64.b64encode(raw).decode()}\n", verifier)
    raw = bytearray(base64.b64decode(line.split()[2]))
    raw[0] ^= 1
    with pytest.raises(VerificationError, match="not from cosigner"):
        verify_cosignature(body, f"\u2014 buyer.example {base64.b64encode(raw).decode()}\n", verifier)
    with pytest.raises(VerificationError, match="not from cosigner"):
        verify_cosignature(body, line.replace("buyer.example", "other.example"), verifier)
    with pytest.raises(VerificationError, match="not from cosigner"):
        verify_cosignature(body, line, SigningKey.generate("buyer.example").verifier())
    # A plain note signature is not a cosignature.
    plain = sign_note(body, [buyer]).split(b"\n\n")[1].decode()
    with pytest.raises(VerificationError, match="not from cosigner"):
        verify_cosignature(body, plain, verifier)
    raw = bytearray(base64.b64decode(line.split()[2]))
    with pytest.raises(VerificationError, match="is 71 bytes, expected 72"):
        verify_cosignature(body, f"\u2014 buyer.example {base64.b64encode(raw[:-1]).decode()}\n", verifier)
    raw[4] = 0x80  # timestamp >= 2**63
    with pytest.raises(VerificationError, match="beyond 2\\*\\*63-1"):
        verify_cosignature(body, f"\u2014 buyer.example {base64.b64encode(raw).decode()}\n", verifier)
    with pytest.raises(VerificationError, match="malformed note"):
        verify_cosignature(body, line[:-10], verifier)


def test_cosign_refuses_bad_arguments() -> None:
    buyer = SigningKey.generate("buyer.example")
    with pytest.raises(ValueError, match=r"outside 0\.\.2\*\*63-1"):
        cosign_checkpoint(checkpoint_body(), buyer, -1)
    with pytest.raises(ValueError, match="end with a newline"):
        cosign_checkpoint(b"origin\n1\nroot", buyer, 1)


def test_parse_signature_line_refuses_embedded_newlines() -> None:
    with pytest.raises(VerificationError, match="holds a newline"):
        parse_signature_line(PETER_SIG + PETER_SIG)
