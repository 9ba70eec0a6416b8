"""The contract every ledger backend passes, run against each one through the parametrised ``backend`` fixture.

A new backend earns its entry point by adding itself to ``ledger_kind`` in conftest.py and passing this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError
from sonata_dlt.ledger import LedgerBackend, available_backends, open_backend
from sonata_dlt.ledger.base import AnchorReceipt

ORIGIN = "sonata.example.net/bilateral/7f3c9a21"


def root(n: int) -> bytes:
    return hashlib.sha256(b"root %d" % n).digest()


def position(receipt: AnchorReceipt) -> tuple[int, ...]:
    """Where a receipt sits in its ledger's total order, for the backends this package ships."""
    ref = receipt.reference
    if receipt.backend == "local":
        return (int(ref["sequence"]),)
    return (int(ref["blockNumber"]), int(ref["logIndex"]))


def mutated(value: str | int) -> str | int:
    """A different value of the same form: +1 for integers, first hex/base64 character changed for text.

    The new character is a digit, never a letter: hex is read case-insensitively, so "b…" -> "B…" would be the
    same bytes (that made this test fail for one receipt in eight)."""
    if isinstance(value, int):
        return value + 1
    if value.startswith("0x"):
        body = value[2:].lower()  # lowercase keeps a changed address valid (no EIP-55 checksum to break)
        return "0x" + ("1" if body[0] != "1" else "2") + body[1:]
    return ("1" if value[0].lower() != "1" else "2") + value[1:]


def test_anchor_returns_a_receipt_matching_its_inputs(backend: LedgerBackend) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    receipt = backend.anchor(ORIGIN, 42, root(42))
    assert receipt.backend == type(backend).name
    assert (receipt.origin, receipt.size, receipt.root_hash) == (ORIGIN, 42, root(42))
    assert receipt.anchored_at.tzinfo is not None
    assert receipt.anchored_at >= before.replace(microsecond=0) - timedelta(seconds=60)  # chain clocks drift
    assert receipt.reference


def test_verify_accepts_a_fresh_receipt_and_its_json_round_trip(backend: LedgerBackend) -> None:
    receipt = backend.anchor(ORIGIN, 7, root(7))
    backend.verify_anchor(receipt)
    again = AnchorReceipt.from_json(json.loads(json.dumps(receipt.to_json())))
    assert again == receipt
    backend.verify_anchor(again)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: dataclasses.replace(r, root_hash=root(999)), id="root"),
        pytest.param(lambda r: dataclasses.replace(r, size=r.size + 1), id="size"),
        pytest.param(lambda r: dataclasses.replace(r, origin=r.origin + "x"), id="origin"),
        pytest.param(lambda r: dataclasses.replace(r, anchored_at=r.anchored_at + timedelta(hours=1)), id="time"),
        pytest.param(lambda r: dataclasses.replace(r, backend="elsewhere"), id="backend"),
    ],
)
def test_verify_rejects_a_receipt_with_a_changed_value(backend: LedgerBackend, change: object) -> None:
    receipt = backend.anchor(ORIGIN, 3, root(3))
    backend.anchor(ORIGIN, 4, root(4))  # a later anchor must not make an altered earlier receipt pass
    forged = change(receipt)  # type: ignore[operator]
    with pytest.raises(VerificationError):
        backend.verify_anchor(forged)


def test_verify_rejects_a_change_to_any_reference_field(backend: LedgerBackend) -> None:
    backend.anchor(ORIGIN, 1, root(1))
    receipt = backend.anchor(ORIGIN, 2, root(2))
    backend.anchor(ORIGIN, 3, root(3))
    for key, value in receipt.reference.items():
        forged = dataclasses.replace(receipt, reference={**receipt.reference, key: mutated(value)})
        with pytest.raises(VerificationError):
            backend.verify_anchor(forged)
        missing = dataclasses.replace(receipt, reference={k: v for k, v in receipt.reference.items() if k != key})
        with pytest.raises(VerificationError):
            backend.verify_anchor(missing)
    backend.verify_anchor(receipt)


def test_the_receipt_of_another_anchor_does_not_vouch_for_these_values(backend: LedgerBackend) -> None:
    first = backend.anchor(ORIGIN, 10, root(10))
    second = backend.anchor(ORIGIN, 11, root(11))
    swapped = dataclasses.replace(first, reference=second.reference)
    with pytest.raises(VerificationError):
        backend.verify_anchor(swapped)


def test_many_anchors_keep_their_order(backend: LedgerBackend) -> None:
    receipts = [backend.anchor(f"{ORIGIN}/{n % 2}", n, root(n)) for n in range(6)]
    positions = [position(r) for r in receipts]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [r.anchored_at for r in receipts] == sorted(r.anchored_at for r in receipts)
    for n, receipt in enumerate(receipts):
        assert (receipt.size, receipt.root_hash) == (n, root(n))
        backend.verify_anchor(receipt)


def test_a_backend_that_is_down_raises_ledger_unavailable(backend: LedgerBackend, down_backend: LedgerBackend) -> None:
    receipt = backend.anchor(ORIGIN, 5, root(5))
    with pytest.raises(LedgerUnavailable):
        down_backend.anchor(ORIGIN, 6, root(6))
    # Not being able to look is not evidence of tampering: it must not be reported as a verification failure.
    with pytest.raises(LedgerUnavailable):
        down_backend.verify_anchor(receipt)


def test_backend_satisfies_the_protocol_and_is_found_by_its_entry_point(backend: LedgerBackend) -> None:
    assert isinstance(backend, LedgerBackend)
    assert type(backend).name in available_backends()


def test_entry_points_find_both_builtin_backends() -> None:
    assert {"local", "ethereum"} <= set(available_backends())


def test_an_unknown_backend_name_lists_the_available_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown ledger backend 'nope'; available: .*ethereum.*local"):
        open_backend("nope", {})
