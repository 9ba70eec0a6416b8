"""Audit bundles: exported from a running server once both parties endorsed a checkpoint, verified with no server,
and refused, naming what is wrong, when any part of them is altered."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.live_server import LiveServer, run_cli, scenario
from sonata_dlt.client.bundle import verify_bundle
from sonata_dlt.errors import VerificationError
from sonata_dlt.settings import DEMO_BUYER_TOKEN, DEMO_SELLER_TOKEN
from sonata_dlt.signing.keys import SigningKey

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path, dict[str, Any]]]:
    """One server for the module (the tests only read it): an endorsed checkpoint and the first order's bundle."""
    home = tmp_path_factory.mktemp("bundle")
    server = LiveServer(f"sqlite:///{home / 'db.sqlite'}", home / "data", home / "server.log")
    server.start()
    try:
        orders = scenario(server)
        out = home / "bundle.json"
        refused = run_cli(
            "bundle", "export", "--url", server.url, "--token", DEMO_BUYER_TOKEN,
            "--resource-type", "productOrder", "--id", orders[0], "--out", str(out),
        )  # fmt: skip
        assert refused.returncode == 2 and "no checkpoint endorsed by both parties" in refused.stderr
        for party, token in (("buyer", DEMO_BUYER_TOKEN), ("seller", DEMO_SELLER_TOKEN)):
            key = home / f"{party}.skey"
            SigningKey.generate(f"{party}-key").save(key)
            verified = run_cli(
                "verify", "--url", server.url, "--token", token, "--key", str(key), "--state", str(home / party)
            )
            assert verified.returncode == 0, verified.stdout + verified.stderr
        done = run_cli(
            "bundle", "export", "--url", server.url, "--token", DEMO_SELLER_TOKEN,
            "--resource-type", "productOrder", "--id", orders[0], "--out", str(out),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield server, out, json.loads(out.read_text())
    finally:
        server.stop()


def test_bundle_verifies_offline_and_against_the_journal(exported: tuple[LiveServer, Path, dict[str, Any]]) -> None:
    server, path, bundle = exported
    offline = run_cli("bundle", "verify", str(path), "--offline")
    assert offline.returncode == 0, offline.stderr
    assert "cosigned by buyer BUYER-1" in offline.stdout and "seller SELLER-1" in offline.stdout
    assert "versions 1..3 in the log" in offline.stdout  # created, accepted, completed
    assert "not checked: that the local journal still holds the anchor" in offline.stdout
    online = run_cli("bundle", "verify", str(path), "--journal", str(server.journal))
    assert online.returncode == 0, online.stderr
    assert "found on the local ledger" in online.stdout
    assert run_cli("bundle", "verify", str(path)).returncode == 2  # a local anchor needs its journal, or --offline
    assert [key["role"] for key in bundle["keys"]] == ["host", "buyer", "seller"]


def _refused(bundle: dict[str, Any], expected: str) -> None:
    with pytest.raises(VerificationError) as caught:
        verify_bundle(bundle, offline=True)
    assert expected in str(caught.value)


def test_altered_document(exported: tuple[LiveServer, Path, dict[str, Any]]) -> None:
    bundle = copy.deepcopy(exported[2])
    bundle["resources"][0]["leaves"][-1]["document"]["state"] = "cancelled"
    _refused(bundle, "the document of version 3 hashes to")


def test_missing_version(exported: tuple[LiveServer, Path, dict[str, Any]]) -> None:
    bundle = copy.deepcopy(exported[2])
    del bundle["resources"][0]["leaves"][1]
    _refused(bundle, "follows version 1; the leaves do not chain")


def test_altered_proof(exported: tuple[LiveServer, Path, dict[str, Any]]) -> None:
    bundle = copy.deepcopy(exported[2])
    proof = bundle["resources"][0]["leaves"][0]["inclusionProof"]
    proof[0] = base64.b64encode(bytes(32)).decode()
    _refused(bundle, "does not lead to the checkpoint root")


def test_missing_cosignature(exported: tuple[LiveServer, Path, dict[str, Any]]) -> None:
    bundle = copy.deepcopy(exported[2])
    note = bundle["checkpoint"]["note"]
    bundle["checkpoint"]["note"] = "".join(line for line in note.splitlines(keepends=True) if "seller-key" not in line)
    _refused(bundle, "is not endorsed: valid cosignatures from ['buyer']")


def test_receipt_for_another_root(exported: tuple[LiveServer, Path, dict[str, Any]]) -> None:
    bundle = copy.deepcopy(exported[2])
    bundle["anchorReceipt"]["rootHash"] = "00" * 32
    _refused(bundle, "anchor receipt of checkpoint 5 is for")


def test_substituted_host_key(exported: tuple[LiveServer, Path, dict[str, Any]]) -> None:
    bundle = copy.deepcopy(exported[2])
    host = next(key for key in bundle["keys"] if key["role"] == "host")
    name = host["vkey"].split("+")[0]
    host["vkey"] = SigningKey.generate(name).verifier().to_vkey()
    _refused(bundle, "host signature")
