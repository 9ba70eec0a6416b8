"""Ledger fixtures: every backend the shared contract tests run against, up and down.

``backend`` is parametrised over

- ``local``: a journal in ``tmp_path`` with a fresh key;
- ``ethereum-tester``: the real ``ethereum`` backend on an in-process py-evm chain (eth-tester), always run;
- ``ethereum-rpc``: the ``ethereum`` backend against the node named by ``SONATA_DLT_TEST_EVM_RPC`` (marked
  ``ethereum``; skipped, saying why, when the variable is unset or the node does not answer). ``.ci/evm-node.sh``
  starts one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sonata_dlt.ledger import LedgerBackend, open_backend

EVM_RPC = os.environ.get("SONATA_DLT_TEST_EVM_RPC", "")
HOW_TO_START = 'start one with `eval "$(.ci/evm-node.sh)"`'


@pytest.fixture
def make_local(tmp_path: Path) -> Callable[..., LedgerBackend]:
    """Factory: a local ledger on ``tmp_path/anchors.jsonl`` with a fixed key, with option overrides."""

    def make(**overrides: Any) -> LedgerBackend:
        options: dict[str, Any] = {"path": tmp_path / "anchors.jsonl", "signing_key_seed": bytes(range(32))}
        options.update(overrides)
        return open_backend("local", options)

    return make


@pytest.fixture(scope="session")
def tester_chain() -> tuple[Any, str]:
    """One in-process py-evm chain with AnchorLog deployed: (provider, contract address)."""
    from web3 import EthereumTesterProvider, Web3

    from sonata_dlt.ledger.ethereum import deploy_anchor_contract

    provider = EthereumTesterProvider()
    return provider, deploy_anchor_contract(Web3(provider))


@pytest.fixture(scope="session")
def rpc_chain() -> tuple[str, str]:
    """The external node and an AnchorLog deployed on it for this session: (rpc url, contract address)."""
    if not EVM_RPC:
        pytest.skip(f"SONATA_DLT_TEST_EVM_RPC is not set, so there is no EVM node to test against; {HOW_TO_START}")
    from sonata_dlt.errors import LedgerUnavailable
    from sonata_dlt.ledger.ethereum import deploy_anchor_contract

    try:
        return EVM_RPC, deploy_anchor_contract(EVM_RPC, timeout_seconds=30)
    except LedgerUnavailable as exc:
        pytest.skip(f"SONATA_DLT_TEST_EVM_RPC={EVM_RPC} does not answer ({exc}); {HOW_TO_START}")


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: bind a free port, then release it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(
    params=["local", "ethereum-tester", pytest.param("ethereum-rpc", marks=pytest.mark.ethereum)],
)
def ledger_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_backend(
    ledger_kind: str, request: pytest.FixtureRequest, make_local: Callable[..., LedgerBackend]
) -> Iterator[Callable[..., LedgerBackend]]:
    """Factory for the backend under test, with option overrides; closes what it made."""
    made: list[LedgerBackend] = []

    def make(**overrides: Any) -> LedgerBackend:
        if ledger_kind == "local":
            backend = make_local(**overrides)
        elif ledger_kind == "ethereum-tester":
            provider, address = request.getfixturevalue("tester_chain")
            backend = open_backend("ethereum", {"provider": provider, "contract_address": address} | overrides)
        else:
            url, address = request.getfixturevalue("rpc_chain")
            options = {"rpc_url": url, "contract_address": address, "timeout_seconds": 30}
            backend = open_backend("ethereum", options | overrides)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make_backend: Callable[..., LedgerBackend]) -> LedgerBackend:
    """The backend under test, up and working."""
    return make_backend()


@pytest.fixture
def down_backend(ledger_kind: str, tmp_path: Path, make_backend: Callable[..., LedgerBackend]) -> LedgerBackend:
    """The same kind of backend, configured against a ledger that cannot be reached."""
    if ledger_kind == "local":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a regular file where the journal's directory should be\n")
        # A path under a regular file cannot be created or opened, even by root (unlike a chmod'ed directory).
        return make_backend(path=blocker / "anchors.jsonl")
    return make_backend(provider=None, rpc_url=closed_port_url(), timeout_seconds=2)
