"""Running a scenario through the public APIs, as the buyers' and sellers' OSS would.

Every call is HTTP with the acting party's token: buyers use Product Ordering, Product Inventory and Smart
Bilateral; sellers use Seller Fulfilment for their actions. Nothing reaches into the server's database. Steps
that need an API this server does not offer yet (it is not in the spec the server serves) are reported as
*waiting*, with the path they need, and the figures they would produce stay unmeasured.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from sonata_dlt import base_paths
from sonata_dlt.client.bundle import export_bundle, verify_bundle
from sonata_dlt.client.sonata import SonataClient
from sonata_dlt.client.trust_store import TrustStore
from sonata_dlt.client.verifier import Verifier, VerifierOptions
from sonata_dlt.errors import SonataDltError, VerificationError
from sonata_dlt.sandbox import billing, documents
from sonata_dlt.sandbox import scenario as model
from sonata_dlt.sandbox.http import ApiError, call
from sonata_dlt.sandbox.narration import Narrator
from sonata_dlt.sandbox.run_context import IssuedBill
from sonata_dlt.sandbox.topology import Identity, Topology
from sonata_dlt.sandbox.verification import full_verification, ledger_lookup
from sonata_dlt.signing.keys import SigningKey

ORDERING = base_paths.PRODUCT_ORDERING
FULFIL = base_paths.SELLER_FULFILMENT
INVENTORY = base_paths.PRODUCT_INVENTORY
BILLING = base_paths.CUSTOMER_BILL
BILATERAL = base_paths.SMART_BILATERAL

# Paths of the Smart Bilateral billing section the billing steps need.
BILLING_PATHS = {"bill": "/billingRun", "dispute": "/dispute", "settle": "/settlement"}


class Waiting(Exception):
    """The step needs an API that this server does not serve yet."""


@dataclass
class PlacedOrder:
    buyer: str
    seller: str
    order_id: str
    external_id: str
    kind: str
    bandwidth_mbps: int
    site: str
    product_id: str | None = None
    state: str = "acknowledged"


@dataclass
class Run:
    scenario: model.Scenario
    topology: Topology
    http: aiohttp.ClientSession
    narrator: Narrator
    scale: int = 1
    groups: dict[str, list[PlacedOrder]] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    seller_keys: dict[str, SigningKey] = field(default_factory=dict)
    served_paths: set[str] = field(default_factory=set)
    work_dir: Path | None = None  # where the sellers' verifier state and exported bundles are kept
    ledger: dict[str, Any] = field(default_factory=dict)  # the server's ledger settings (backend, options)
    reconciliations: dict[tuple[str, str], str] = field(default_factory=dict)  # (buyer, seller) -> latest id
    bills: dict[tuple[str, str], IssuedBill] = field(default_factory=dict)  # (buyer, seller) -> its bill

    # --- plumbing --------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        who: Identity,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        return await call(
            self.http, method, self.topology.server_url + path, who, params=params, json_body=body, expect=expect
        )

    def _buyer(self, order: PlacedOrder) -> tuple[Identity, dict[str, str]]:
        return self.topology.buyer(order.buyer), {"sellerId": order.seller}

    def _seller(self, order: PlacedOrder) -> tuple[Identity, dict[str, str]]:
        # The Seller Fulfilment API addresses orders by id alone: the seller's token already picks its side.
        return self.topology.seller(order.seller), {}

    async def _each(self, label: str, orders: list[PlacedOrder], action: Any) -> None:
        """Run ``action`` on every order of a group, a few at a time, with progress for large groups."""
        semaphore = asyncio.Semaphore(8)
        done = 0

        async def one(order: PlacedOrder) -> None:
            nonlocal done
            async with semaphore:
                await action(order)
            done += 1
            self.narrator.progress(label, done, len(orders))

        await asyncio.gather(*(one(order) for order in orders))

    async def load_served_paths(self) -> None:
        spec = await self.request("GET", f"{BILATERAL}/openapi.json", self.topology.buyer(self.scenario.operators[0]))
        self.served_paths = set(spec.get("paths", {}))

    # --- steps -----------------------------------------------------------------------------------------------

    async def agreement(self, step: model.AgreementStep) -> str:
        buyer, seller = self.topology.buyer(step.buyer), self.topology.seller(step.seller)
        body = {
            "agreementId": step.agreement_id,
            "effectiveFrom": _iso(self.scenario.period.start),
            "terms": step.terms,
        }
        proposed = await self.request(
            "POST", f"{BILATERAL}/agreement", buyer, params={"sellerId": step.seller}, body=body
        )
        await self.request(
            "POST", f"{BILATERAL}/agreement/{proposed['id']}/approve", buyer, params={"sellerId": step.seller}
        )
        approved = await self.request(
            "POST", f"{BILATERAL}/agreement/{proposed['id']}/approve", seller, params={"buyerId": step.buyer}
        )
        self.counters["agreements"] += 1
        return f"{step.agreement_id} v{approved['version']} {approved['state']} ({step.buyer} buys from {step.seller})"

    async def order(self, step: model.OrderStep) -> str:
        count = step.count * self.scale
        placed: list[PlacedOrder] = []
        buyer = self.topology.buyer(step.buyer)

        async def place(index: int) -> None:
            external = f"{step.ref}-{index + 1}"
            body = documents.add_order(step.buyer, external, step.product, step.bandwidth_mbps, step.site)
            created = await self.request(
                "POST", f"{ORDERING}/productOrder", buyer, params={"sellerId": step.seller}, body=body
            )
            placed.append(
                PlacedOrder(
                    step.buyer,
                    step.seller,
                    created["id"],
                    external,
                    step.product,
                    step.bandwidth_mbps,
                    step.site,
                    state=created["state"],
                )
            )
            self.narrator.progress(f"ordering {step.ref}", len(placed), count)

        semaphore = asyncio.Semaphore(8)

        async def bounded(index: int) -> None:
            async with semaphore:
                await place(index)

        await asyncio.gather(*(bounded(i) for i in range(count)))
        self.groups[step.ref] = sorted(placed, key=lambda o: o.external_id)
        self.counters["orders"] += count
        return f"{count} x {step.product} {step.bandwidth_mbps} Mbps, {step.buyer} -> {step.seller} ({step.ref})"

    async def accept(self, ref: str) -> str:
        async def one(order: PlacedOrder) -> None:
            seller, scope = self._seller(order)
            await self.request("POST", f"{FULFIL}/productOrder/{order.order_id}/accept", seller, params=scope, body={})

        await self._each(f"accepting {ref}", self.groups[ref], one)
        return f"seller accepted {len(self.groups[ref])} order(s) of {ref}"

    async def complete(self, ref: str) -> str:
        async def one(order: PlacedOrder) -> None:
            seller, scope = self._seller(order)
            await self.request(
                "POST", f"{FULFIL}/productOrder/{order.order_id}/item/1/complete", seller, params=scope, body={}
            )
            buyer, bscope = self._buyer(order)
            fetched = await self.request("GET", f"{ORDERING}/productOrder/{order.order_id}", buyer, params=bscope)
            order.state = fetched["state"]
            order.product_id = (fetched["productOrderItem"][0].get("product") or {}).get("id") or order.product_id

        await self._each(f"completing {ref}", self.groups[ref], one)
        return f"seller completed {ref}: {', '.join(sorted({o.state for o in self.groups[ref]}))}"

    async def reject(self, step: model.RejectStep) -> str:
        async def one(order: PlacedOrder) -> None:
            seller, scope = self._seller(order)
            answer = await self.request(
                "POST",
                f"{FULFIL}/productOrder/{order.order_id}/reject",
                seller,
                params=scope,
                body={"reason": step.reason},
            )
            order.state = answer["state"]

        await self._each(f"rejecting {step.ref}", self.groups[step.ref], one)
        return f"seller rejected {step.ref}: {step.reason}"

    async def cancel(self, step: model.CancelStep) -> str:
        async def one(order: PlacedOrder) -> None:
            buyer, bscope = self._buyer(order)
            body = {
                "productOrder": {"productOrderId": order.order_id},
                "cancellationReason": step.reason,
                "cancellationReasonType": "commercial",
                "relatedContactInformation": [documents.contact(order.buyer)],
            }
            cancel = await self.request("POST", f"{ORDERING}/cancelProductOrder", buyer, params=bscope, body=body)
            seller, scope = self._seller(order)
            decision: dict[str, Any] = {"accept": step.seller_accepts}
            if not step.seller_accepts:
                decision["reason"] = "work already done"
            await self.request(
                "POST", f"{FULFIL}/cancelProductOrder/{cancel['id']}/decision", seller, params=scope, body=decision
            )
            fetched = await self.request("GET", f"{ORDERING}/productOrder/{order.order_id}", buyer, params=bscope)
            order.state = fetched["state"]

        await self._each(f"cancelling {step.ref}", self.groups[step.ref], one)
        return f"buyer cancelled {step.ref}; order state {self.groups[step.ref][0].state}"

    async def charge(self, step: model.ChargeStep) -> str:
        due = _iso(datetime.now(UTC) + timedelta(days=5))

        async def one(order: PlacedOrder) -> None:
            seller, scope = self._seller(order)
            body = {
                "responseDueDate": due,
                "chargeItem": [
                    {
                        "id": "1",
                        "activityType": "new",
                        "blocking": True,
                        "priceCategory": "construction",
                        "priceType": "nonRecurring",
                        "price": {"dutyFreeAmount": {"unit": step.currency, "value": step.amount}},
                    }
                ],
            }
            raised = await self.request(
                "POST", f"{FULFIL}/productOrder/{order.order_id}/item/1/charge", seller, params=scope, body=body
            )
            buyer, bscope = self._buyer(order)
            indicator = "accepted" if step.answer == "accept" else "rejected"
            await self.request(
                "PATCH",
                f"{ORDERING}/charge/{raised['id']}",
                buyer,
                params=bscope,
                body={"chargeItem": [{"id": "1", "acceptanceIndicator": indicator}]},
            )
            fetched = await self.request("GET", f"{ORDERING}/productOrder/{order.order_id}", buyer, params=bscope)
            order.state = fetched["state"]

        await self._each(f"charging {step.ref}", self.groups[step.ref], one)
        self.counters[f"charges.{'accepted' if step.answer == 'accept' else 'declined'}"] += len(self.groups[step.ref])
        return (
            f"seller raised {step.amount:g} {step.currency} on {step.ref}; buyer {step.answer.rstrip('e')}ed; "
            f"order state {self.groups[step.ref][0].state}"
        )

    async def _change(self, order: PlacedOrder, body: dict[str, Any]) -> str:
        buyer, bscope = self._buyer(order)
        created = await self.request("POST", f"{ORDERING}/productOrder", buyer, params=bscope, body=body)
        seller, scope = self._seller(order)
        await self.request("POST", f"{FULFIL}/productOrder/{created['id']}/accept", seller, params=scope, body={})
        await self.request(
            "POST", f"{FULFIL}/productOrder/{created['id']}/item/1/complete", seller, params=scope, body={}
        )
        fetched = await self.request("GET", f"{ORDERING}/productOrder/{created['id']}", buyer, params=bscope)
        self.counters["orders"] += 1
        return str(fetched["state"])

    async def modify(self, step: model.ModifyStep) -> str:
        states: list[str] = []

        async def one(order: PlacedOrder) -> None:
            if order.product_id is None:
                raise RuntimeError(f"{order.external_id} has no product to modify (was it completed?)")
            config = documents.configuration(order.kind, step.bandwidth_mbps, order.external_id)  # type: ignore[arg-type]
            body = documents.change_order(
                order.buyer, f"{order.external_id}-upgrade", "modify", order.product_id, config, order.kind
            )
            states.append(await self._change(order, body))
            order.bandwidth_mbps = step.bandwidth_mbps

        await self._each(f"upgrading {step.ref}", self.groups[step.ref], one)
        return f"{step.ref} upgraded to {step.bandwidth_mbps} Mbps (change orders {', '.join(sorted(set(states)))})"

    async def terminate(self, step: model.TerminateStep) -> str:
        states: list[str] = []

        async def one(order: PlacedOrder) -> None:
            if order.product_id is None:
                raise RuntimeError(f"{order.external_id} has no product to terminate")
            body = documents.change_order(order.buyer, f"{order.external_id}-cease", "delete", order.product_id)
            states.append(await self._change(order, body))

        await self._each(f"terminating {step.ref}", self.groups[step.ref], one)
        return f"{step.ref} terminated (disconnect orders {', '.join(sorted(set(states)))})"

    async def reconcile(self, step: model.ReconcileStep) -> str:
        buyer = self.topology.buyer(step.buyer)
        start, end = _iso(self.scenario.period.start), _iso(self.scenario.period.end)
        products = await self.request(
            "GET", f"{INVENTORY}/product", buyer, params={"sellerId": step.seller, "limit": 1000}
        )
        ordered = {o.product_id: o.bandwidth_mbps for orders in self.groups.values() for o in orders if o.product_id}
        rows: dict[str, dict[str, Any]] = {}
        for listed in products:
            product = listed
            if listed.get("status") == "terminated":  # the list leaves terminationDate out: read the product
                product = await self.request(
                    "GET", f"{INVENTORY}/product/{listed['id']}", buyer, params={"sellerId": step.seller}
                )
            ended = product.get("terminationDate")
            # The buyer reports the services in force at some instant of the period: not those that ended before.
            if ended is None or _parse(str(ended)) > self.scenario.period.start:
                rows[str(product["id"])] = _buyer_row(product, ordered.get(str(product["id"])))
        by_group = {ref: [o.product_id for o in orders if o.product_id] for ref, orders in self.groups.items()}
        for seeded in step.discrepancies:
            for product_id in by_group.get(seeded.ref, []):
                if product_id not in rows:
                    continue
                if seeded.field == "omit":
                    del rows[product_id]
                else:
                    rows[product_id][seeded.field] = seeded.value
        report_rows = [{k: v for k, v in row.items() if v not in (None, "")} for row in rows.values()]
        report_rows += [dict(extra) for extra in step.extra_rows]
        report = await self.request(
            "POST",
            f"{BILATERAL}/inventoryReport",
            buyer,
            params={"sellerId": step.seller},
            body={"periodStart": start, "periodEnd": end, "rows": report_rows},
        )
        result = await self.request(
            "POST",
            f"{BILATERAL}/reconciliation",
            buyer,
            params={"sellerId": step.seller},
            body={"buyerReportId": report["id"], "sellerSource": "productInventory"},
        )
        summary = result["summary"]
        self.reconciliations[(step.buyer, step.seller)] = str(result["id"])
        for key in ("matched", "partial", "buyerOnly", "sellerOnly"):
            self.figures[f"reconciliation.{key}"] = self.figures.get(f"reconciliation.{key}", 0) + summary.get(key, 0)
        self.figures["reconciliation.mismatched"] = (  # no counterpart on the other side, either way
            self.figures["reconciliation.buyerOnly"] + self.figures["reconciliation.sellerOnly"]
        )
        self.counters["reconciliations"] += 1
        return (
            f"{step.buyer}/{step.seller}: {summary.get('matched', 0)} matched, {summary.get('partial', 0)} "
            f"partial, {summary.get('buyerOnly', 0)} buyer-only, {summary.get('sellerOnly', 0)} seller-only"
        )

    def _needs(self, step_name: str) -> None:
        path = BILLING_PATHS[step_name]
        if path not in self.served_paths:
            raise Waiting(f"needs POST {BILATERAL}{path}, not in the server's smartBilateral spec yet")

    def period_body(self) -> dict[str, str]:
        return {"periodStart": _iso(self.scenario.period.start), "periodEnd": _iso(self.scenario.period.end)}

    async def bill(self, step: model.BillStep) -> str:
        self._needs("bill")
        return await billing.bill(self, step)

    async def dispute(self, step: model.DisputeStep) -> str:
        self._needs("dispute")
        return await billing.dispute(self, step)

    async def settle(self, step: model.SettleStep) -> str:
        self._needs("settle")
        return await billing.settle(self, step)

    async def bundle(self, step: model.BundleStep) -> str:
        """Export the audit bundle of the bilateral's bill as its buyer, then check the file offline."""
        issued = self.bills.get((step.buyer, step.seller))
        if issued is None:
            raise Waiting(f"needs a bill of {step.seller} to {step.buyer}: the bill step has not produced one")
        buyer = self.topology.buyer(step.buyer)
        async with SonataClient(self.topology.server_url, buyer.token, seller_id=step.seller) as client:
            exported = await export_bundle(client, "customerBill", issued.bill_id)
        path = (self.work_dir or Path(".")) / f"bundle-{issued.bill_id}.json"
        path.write_text(json.dumps(exported, indent=2), encoding="utf-8")
        # What an auditor does with the file alone: no server, no ledger (sonata-dlt bundle verify --offline).
        report = verify_bundle(json.loads(path.read_text(encoding="utf-8")), offline=True)
        self.figures["bundle.verified"] = self.figures.get("bundle.verified", 0) + 1
        self.figures["bundle.resources"] = len(exported["resources"])
        return (
            f"bill {issued.bill_id} with {len(exported['resources']) - 1} item(s) exported to {path.name} and "
            f"verified offline against endorsed checkpoint {exported['checkpoint']['treeSize']}: "
            f"{len(report.proven)} proven, {len(report.not_proven)} not checked offline"
        )

    def verifier(self, identity: Identity, counterparty: str, client: SonataClient, key: SigningKey) -> Verifier:
        """The client verifier as one side of a bilateral, with its own trust store in the work directory."""
        state = (self.work_dir or Path(".")) / f"verifier-{identity.party_id}-as-{identity.role.value}.sqlite"
        backend, options = ledger_lookup(self.ledger)
        return Verifier(
            client,
            key,
            TrustStore.open(state.with_stem(f"{state.stem}-{counterparty}")),
            ledger_backend=backend,
            ledger_options=options,
            options=VerifierOptions(cosign=True, anchor_wait_seconds=60.0),
        )

    async def cosign_as_sellers(self) -> None:
        """The sellers' OSS verify and cosign too (``sonata-dlt verify``); a checkpoint both sides cosigned is
        endorsed."""
        for buyer_id, seller_id in self.topology.bilaterals():
            seller = self.topology.seller(seller_id)
            async with SonataClient(self.topology.server_url, seller.token, buyer_id=buyer_id) as client:
                verifier = self.verifier(seller, buyer_id, client, self.seller_keys[seller_id])
                try:
                    await verifier.run()
                finally:
                    verifier.store.close()
                    if verifier.ledger is not None:
                        verifier.ledger.close()

    async def verify(self, step: model.VerifyStep, agent_urls: list[str]) -> str:
        for buyer_id, seller_id in self.topology.bilaterals():
            await self.request(
                "POST",
                f"{base_paths.VERIFIABLE_LOG}/checkpoint",
                self.topology.seller(seller_id),
                params={"buyerId": buyer_id},
                expect=(200, 201),
            )
        await self.cosign_as_sellers()
        for url in agent_urls:  # the buyers' agents check their copies against the new checkpoints and cosign
            async with self.http.post(f"{url}/agent/verify") as response:
                response.raise_for_status()
        report = await full_verification(self, step.anchor_wait_seconds)
        self.figures.update(report.figures)
        if report.problems:
            raise VerificationError("; ".join(report.problems))
        return report.narrative


def _buyer_row(product: dict[str, Any], bandwidth_mbps: int | None) -> dict[str, Any]:
    """The buyer's own view of a product, in inventory-report columns (what its OSS would export): the bandwidth
    is the one it ordered (its own record, not read back from the seller)."""
    configuration = product.get("productConfiguration") or {}
    sites = [site.get("id", "") for site in product.get("relatedSite", []) if isinstance(site, dict)]
    return {
        "serviceId": product["id"],
        "buyerReference": product.get("externalId"),
        "productType": configuration.get("@type"),
        "bandwidthMbps": bandwidth_mbps,
        "siteA": sites[0] if sites else None,
        "status": product.get("status"),
        "startDate": product.get("startDate"),
        "endDate": product.get("terminationDate"),
    }


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def run_scenario(run: Run, agent_urls: list[str]) -> None:
    """Execute every step in order; a failed step is reported and the run goes on where later steps can."""
    await run.load_served_paths()
    for index, step in enumerate(run.scenario.steps, start=1):
        started = time.monotonic()
        try:
            detail = await _dispatch(run, step, agent_urls)
        except Waiting as exc:
            run.narrator.step(index, step.do, "waiting", str(exc), started)
        except (ApiError, SonataDltError, RuntimeError, aiohttp.ClientError) as exc:
            run.narrator.step(index, step.do, "failed", str(exc), started)
        except (KeyError, ValueError, TypeError) as exc:  # an answer not shaped as the spec says
            run.narrator.step(index, step.do, "failed", f"unexpected answer: {type(exc).__name__}: {exc}", started)
        else:
            run.narrator.step(index, step.do, "ok", detail, started)


async def _dispatch(run: Run, step: Any, agent_urls: list[str]) -> str:
    if isinstance(step, model.AgreementStep):
        return await run.agreement(step)
    if isinstance(step, model.OrderStep):
        return await run.order(step)
    if isinstance(step, model.RefStep):
        return await (run.accept(step.ref) if step.do == "accept" else run.complete(step.ref))
    handlers: dict[type[Any], Any] = {
        model.RejectStep: run.reject,
        model.CancelStep: run.cancel,
        model.ChargeStep: run.charge,
        model.ModifyStep: run.modify,
        model.TerminateStep: run.terminate,
        model.ReconcileStep: run.reconcile,
        model.BillStep: run.bill,
        model.DisputeStep: run.dispute,
        model.SettleStep: run.settle,
        model.BundleStep: run.bundle,
    }
    if isinstance(step, model.VerifyStep):
        return await run.verify(step, agent_urls)
    result: str = await handlers[type(step)](step)
    return result
