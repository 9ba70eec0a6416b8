"""The local journal: tampering, torn appends, offline receipts, key options and concurrent appends."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import logging
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sonata_dlt.errors import ConfigurationError, VerificationError
from sonata_dlt.ledger import open_backend
from sonata_dlt.ledger.base import AnchorReceipt
from sonata_dlt.ledger.local import ENTRY_HASH_PREFIX, LocalLedger, verify_receipt_offline

SEED = bytes(range(32))
PUBLIC = Ed25519PrivateKey.from_private_bytes(SEED).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
ORIGIN = "sonata.example.net/bilateral/7f3c9a21"

MakeLocal = Callable[..., LocalLedger]


def root(n: int) -> bytes:
    return hashlib.sha256(b"root %d" % n).digest()


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "anchors.jsonl"


@pytest.fixture
def anchored(make_local: MakeLocal) -> tuple[LocalLedger, list[AnchorReceipt]]:
    ledger = make_local()
    return ledger, [ledger.anchor(ORIGIN, n, root(n)) for n in range(4)]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, new_lines: list[bytes]) -> None:
    path.write_bytes(b"".join(new_lines))


def test_the_journal_is_canonical_json_lines_chained_from_zero(anchored: Any, journal: Path) -> None:
    ledger, _receipts = anchored
    records = [json.loads(line) for line in lines(journal)]
    assert [r["sequence"] for r in records] == [0, 1, 2, 3]
    assert records[0]["previousHash"] == "00" * 32
    for before, after in itertools.pairwise(records):
        assert after["previousHash"] == before["entryHash"]
    body = {k: v for k, v in records[2].items() if k not in ("entryHash", "signature")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(ENTRY_HASH_PREFIX + canonical).hexdigest() == records[2]["entryHash"]
    assert lines(journal)[2] == json.dumps(records[2], sort_keys=True, separators=(",", ":")).encode() + b"\n"
    ledger.verify_journal()


def test_an_edited_entry_is_detected(anchored: Any, journal: Path) -> None:
    ledger, receipts = anchored
    content = lines(journal)
    content[1] = content[1].replace(root(1).hex().encode(), root(99).hex().encode())
    rewrite(journal, content)
    with pytest.raises(VerificationError, match=r"journal entry 1: entryHash does not match its content"):
        ledger.verify_anchor(receipts[1])
    with pytest.raises(VerificationError, match=r"journal entry 1: entryHash does not match"):
        ledger.verify_anchor(receipts[3])  # the chain up to a later entry runs through the edit


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_signature_and_the_chain(
    anchored: Any, journal: Path
) -> None:
    ledger, receipts = anchored
    content = lines(journal)
    record = json.loads(content[1])
    record["root"] = root(99).hex()
    body = {k: v for k, v in record.items() if k not in ("entryHash", "signature")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    record["entryHash"] = hashlib.sha256(ENTRY_HASH_PREFIX + canonical).hexdigest()
    content[1] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    rewrite(journal, content)
    with pytest.raises(VerificationError, match=r"journal entry 1: signature does not verify under the journal key"):
        ledger.verify_anchor(receipts[1])
    with pytest.raises(VerificationError, match=r"line 3: previousHash does not match entry 1; the chain is broken"):
        ledger.verify_anchor(receipts[2])
    with pytest.raises(VerificationError, match=r"journal entry 1: signature does not verify"):
        ledger.verify_journal()


def test_a_deleted_entry_is_detected(anchored: Any, journal: Path) -> None:
    ledger, receipts = anchored
    content = lines(journal)
    del content[1]
    rewrite(journal, content)
    ledger.verify_anchor(receipts[0])
    with pytest.raises(VerificationError, match=r"line 2 holds sequence 2, expected 1: entries deleted or reordered"):
        ledger.verify_anchor(receipts[1])


def test_a_deleted_last_entry_is_absent(anchored: Any, journal: Path) -> None:
    ledger, receipts = anchored
    rewrite(journal, lines(journal)[:-1])
    with pytest.raises(VerificationError, match=r"holds 3 entries; entry 3 is absent"):
        ledger.verify_anchor(receipts[3])


def test_reordered_entries_are_detected(anchored: Any, journal: Path) -> None:
    ledger, receipts = anchored
    content = lines(journal)
    content[1], content[2] = content[2], content[1]
    rewrite(journal, content)
    with pytest.raises(VerificationError, match=r"line 2 holds sequence 2, expected 1: entries deleted or reordered"):
        ledger.verify_anchor(receipts[3])


def test_a_bad_signature_is_detected(anchored: Any, journal: Path) -> None:
    ledger, receipts = anchored
    content = lines(journal)
    record = json.loads(content[2])
    signature = bytearray(base64.b64decode(record["signature"]))
    signature[0] ^= 1
    record["signature"] = base64.b64encode(bytes(signature)).decode()
    content[2] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    rewrite(journal, content)
    with pytest.raises(VerificationError, match=r"journal entry 2: signature does not verify under the journal key"):
        ledger.verify_anchor(receipts[2])
    with pytest.raises(VerificationError, match=r"journal entry 2: signature does not verify"):
        ledger.verify_journal()


def test_a_journal_signed_by_another_key_is_rejected(anchored: Any, make_local: MakeLocal) -> None:
    _, receipts = anchored
    other = make_local(signing_key_seed=bytes(32))
    with pytest.raises(VerificationError, match=r"receipt for journal entry 0: signature does not verify"):
        other.verify_anchor(receipts[0])


def test_a_torn_last_line_is_reported_never_valid_and_cut_on_the_next_append(
    anchored: Any, journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger, receipts = anchored
    data = journal.read_bytes()
    journal.write_bytes(data[:-1])  # the last line lost its newline: the append did not complete
    with pytest.raises(VerificationError, match=r"line 4 is torn \(an append that never completed\)"):
        ledger.verify_anchor(receipts[3])
    with pytest.raises(VerificationError, match=r"line 4 is torn"):
        ledger.verify_journal()
    ledger.verify_anchor(receipts[2])  # entries before the tear stand

    with caplog.at_level(logging.WARNING, logger="sonata_dlt.ledger.local"):
        replacement = ledger.anchor(ORIGIN, 100, root(100))
    assert "event=ledger.local.torn_tail" in caplog.text
    assert replacement.reference["sequence"] == 3
    assert (journal.parent / "anchors.jsonl.torn").read_bytes() == data[data.rfind(b"\n", 0, -1) + 1 : -1] + b"\n"
    ledger.verify_journal()
    ledger.verify_anchor(replacement)
    with pytest.raises(VerificationError, match=r"journal entry 3 differs from the receipt"):
        ledger.verify_anchor(receipts[3])


def test_a_torn_fragment_of_a_first_append_is_cut(make_local: MakeLocal, journal: Path) -> None:
    journal.write_bytes(b'{"anchoredAt":"2025-')
    ledger = make_local()
    receipt = ledger.anchor(ORIGIN, 1, root(1))
    assert receipt.reference["sequence"] == 0
    ledger.verify_journal()


def test_garbage_in_the_middle_is_corruption(anchored: Any, journal: Path) -> None:
    ledger, receipts = anchored
    content = lines(journal)
    content[1] = b"not json\n"
    rewrite(journal, content)
    with pytest.raises(VerificationError, match=r"line 2 is not valid JSON"):
        ledger.verify_anchor(receipts[2])


def test_a_missing_journal_is_a_verification_failure(anchored: Any, journal: Path) -> None:
    ledger, receipts = anchored
    journal.unlink()
    with pytest.raises(VerificationError, match=r"does not exist"):
        ledger.verify_anchor(receipts[0])


def test_receipts_verify_offline_with_only_the_public_key(anchored: Any) -> None:
    _, receipts = anchored
    for receipt in receipts:
        verify_receipt_offline(AnchorReceipt.from_json(json.loads(json.dumps(receipt.to_json()))), PUBLIC)
    forged = dataclasses.replace(receipts[1], root_hash=root(77))
    with pytest.raises(VerificationError, match=r"receipt for journal entry 1: entryHash does not match"):
        verify_receipt_offline(forged, PUBLIC)
    with pytest.raises(VerificationError, match=r"signature does not verify"):
        verify_receipt_offline(receipts[1], bytes(32))
    with pytest.raises(VerificationError, match=r"verify_key must be a raw 32-byte Ed25519 public key"):
        verify_receipt_offline(receipts[1], b"short")


def test_a_verify_only_ledger_checks_but_cannot_anchor(anchored: Any, journal: Path) -> None:
    _, receipts = anchored
    verifier = open_backend("local", {"path": journal, "verify_key": PUBLIC.hex()})
    verifier.verify_anchor(receipts[2])
    with pytest.raises(ConfigurationError, match=r"without a signing key cannot anchor"):
        verifier.anchor(ORIGIN, 1, root(1))


def test_key_options(tmp_path: Path, journal: Path) -> None:
    key_file = tmp_path / "journal.key"
    key_file.write_text(SEED.hex() + "\n")
    from_file = open_backend("local", {"path": journal, "signing_key_path": key_file})
    assert isinstance(from_file, LocalLedger) and from_file.verify_key == PUBLIC
    from_hex = open_backend("local", {"path": journal, "signing_key_seed": SEED.hex(), "verify_key": PUBLIC})
    from_hex.verify_anchor(from_file.anchor(ORIGIN, 1, root(1)))
    for options, message in [
        ({}, r"option 'path'"),
        ({"path": journal}, r"give signing_key_seed, signing_key_path or verify_key"),
        ({"path": journal, "signing_key_seed": b"short"}, r"must be 32 bytes"),
        ({"path": journal, "signing_key_seed": "zz" * 32}, r"is not hex"),
        ({"path": journal, "signing_key_path": tmp_path / "absent"}, r"cannot read signing_key_path"),
        ({"path": journal, "signing_key_seed": SEED, "verify_key": bytes(32)}, r"not the public key"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            open_backend("local", options)


@pytest.mark.parametrize(
    ("origin", "size", "root_hash"),
    [("", 1, bytes(32)), ("a\nb", 1, bytes(32)), (ORIGIN, -1, bytes(32)), (ORIGIN, 2**64, bytes(32)), (ORIGIN, 1, b"")],
)
def test_impossible_checkpoints_are_refused(make_local: MakeLocal, origin: str, size: int, root_hash: bytes) -> None:
    with pytest.raises(ValueError):
        make_local().anchor(origin, size, root_hash)


def _append_many(path: str, count: int, worker: int) -> None:
    ledger = open_backend("local", {"path": path, "signing_key_seed": SEED})
    for n in range(count):
        ledger.anchor(f"{ORIGIN}/{worker}", n, root(n))


def test_appends_from_several_processes_stay_one_chain(journal: Path) -> None:
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker, like separate servers
    workers = [context.Process(target=_append_many, args=(str(journal), 15, w)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    ledger = open_backend("local", {"path": journal, "verify_key": PUBLIC})
    assert isinstance(ledger, LocalLedger)
    ledger.verify_journal()
    assert len(lines(journal)) == 30
