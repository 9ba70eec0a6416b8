"""The end of the month: a full verification of every bilateral's log, and the figures the summary prints.

For each bilateral, as its buyer but with a verifier that remembers nothing (a fresh trust store, as an auditor
starting from the keys would), the client verifier (``sonata_dlt.client.verifier``) replays every leaf and
recomputes the root of every checkpoint, checks the host signature and every cosignature against the registered
keys, every anchor receipt (looked up on the chain for ``ethereum``; signed by the journal key for ``local``) and
that every resource the Sonata APIs serve hashes to its latest leaf. It does not cosign: the agents did.

Figures come from the public APIs too: orders by state, products by status, checkpoints endorsed, anchors.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonata_dlt import base_paths
from sonata_dlt.client.sonata import SonataClient
from sonata_dlt.client.trust_store import TrustStore
from sonata_dlt.client.verifier import VerificationFailed, Verifier, VerifierOptions
from sonata_dlt.sandbox.http import call
from sonata_dlt.sandbox.run_context import RunContext
from sonata_dlt.signing.keys import SigningKey

PROOFS = base_paths.VERIFIABLE_LOG
ORDERING = base_paths.PRODUCT_ORDERING
INVENTORY = base_paths.PRODUCT_INVENTORY
PAGE = 1000


@dataclass
class Report:
    figures: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def narrative(self) -> str:
        return "; ".join(self.lines)


async def _all(run: RunContext, path: str, who: Any, params: dict[str, Any]) -> list[Any]:
    items: list[Any] = []
    while True:
        page = await call(
            run.http, "GET", run.topology.server_url + path, who, params=params | {"offset": len(items), "limit": PAGE}
        )
        items.extend(page)
        if len(page) < PAGE:
            return items


async def total(run: RunContext, path: str, who: Any, params: dict[str, Any]) -> int:
    async with run.http.get(
        run.topology.server_url + path,
        headers=who.headers,
        params={k: str(v) for k, v in (params | {"limit": 1}).items()},
    ) as response:
        response.raise_for_status()
        return int(response.headers.get("X-Total-Count", "0"))


def ledger_lookup(ledger: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Where a verifier looks anchors up: on the chain for ``ethereum``; ``local`` receipts are checked offline
    with the journal (host) key, as a party without access to the server's journal file would."""
    if ledger.get("backend") == "ethereum":
        return "ethereum", dict(ledger.get("options") or {})
    return None, {}


async def _verify_bilateral(run: RunContext, buyer_id: str, seller_id: str, wait: float, report: Report) -> None:
    buyer = run.topology.buyer(buyer_id)
    backend, options = ledger_lookup(run.ledger)
    with (
        tempfile.TemporaryDirectory(prefix="sonata-audit-") as scratch,
        TrustStore.open(Path(scratch) / "state.sqlite") as store,
    ):
        async with SonataClient(run.topology.server_url, buyer.token, seller_id=seller_id) as client:
            verifier = Verifier(
                client,
                SigningKey.generate("auditor"),  # never used: this run does not cosign
                store,
                ledger_backend=backend,
                ledger_options=options,
                options=VerifierOptions(cosign=False, anchor_wait_seconds=wait),
            )
            try:
                result = await verifier.run()
            except VerificationFailed as exc:
                report.problems.extend(f"{buyer_id}->{seller_id}: {problem}" for problem in exc.report.problems)
                return
            finally:
                if verifier.ledger is not None:
                    verifier.ledger.close()
    report.lines.append(f"{buyer_id}->{seller_id}: size {result.tree_size}, {'; '.join(result.passed)}")
    report.figures["verification.leaves"] = report.figures.get("verification.leaves", 0) + result.tree_size


async def full_verification(run: RunContext, anchor_wait: float) -> Report:
    report = Report()
    for buyer_id, seller_id in run.topology.bilaterals():
        before = len(report.problems)
        await _verify_bilateral(run, buyer_id, seller_id, anchor_wait, report)
        report.figures["verification.failures"] = report.figures.get("verification.failures", 0) + (
            len(report.problems) > before
        )
    failures = int(report.figures.get("verification.failures", 0))
    report.figures["verification.bilaterals"] = len(run.topology.bilaterals()) - failures
    return report


async def collect_figures(run: RunContext) -> dict[str, float]:
    """Orders, products, checkpoints and anchors, across every bilateral, read through the public APIs."""
    figures: dict[str, float] = {}
    orders: Counter[str] = Counter()
    products: Counter[str] = Counter()
    endorsed = anchors = checkpoints = 0
    for buyer_id, seller_id in run.topology.bilaterals():
        buyer, scope = run.topology.buyer(buyer_id), {"sellerId": seller_id}
        orders.update(o["state"] for o in await _all(run, f"{ORDERING}/productOrder", buyer, scope))
        products.update(p["status"] for p in await _all(run, f"{INVENTORY}/product", buyer, scope))
        checkpoints += await total(run, f"{PROOFS}/checkpoint", buyer, scope)
        endorsed += await total(run, f"{PROOFS}/checkpoint", buyer, scope | {"endorsed": "true"})
        anchors += await total(run, f"{PROOFS}/anchorReceipt", buyer, scope)
    figures["orders.total"] = sum(orders.values())
    for state, count in orders.items():
        figures[f"orders.{state}"] = count
    figures["products.total"] = sum(products.values())
    for status, count in products.items():
        figures[f"products.{status}"] = count
    figures["checkpoints.total"] = checkpoints
    figures["checkpoints.endorsed"] = endorsed
    figures["anchors"] = anchors
    for name in ("charges.accepted", "charges.declined"):
        figures[name] = run.counters[name]
    return figures
