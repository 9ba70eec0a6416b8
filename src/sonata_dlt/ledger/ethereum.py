"""The ``ethereum`` backend: anchors on any EVM chain over JSON-RPC through the event-only ``AnchorLog`` contract.

One anchor is one transaction to the contract whose calldata is the 72 bytes
``keccak256(origin) || size (uint64, big-endian) || root``; the contract emits
``Anchored(bytes32 indexed originHash, uint64 size, bytes32 root)``. See ``anchors/README.md`` for the layout and
its gas cost (about 23,800 per anchor, constant).

Options (``from_options``):

- ``rpc_url``: the node's HTTP(S) JSON-RPC endpoint; or ``provider``: a web3 provider object (tests inject
  eth-tester's ``EthereumTesterProvider``).
- ``contract_address`` (required): where ``AnchorLog`` is deployed (``sonata-dlt anchors deploy``). The code there
  is compared with the bytecode this package was built with before first use.
- ``private_key``: hex key of the account that pays for anchors. Without it the node's first unlocked account is
  used, as dev nodes have; production nodes should not unlock accounts.
- ``confirmations`` (default 1): blocks, counting the one holding the anchor, required before ``anchor`` returns
  and before ``verify_anchor`` accepts. 1 suits dev nodes and single-operator chains. Production should use the
  chain's finality: on a BFT consortium chain (Besu/GoQuorum with QBFT or IBFT 2.0) blocks are final when
  produced, so 1 is right; on proof-of-stake Ethereum mainnet use about 64 blocks (two epochs, ~13 minutes) for
  finality, or at least 12 if probabilistic safety is enough.
- ``timeout_seconds`` (default 120): how long ``anchor`` waits for inclusion and confirmations.
- ``chain_id``: if set, the node must report this chain id or nothing is sent (protects against a node switched
  to another network).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import requests
from eth_account import Account
from eth_typing import HexStr
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TimeExhausted, TransactionNotFound, Web3Exception
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.providers import BaseProvider, HTTPProvider

from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError
from sonata_dlt.ledger import anchor_artifact
from sonata_dlt.ledger.base import AnchorReceipt, check_anchor_input, decode_hex

__all__ = ["ANCHORED_TOPIC", "EthereumLedger", "anchor_calldata", "deploy_anchor_contract"]

ANCHORED_TOPIC = keccak(text="Anchored(bytes32,uint64,bytes32)")
DEFAULT_TIMEOUT_SECONDS = 120.0
_POLL_SECONDS = 0.2
# Failures that mean "cannot talk to the node now", as opposed to the node answering something wrong.
_UNREACHABLE = (OSError, requests.RequestException, TimeExhausted, Web3Exception)


def anchor_calldata(origin: str, size: int, root_hash: bytes) -> bytes:
    """The 72-byte message ``AnchorLog`` expects: keccak256(origin) || size as uint64 big-endian || root."""
    check_anchor_input(origin, size, root_hash)
    return keccak(text=origin) + size.to_bytes(8, "big") + root_hash


def expected_log_data(size: int, root_hash: bytes) -> bytes:
    """The ``Anchored`` event data, ABI-encoded: size padded to 32 bytes, then root."""
    return size.to_bytes(32, "big") + root_hash


@contextmanager
def _rpc(what: str) -> Iterator[None]:
    try:
        yield
    except (VerificationError, ConfigurationError, LedgerUnavailable):
        raise
    except _UNREACHABLE as exc:
        raise LedgerUnavailable(f"ethereum ledger: {what} failed: {type(exc).__name__}: {exc}") from exc


def _connect(rpc_url: str | None, provider: BaseProvider | None, timeout: float) -> Web3:
    if provider is not None:
        return Web3(provider)
    if not rpc_url or not rpc_url.startswith(("http://", "https://")):
        raise ConfigurationError("ethereum ledger: give rpc_url (http:// or https://) or a provider")
    # No provider-level retries: anchoring already queues and retries, and a down node should fail fast.
    http = HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
    return Web3(http)


def _use_key(w3: Web3, private_key: str | bytes | None) -> str:
    """Return the sending address; with a key, sign locally through web3's signing middleware."""
    if private_key is None:
        with _rpc("listing the node's unlocked accounts"):
            accounts = w3.eth.accounts
        if not accounts:
            raise ConfigurationError("ethereum ledger: no private_key given and the node has no unlocked account")
        return to_checksum_address(accounts[0])
    try:
        account = Account.from_key(private_key)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"ethereum ledger: private_key is unusable: {type(exc).__name__}") from None
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    return to_checksum_address(account.address)


def _wait_confirmed(w3: Web3, tx_hash: bytes, confirmations: int, timeout: float) -> dict[str, Any]:
    """Wait until the transaction's block is canonical and ``confirmations`` deep; return its receipt."""
    deadline = time.monotonic() + timeout
    while True:
        with _rpc("waiting for the transaction receipt"):
            receipt: dict[str, Any] | None
            try:
                receipt = dict(w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
            except TransactionNotFound:
                receipt = None
            if receipt is not None:
                depth = w3.eth.block_number - receipt["blockNumber"] + 1
                canonical = w3.eth.get_block(receipt["blockNumber"])["hash"] == receipt["blockHash"]
                if canonical and depth >= confirmations:
                    return receipt
        if time.monotonic() >= deadline:
            raise LedgerUnavailable(
                f"ethereum ledger: transaction 0x{tx_hash.hex()} not confirmed {confirmations} deep within "
                f"{timeout:g}s; it may still confirm"
            )
        time.sleep(_POLL_SECONDS)


def deploy_anchor_contract(
    target: str | Web3,
    private_key: str | bytes | None = None,
    *,
    confirmations: int = 1,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> str:
    """Deploy ``AnchorLog`` through ``target`` (an RPC URL or a ``Web3``); return its checksum address.

    Pays with ``private_key`` or, without one, the node's first unlocked account. Raises ``LedgerUnavailable``
    when the node cannot be reached and ``ConfigurationError`` when the deployment does not produce the
    expected code.
    """
    w3 = target if isinstance(target, Web3) else _connect(target, None, timeout_seconds)
    sender = _use_key(w3, private_key)
    with _rpc("deploying AnchorLog"):
        tx_hash = w3.eth.send_transaction({"from": sender, "data": HexStr(anchor_artifact.BYTECODE)})
    receipt = _wait_confirmed(w3, bytes(tx_hash), confirmations, timeout_seconds)
    address = receipt.get("contractAddress")
    if receipt.get("status") != 1 or not address:
        raise ConfigurationError(f"ethereum ledger: deployment transaction 0x{bytes(tx_hash).hex()} failed")
    with _rpc("reading the deployed code"):
        code = bytes(w3.eth.get_code(address))
    if code != decode_hex(anchor_artifact.DEPLOYED_BYTECODE, "AnchorLog deployed bytecode"):
        raise ConfigurationError(f"ethereum ledger: code at {address} is not AnchorLog after deployment")
    return to_checksum_address(address)


class EthereumLedger:
    """Anchors through ``AnchorLog`` on an EVM chain. See the module docstring for the options."""

    name: ClassVar[str] = "ethereum"

    def __init__(
        self,
        w3: Web3,
        contract_address: str,
        *,
        private_key: str | bytes | None = None,
        confirmations: int = 1,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        chain_id: int | None = None,
    ) -> None:
        if not is_address(contract_address):
            raise ConfigurationError(f"ethereum ledger: contract_address {contract_address!r} is not an address")
        if confirmations < 1:
            raise ConfigurationError("ethereum ledger: confirmations must be at least 1")
        self.w3 = w3
        self.contract_address = to_checksum_address(contract_address)
        self.confirmations = confirmations
        self.timeout_seconds = timeout_seconds
        self.expected_chain_id = chain_id
        self._private_key = private_key
        self._sender: str | None = None
        self._chain_id: int | None = None  # set once the node and the contract have been checked

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> EthereumLedger:
        timeout = float(options.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        if not options.get("contract_address"):
            raise ConfigurationError("ethereum ledger: option 'contract_address' is required")
        chain_id = options.get("chain_id")
        return cls(
            _connect(options.get("rpc_url"), options.get("provider"), timeout),
            str(options["contract_address"]),
            private_key=options.get("private_key") or None,
            confirmations=int(options.get("confirmations", 1)),
            timeout_seconds=timeout,
            chain_id=None if chain_id is None else int(chain_id),
        )

    def _checked_chain(self) -> int:
        """Check once that the node is on the expected chain and the contract is AnchorLog; return the chain id."""
        if self._chain_id is not None:
            return self._chain_id
        with _rpc("reading the chain id and contract code"):
            chain_id = int(self.w3.eth.chain_id)
            code = bytes(self.w3.eth.get_code(self.contract_address))
        if self.expected_chain_id is not None and chain_id != self.expected_chain_id:
            raise ConfigurationError(
                f"ethereum ledger: node is on chain {chain_id}, settings expect chain {self.expected_chain_id}"
            )
        if code != decode_hex(anchor_artifact.DEPLOYED_BYTECODE, "AnchorLog deployed bytecode"):
            raise ConfigurationError(
                f"ethereum ledger: no AnchorLog contract at {self.contract_address} on chain {chain_id}"
            )
        self._chain_id = chain_id
        return chain_id

    def anchor(self, origin: str, size: int, root_hash: bytes) -> AnchorReceipt:
        calldata = anchor_calldata(origin, size, root_hash)
        chain_id = self._checked_chain()
        if self._sender is None:
            self._sender = _use_key(self.w3, self._private_key)
        with _rpc("sending the anchor transaction"):
            tx_hash = bytes(
                self.w3.eth.send_transaction({"from": self._sender, "to": self.contract_address, "data": calldata})
            )
        receipt = _wait_confirmed(self.w3, tx_hash, self.confirmations, self.timeout_seconds)
        if receipt.get("status") != 1:
            raise LedgerUnavailable(f"ethereum ledger: anchor transaction 0x{tx_hash.hex()} reverted")
        log = self._find_log(receipt)
        with _rpc("reading the anchor block"):
            block = self.w3.eth.get_block(receipt["blockNumber"])
        return AnchorReceipt(
            backend=self.name,
            origin=origin,
            size=size,
            root_hash=root_hash,
            reference={
                "chainId": chain_id,
                "contractAddress": self.contract_address,
                "transactionHash": "0x" + tx_hash.hex(),
                "blockNumber": int(receipt["blockNumber"]),
                "blockHash": "0x" + bytes(receipt["blockHash"]).hex(),
                "logIndex": int(log["logIndex"]),
                "sender": to_checksum_address(receipt["from"]),
            },
            anchored_at=datetime.fromtimestamp(int(block["timestamp"]), UTC),
        )

    def _find_log(self, receipt: Mapping[str, Any]) -> Mapping[str, Any]:
        for log in receipt["logs"]:
            if log["address"] == self.contract_address and log["topics"] and bytes(log["topics"][0]) == ANCHORED_TOPIC:
                return cast(Mapping[str, Any], log)
        raise LedgerUnavailable("ethereum ledger: anchor transaction emitted no Anchored event")

    def verify_anchor(self, receipt: AnchorReceipt) -> None:
        """Re-read the chain: the log at the receipt's reference must carry exactly (origin, size, root).

        Checks, in order: backend, chain id, that the contract is the one this verifier trusts (never the address
        the receipt names), the transaction receipt's block, that block still being canonical and deep enough,
        the sender, the log's address, topics and data, and the block timestamp against ``anchoredAt``.
        """
        if receipt.backend != self.name:
            raise VerificationError(f"receipt is from backend {receipt.backend!r}, not {self.name!r}")
        ref = _Reference.parse(receipt.reference)
        chain_id = self._checked_chain()
        if ref.chain_id != chain_id:
            raise VerificationError(f"receipt is for chain {ref.chain_id}; this ledger is chain {chain_id}")
        if ref.contract_address != self.contract_address:
            raise VerificationError(
                f"receipt names contract {ref.contract_address}; this verifier trusts {self.contract_address}"
            )
        tx = "0x" + ref.transaction_hash.hex()
        with _rpc(f"fetching transaction {tx}"):
            try:
                tx_receipt = self.w3.eth.get_transaction_receipt(HexBytes(ref.transaction_hash))
            except TransactionNotFound:
                raise VerificationError(f"transaction {tx} is not on chain {chain_id}") from None
            latest = self.w3.eth.block_number
            canonical = self.w3.eth.get_block(ref.block_number)
        if tx_receipt["status"] != 1:
            raise VerificationError(f"transaction {tx} reverted; it anchored nothing")
        if bytes(tx_receipt["blockHash"]) != ref.block_hash or tx_receipt["blockNumber"] != ref.block_number:
            raise VerificationError(
                f"transaction {tx} is in block {tx_receipt['blockNumber']} (0x{bytes(tx_receipt['blockHash']).hex()}),"
                f" not block {ref.block_number} (0x{ref.block_hash.hex()}) as the receipt says"
            )
        if bytes(canonical["hash"]) != ref.block_hash:
            raise VerificationError(f"block {ref.block_number} 0x{ref.block_hash.hex()} is no longer canonical")
        depth = latest - ref.block_number + 1
        if depth < self.confirmations:
            raise VerificationError(f"anchor has {depth} confirmations; {self.confirmations} required")
        if to_checksum_address(tx_receipt["from"]) != ref.sender:
            raise VerificationError(f"transaction {tx} was sent by {tx_receipt['from']}, not {ref.sender}")
        logs = [log for log in tx_receipt["logs"] if log["logIndex"] == ref.log_index]
        if not logs:
            raise VerificationError(f"transaction {tx} has no log with index {ref.log_index}")
        log = logs[0]
        if to_checksum_address(log["address"]) != self.contract_address:
            raise VerificationError(f"log {ref.log_index} was emitted by {log['address']}, not the anchor contract")
        topics = [bytes(t) for t in log["topics"]]
        if topics[:1] != [ANCHORED_TOPIC] or len(topics) != 2:
            raise VerificationError(f"log {ref.log_index} is not an Anchored event")
        if topics[1] != keccak(text=receipt.origin):
            raise VerificationError(f"anchor on chain is for another origin than {receipt.origin!r}")
        data = bytes(log["data"])
        if data[:32] != receipt.size.to_bytes(32, "big"):
            raise VerificationError(
                f"anchor on chain is for size {int.from_bytes(data[:32], 'big')}, receipt says {receipt.size}"
            )
        if data != expected_log_data(receipt.size, receipt.root_hash):
            raise VerificationError(
                f"anchor on chain has root {data[32:].hex()}, receipt says {receipt.root_hash.hex()}"
            )
        anchored_at = datetime.fromtimestamp(int(canonical["timestamp"]), UTC)
        if anchored_at != receipt.anchored_at:
            raise VerificationError(f"block time is {anchored_at.isoformat()}, receipt says {receipt.anchored_at}")

    def close(self) -> None:
        """Drop cached HTTP sessions. The Web3 object itself holds nothing else that needs closing."""
        provider = self.w3.provider
        manager = getattr(provider, "_request_session_manager", None)
        cache = getattr(manager, "session_cache", None)
        if cache is not None:
            for _, session in list(cache.items()):
                session.close()
            cache.clear()


class _Reference:
    """The ethereum part of a receipt, type-checked."""

    def __init__(self, ref: Mapping[str, str | int]) -> None:
        self.chain_id = self._int(ref, "chainId")
        address = self._str(ref, "contractAddress")
        sender = self._str(ref, "sender")
        for key, value in (("contractAddress", address), ("sender", sender)):
            if not is_address(value):
                raise VerificationError(f"receipt reference.{key} is not an address")
        self.contract_address = to_checksum_address(address)
        self.sender = to_checksum_address(sender)
        self.transaction_hash = decode_hex(self._str(ref, "transactionHash"), "receipt reference.transactionHash", 32)
        self.block_hash = decode_hex(self._str(ref, "blockHash"), "receipt reference.blockHash", 32)
        self.block_number = self._int(ref, "blockNumber")
        self.log_index = self._int(ref, "logIndex")

    @classmethod
    def parse(cls, ref: Mapping[str, str | int]) -> _Reference:
        return cls(ref)

    @staticmethod
    def _int(ref: Mapping[str, str | int], key: str) -> int:
        value = ref.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise VerificationError(f"receipt reference.{key} must be a non-negative integer")
        return value

    @staticmethod
    def _str(ref: Mapping[str, str | int], key: str) -> str:
        value = ref.get(key)
        if not isinstance(value, str):
            raise VerificationError(f"receipt reference.{key} must be a string")
        return value
