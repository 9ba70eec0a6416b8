"""The ethereum backend and the AnchorLog contract on in-process py-evm chains (eth-tester).

Tests that mine, snapshot or revert get a chain of their own; the shared contract tests use ``tester_chain``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_tester import EthereumTester
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import Web3Exception

from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError
from sonata_dlt.ledger import anchor_artifact, open_backend
from sonata_dlt.ledger.ethereum import ANCHORED_TOPIC, EthereumLedger, anchor_calldata, deploy_anchor_contract

ARTIFACT = Path(__file__).resolve().parents[2] / "anchors" / "AnchorLog.json"
ORIGIN = "sonata.example.net/bilateral/7f3c9a21"
GAS_BUDGET = 25_000


def root(n: int) -> bytes:
    return hashlib.sha256(b"root %d" % n).digest()


class Chain:
    """A private eth-tester chain with AnchorLog deployed."""

    def __init__(self) -> None:
        self.tester = EthereumTester()
        self.provider = EthereumTesterProvider(ethereum_tester=self.tester)
        self.w3 = Web3(self.provider)
        self.address = deploy_anchor_contract(self.w3)

    def ledger(self, **options: Any) -> EthereumLedger:
        backend = open_backend("ethereum", {"provider": self.provider, "contract_address": self.address} | options)
        assert isinstance(backend, EthereumLedger)
        return backend


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_an_anchor_costs_at_most_25000_gas(chain: Chain) -> None:
    ledger = chain.ledger()
    # Worst realistic case for calldata: a size with no zero bytes and a long origin (its length must not matter).
    for origin, size in [(ORIGIN, 1), ("x" * 1000, 2**64 - 1)]:
        receipt = ledger.anchor(origin, size, root(size % 1000))
        gas_used = chain.w3.eth.get_transaction_receipt(str(receipt.reference["transactionHash"]))["gasUsed"]
        assert gas_used <= GAS_BUDGET, f"anchor used {gas_used} gas"


def test_the_log_decodes_with_the_published_abi(chain: Chain) -> None:
    receipt = chain.ledger().anchor(ORIGIN, 42, root(42))
    abi = json.loads(ARTIFACT.read_text())["abi"]
    contract = chain.w3.eth.contract(address=chain.address, abi=abi)
    tx_receipt = chain.w3.eth.get_transaction_receipt(str(receipt.reference["transactionHash"]))
    (event,) = contract.events.Anchored().process_receipt(tx_receipt)
    assert event["args"]["originHash"] == Web3.keccak(text=ORIGIN)
    assert event["args"]["size"] == 42
    assert event["args"]["root"] == root(42)
    assert event["logIndex"] == receipt.reference["logIndex"]
    assert bytes(tx_receipt["logs"][0]["topics"][0]) == ANCHORED_TOPIC


def test_the_packaged_bytecode_is_the_committed_artifact() -> None:
    artifact = json.loads(ARTIFACT.read_text())
    assert anchor_artifact.BYTECODE == artifact["bytecode"]
    assert anchor_artifact.DEPLOYED_BYTECODE == artifact["deployedBytecode"]
    assert anchor_artifact.COMPILER_VERSION == artifact["compiler"]["version"]
    source = (ARTIFACT.parent / artifact["sourceName"]).read_bytes()
    assert hashlib.sha256(source).hexdigest() == artifact["sourceSha256"] == anchor_artifact.SOURCE_SHA256, (
        "AnchorLog.sol changed: run anchors/build.sh and commit the artifact"
    )


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"", 0),
        (b"\x01" * 71, 0),
        (b"\x01" * 73, 0),
        (b"\x01" * 72, 1),  # ether is refused: nothing could ever take it out again
    ],
    ids=["empty", "71-bytes", "73-bytes", "with-ether"],
)
def test_the_contract_refuses_anything_but_a_72_byte_message(chain: Chain, data: bytes, value: int) -> None:
    sender = chain.w3.eth.accounts[0]
    with pytest.raises((Web3Exception, TransactionFailed)):  # eth-tester reports a revert in its own words
        chain.w3.eth.call({"from": sender, "to": chain.address, "data": data, "value": value})
    message = anchor_calldata(ORIGIN, 1, root(1))
    assert len(message) == 72
    chain.w3.eth.call({"from": sender, "to": chain.address, "data": message})


def test_a_receipt_for_another_anchorlog_is_rejected(chain: Chain) -> None:
    other = deploy_anchor_contract(chain.w3)
    receipt = chain.ledger(contract_address=other).anchor(ORIGIN, 1, root(1))
    with pytest.raises(VerificationError, match=r"receipt names contract .*; this verifier trusts"):
        chain.ledger().verify_anchor(receipt)
    # Rewriting the receipt to name the trusted contract does not help: the log was emitted by the other one.
    forged = dataclasses.replace(receipt, reference={**receipt.reference, "contractAddress": chain.address})
    with pytest.raises(VerificationError, match=r"log 0 was emitted by .*, not the anchor contract"):
        chain.ledger().verify_anchor(forged)


def test_an_address_without_anchorlog_is_a_configuration_error(chain: Chain) -> None:
    empty = Account.create().address
    with pytest.raises(ConfigurationError, match=r"no AnchorLog contract at"):
        chain.ledger(contract_address=empty).anchor(ORIGIN, 1, root(1))


def test_a_mismatched_chain_is_refused(chain: Chain) -> None:
    actual = chain.w3.eth.chain_id
    with pytest.raises(ConfigurationError, match=rf"node is on chain {actual}, settings expect chain 1\b"):
        chain.ledger(chain_id=1).anchor(ORIGIN, 1, root(1))
    chain.ledger(chain_id=actual).anchor(ORIGIN, 1, root(1))


def test_an_anchor_dropped_by_a_reorganisation_fails_verification(chain: Chain) -> None:
    ledger = chain.ledger()
    snapshot = chain.tester.take_snapshot()
    receipt = ledger.anchor(ORIGIN, 1, root(1))
    ledger.verify_anchor(receipt)
    chain.tester.revert_to_snapshot(snapshot)
    chain.tester.mine_blocks(3)  # the competing branch is now longer
    with pytest.raises(VerificationError, match=r"is not on chain|no longer canonical"):
        ledger.verify_anchor(receipt)


def test_confirmations_are_waited_for_and_required(chain: Chain) -> None:
    deep = chain.ledger(confirmations=3, timeout_seconds=0.5)
    # Nothing mines more blocks on this chain, so the anchor is included but never three deep in time.
    with pytest.raises(LedgerUnavailable, match=r"not confirmed 3 deep within 0.5s; it may still confirm"):
        deep.anchor(ORIGIN, 1, root(1))
    receipt = chain.ledger().anchor(ORIGIN, 2, root(2))
    with pytest.raises(VerificationError, match=r"anchor has 1 confirmations; 3 required"):
        deep.verify_anchor(receipt)
    chain.tester.mine_blocks(2)
    deep.verify_anchor(receipt)


def test_a_private_key_pays_for_anchors(chain: Chain) -> None:
    account = Account.create()
    funder = chain.w3.eth.accounts[0]
    chain.w3.eth.send_transaction({"from": funder, "to": account.address, "value": 10**18})
    ledger = chain.ledger(private_key=account.key.hex())
    receipt = ledger.anchor(ORIGIN, 9, root(9))
    assert receipt.reference["sender"] == account.address
    chain.ledger().verify_anchor(receipt)
    address = deploy_anchor_contract(chain.w3, account.key.hex())
    assert chain.w3.eth.get_code(address) == bytes.fromhex(anchor_artifact.DEPLOYED_BYTECODE[2:])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"contract_address": ""}, r"'contract_address' is required"),
        ({"contract_address": "0x1234"}, r"is not an address"),
        ({"provider": None, "rpc_url": "ftp://node"}, r"give rpc_url \(http:// or https://\)"),
        ({"confirmations": 0}, r"confirmations must be at least 1"),
    ],
)
def test_bad_options_are_configuration_errors(chain: Chain, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        chain.ledger(**options)


def test_a_bad_private_key_is_a_configuration_error(chain: Chain) -> None:
    with pytest.raises(ConfigurationError, match=r"private_key is unusable"):
        chain.ledger(private_key="0x1234").anchor(ORIGIN, 1, root(1))


@pytest.mark.ethereum
def test_an_unfunded_key_is_unavailable_not_a_crash_on_a_real_node(rpc_chain: tuple[str, str]) -> None:
    # On a real node the refusal comes back as a JSON-RPC error (eth-tester raises its own exception instead).
    url, address = rpc_chain
    options = {"rpc_url": url, "contract_address": address, "private_key": Account.create().key}
    ledger = open_backend("ethereum", options)
    with pytest.raises(LedgerUnavailable, match=r"sending the anchor transaction failed"):
        ledger.anchor(ORIGIN, 1, root(1))
