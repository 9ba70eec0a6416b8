"""Who takes part in a sandbox, and the server settings that describe them.

Two operators buy from each other, so each has two identities on the server: one token as a buyer and one as a
seller (a token speaks for one party in one role), and there are two *mirror* bilaterals, A→B and B→A. The
sandbox writes these into a TOML settings file for ``sonata-dlt serve --config``, the same way an operator would
configure a real server; nothing is injected into the server process by other means.

Tokens are random per run (``secrets``): the sandbox binds to loopback only, but a fixed token would still let any
local process act for an operator while it runs.
"""

from __future__ import annotations

import json
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonata_dlt.settings import Role

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Identity:
    """One party in one role, with the bearer token the server knows it by."""

    party_id: str
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Operator:
    party_id: str
    as_buyer: Identity
    as_seller: Identity

    @classmethod
    def create(cls, party_id: str) -> Operator:
        return cls(
            party_id,
            Identity(party_id, Role.BUYER, secrets.token_urlsafe(24)),
            Identity(party_id, Role.SELLER, secrets.token_urlsafe(24)),
        )


@dataclass
class Topology:
    operators: dict[str, Operator]
    server_port: int
    agent_ports: dict[str, int]  # buyer party id -> its agent's listener port
    ledger: dict[str, Any] = field(default_factory=lambda: {"backend": "local"})

    @property
    def server_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_port}"

    def agent_url(self, buyer_id: str) -> str:
        return f"http://{LOOPBACK}:{self.agent_ports[buyer_id]}"

    def bilaterals(self) -> list[tuple[str, str]]:
        """Every (buyer, seller) pair: each operator buys from every other one."""
        ids = sorted(self.operators)
        return [(buyer, seller) for buyer in ids for seller in ids if buyer != seller]

    def buyer(self, party_id: str) -> Identity:
        return self.operators[party_id].as_buyer

    def seller(self, party_id: str) -> Identity:
        return self.operators[party_id].as_seller


def free_port() -> int:
    """A port the kernel just gave us on loopback. Another process could take it before we bind again; the
    sandbox then fails to start with a clear error rather than silently using something else."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def make_topology(party_ids: list[str], server_port: int | None = None) -> Topology:
    operators = {party_id: Operator.create(party_id) for party_id in party_ids}
    return Topology(
        operators=operators,
        server_port=server_port or free_port(),
        agent_ports={party_id: free_port() for party_id in party_ids},
    )


def server_settings(topology: Topology, work_dir: Path, *, checkpoint_seconds: float) -> dict[str, Any]:
    """The settings document for the server process (written as TOML by ``write_toml``)."""
    tokens = [
        {"token": identity.token, "party_id": identity.party_id, "role": identity.role.value}
        for operator in topology.operators.values()
        for identity in (operator.as_buyer, operator.as_seller)
    ]
    return {
        "database_url": f"sqlite:///{(work_dir / 'server' / 'sonata.sqlite').as_posix()}",
        "data_dir": (work_dir / "server").as_posix(),
        "host": LOOPBACK,
        "port": topology.server_port,
        # The repository ships no MEF product schemas (they are MEF's, and ../shared is not available to users),
        # so the sandbox seller accepts configurations of product types it has no schema for, unchecked. A real
        # seller points product_schema_dir at MEF's productSchema tree instead.
        "accept_unknown_product_types": True,
        # Cut checkpoints often so the buyer agents have something to verify and cosign within the run.
        "checkpoints": {"every_leaves": 25, "every_seconds": checkpoint_seconds},
        "notify": {"first_backoff_seconds": 0.2, "max_backoff_seconds": 2.0},
        "ledger": topology.ledger,
        "tokens": tokens,
        "bilaterals": [{"buyer_id": buyer, "seller_id": seller} for buyer, seller in topology.bilaterals()],
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list) and all(not isinstance(item, dict) for item in value):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def write_toml(document: dict[str, Any], path: Path) -> None:
    """A small TOML writer for the settings shapes above (scalars, tables, arrays of tables); the standard library
    reads TOML but does not write it, and the project does not depend on a writer."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in document.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines.append(f"\n[{key}]")
        lines.extend(f"{name} = {_toml_value(item)}" for name, item in table.items())
    for key, items in arrays:
        for item in items:
            lines.append(f"\n[[{key}]]")
            lines.extend(f"{name} = {_toml_value(entry)}" for name, entry in item.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)  # it holds the bearer tokens
