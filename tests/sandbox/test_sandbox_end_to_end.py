"""The sandbox is a test: the default month runs end to end and its figures are those the scenario states.

Once on the local ledger, and once against the EVM node named by ``SONATA_DLT_TEST_EVM_RPC`` (CI starts Ganache
with ``.ci/evm-node.sh``), where every anchor is looked up on the chain.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from sonata_dlt.client.bundle import verify_bundle
from sonata_dlt.sandbox.narration import Narrator
from sonata_dlt.sandbox.scenario import default_scenario_path, load_scenario
from sonata_dlt.sandbox.session import Options, Outcome, run_sandbox

pytestmark = pytest.mark.slow

EVM_RPC = os.environ.get("SONATA_DLT_TEST_EVM_RPC", "")
HOW_TO_START = 'start one with `eval "$(.ci/evm-node.sh)"`'


def _play(tmp_path: Path, **options: object) -> tuple[Outcome, str]:
    scenario = load_scenario(default_scenario_path())
    out = io.StringIO()
    run = Options(scenario, exit_when_done=True, work_dir=tmp_path, **options)
    outcome = asyncio.run(run_sandbox(run, Narrator(out)))
    return outcome, out.getvalue()


def _check(tmp_path: Path, outcome: Outcome, text: str) -> None:
    scenario = load_scenario(default_scenario_path())
    assert outcome.failed_expectations == [], text
    assert outcome.alarms == [], text
    assert outcome.exit_code == 0, text
    for name in scenario.expectations:
        assert scenario.bound(name, 1).check(outcome.figures[name]), (name, outcome.figures[name])
    # The buyer agents really are separate systems of record, filled from notifications and GETs, and cosign.
    for party in scenario.operators:
        with sqlite3.connect(tmp_path / f"agent-{party}.sqlite") as db:
            assert db.execute("SELECT COUNT(*) FROM resource WHERE kind = 'productOrder'").fetchone()[0] > 0
            assert db.execute("SELECT COUNT(*) FROM cosigned").fetchone()[0] > 0
    # The audit bundle is on disk and still verifies offline, with nothing but the file.
    (bundle_file,) = tmp_path.glob("bundle-CB-*.json")
    bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
    assert bundle["subject"]["resourceType"] == "customerBill"
    assert verify_bundle(bundle, offline=True).proven
    assert "summary" in text and "PASSED" in text and "[wait]" not in text  # every step ran, none waited


def test_default_scenario_meets_its_expectations(tmp_path: Path) -> None:
    outcome, text = _play(tmp_path)
    _check(tmp_path, outcome, text)


def _evm_node() -> str:
    if not EVM_RPC:
        pytest.skip(f"SONATA_DLT_TEST_EVM_RPC is not set, so there is no EVM node to run against; {HOW_TO_START}")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(EVM_RPC, data=body, headers={"content-type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - the node CI names
            if "result" not in json.loads(answer.read()):
                raise ValueError("no result")
    except (OSError, ValueError) as exc:
        pytest.skip(f"SONATA_DLT_TEST_EVM_RPC={EVM_RPC} does not answer ({exc}); {HOW_TO_START}")
    return EVM_RPC


@pytest.mark.ethereum
def test_default_scenario_on_an_evm_chain(tmp_path: Path) -> None:
    rpc = _evm_node()
    outcome, text = _play(tmp_path, ledger="ethereum", rpc=rpc)
    _check(tmp_path, outcome, text)
    assert "ledger ethereum" in text
    # The full verification looked every anchor up on the chain, not only at the receipts.
    assert "looked up on the ethereum ledger" in text and "offline only" not in text
