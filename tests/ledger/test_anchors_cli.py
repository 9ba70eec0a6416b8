"""``sonata-dlt anchors``: deploy and verify-receipt, driven through the command group's own parser."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sonata_dlt.cli import anchors
from sonata_dlt.ledger import LedgerBackend, open_backend
from sonata_dlt.ledger.local import LocalLedger

ORIGIN = "sonata.example.net/bilateral/7f3c9a21"
ROOT = hashlib.sha256(b"root").digest()


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="sonata-dlt")
    anchors.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["anchors", *argv])
    exit_code: int = args.handler(args)
    return exit_code


def test_verify_receipt_local_offline_and_against_the_journal(
    make_local: Callable[..., LedgerBackend], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = make_local()
    assert isinstance(ledger, LocalLedger)
    receipt = ledger.anchor(ORIGIN, 3, ROOT)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt.to_json()))
    key = ledger.verify_key.hex()

    assert run("verify-receipt", str(path), "--verify-key", key) == anchors.EXIT_OK
    assert "OK (offline)" in capsys.readouterr().out
    assert run("verify-receipt", str(path), "--verify-key", key, "--journal", str(ledger.path)) == anchors.EXIT_OK
    assert run("verify-receipt", str(path)) == anchors.EXIT_USAGE

    path.write_text(json.dumps(dataclasses.replace(receipt, size=4).to_json()))
    assert run("verify-receipt", str(path), "--verify-key", key) == anchors.EXIT_FAILED
    assert "NOT VERIFIED: receipt for journal entry 0: entryHash does not match" in capsys.readouterr().err


def test_verify_receipt_rejects_a_file_that_is_not_a_receipt(tmp_path: Path) -> None:
    path = tmp_path / "receipt.json"
    path.write_text('{"backend": "local"}')
    assert run("verify-receipt", str(path), "--verify-key", "00" * 32) == anchors.EXIT_FAILED
    path.write_text("not json")
    assert run("verify-receipt", str(path)) == anchors.EXIT_USAGE


def test_deploy_reports_an_unreachable_node(capsys: pytest.CaptureFixture[str]) -> None:
    from .conftest import closed_port_url

    assert run("deploy", "--rpc", closed_port_url(), "--timeout", "2") == anchors.EXIT_UNAVAILABLE
    assert "ethereum ledger:" in capsys.readouterr().err


@pytest.mark.ethereum
def test_deploy_then_verify_an_ethereum_receipt(
    rpc_chain: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = rpc_chain
    assert run("deploy", "--rpc", url) == anchors.EXIT_OK
    address = capsys.readouterr().out.strip()
    receipt = open_backend("ethereum", {"rpc_url": url, "contract_address": address}).anchor(ORIGIN, 3, ROOT)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt.to_json()))
    assert run("verify-receipt", str(path), "--rpc", url, "--contract", address) == anchors.EXIT_OK
    _, other = rpc_chain
    assert run("verify-receipt", str(path), "--rpc", url, "--contract", other) == anchors.EXIT_FAILED
