"""The billing steps of a scenario: billing runs, disputes, settlement with netting, through the public APIs.

- ``bill``: the seller of a bilateral runs billing for the scenario's period (``POST /billingRun``) and issues the
  bill (``paymentDue``); the buyer reads it and its items through Customer Bill Management.
- ``dispute``: a dispute on each reconciliation record or bill item of an order group's products (or on a whole
  bill), raised, answered with a proposal and accepted or rejected by the other side (``/dispute``).
- ``settle``: one statement netting what the two operators owe each other in both mirror bilaterals
  (``POST /settlement``), confirmed by both, the net paid by the payer; then every bill of the period must read
  ``settled``.

The figures (``billing.<buyer>/<seller>.amountDue`` ...) are read from what the APIs answer, never computed here.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sonata_dlt import base_paths
from sonata_dlt.sandbox import scenario as model
from sonata_dlt.sandbox.run_context import IssuedBill, RunContext
from sonata_dlt.sandbox.topology import Identity

BILLING = base_paths.CUSTOMER_BILL
BILATERAL = base_paths.SMART_BILATERAL


def _value(money: Any) -> float:
    return float(Decimal(str(money["value"])))


def _side(run: RunContext, step: model.Pair, role: str) -> tuple[Identity, dict[str, str]]:
    """The identity acting as the buyer or the seller of the step's bilateral, with its bilateral scope."""
    if role == "buyer":
        return run.topology.buyer(step.buyer), {"sellerId": step.seller}
    return run.topology.seller(step.seller), {"buyerId": step.buyer}


def _add(run: RunContext, name: str, value: float) -> None:
    run.figures[name] = run.figures.get(name, 0) + value


async def bill(run: RunContext, step: model.BillStep) -> str:
    seller, scope = _side(run, step, "seller")
    made = await run.request("POST", f"{BILATERAL}/billingRun", seller, params=scope, body=run.period_body())
    issued = await run.request("POST", f"{BILATERAL}/billingRun/{made['id']}/issue", seller)
    buyer, _ = _side(run, step, "buyer")
    bill_id = str(made["customerBill"]["id"])
    document = await run.request("GET", f"{BILLING}/customerBill/{bill_id}", buyer)
    items = [
        await run.request("GET", f"{BILLING}/customerBillItem/{ref['id']}", buyer)
        for ref in document.get("customerBillItem", [])
    ]
    currency = str(document["amountDue"]["unit"])
    run.bills[(step.buyer, step.seller)] = IssuedBill(str(made["id"]), bill_id, currency, items)
    name = f"billing.{step.buyer}/{step.seller}"
    run.figures[f"{name}.taxExcluded"] = _value(document["taxExcludedAmount"])
    run.figures[f"{name}.amountDue"] = _value(document["amountDue"])
    run.figures[f"{name}.items"] = len(items)
    run.figures[f"{name}.held"] = len(made.get("heldServices", []))
    _add(run, "billing.amount", _value(document["amountDue"]))
    _add(run, "billing.bills", 1)
    return (
        f"{step.seller} billed {step.buyer}: bill {bill_id} {document['state']} (run {issued['state']}), "
        f"{len(items)} item(s), {len(made.get('heldServices', []))} service(s) held, "
        f"{_value(document['taxExcludedAmount']):,.2f} + tax = {_value(document['amountDue']):,.2f} {currency}"
    )


async def _targets(run: RunContext, step: model.DisputeStep) -> list[dict[str, Any]]:
    """The Dispute_Create bodies of the step: one per record or item of the group's products, or the bill."""
    if step.target == "customerBill":
        return [{"targetType": "customerBill", "targetId": run.bills[(step.buyer, step.seller)].bill_id}]
    assert step.ref is not None  # checked by the model
    products = [order.product_id for order in run.groups[step.ref] if order.product_id]
    if not products:
        raise RuntimeError(f"{step.ref} has no products to dispute")
    if step.target == "customerBillItem":
        issued = run.bills.get((step.buyer, step.seller))
        if issued is None:
            raise RuntimeError(f"no bill of {step.seller} to {step.buyer} yet: bill before disputing its items")
        by_product = {str((item.get("product") or {}).get("id")): str(item["id"]) for item in issued.items}
        missing = [pid for pid in products if pid not in by_product]
        if missing:
            raise RuntimeError(f"the bill {issued.bill_id} has no item for {', '.join(missing)}")
        return [{"targetType": "customerBillItem", "targetId": by_product[pid]} for pid in products]
    reconciliation_id = run.reconciliations.get((step.buyer, step.seller))
    if reconciliation_id is None:
        raise RuntimeError(f"{step.buyer}/{step.seller} has no reconciliation to dispute a record of")
    buyer, scope = _side(run, step, "buyer")
    records = await run.request(
        "GET", f"{BILATERAL}/reconciliation/{reconciliation_id}/record", buyer, params=scope | {"limit": 1000}
    )
    keys = {str(record["serviceKey"]) for record in records}
    # The agreement's key is serviceId, case-insensitive: a record's serviceKey is the product id in lower case.
    missing = [pid for pid in products if pid.lower() not in keys]
    if missing:
        raise RuntimeError(f"reconciliation {reconciliation_id} has no record for {', '.join(missing)}")
    return [
        {"targetType": "reconciliationRecord", "reconciliationId": reconciliation_id, "targetId": pid.lower()}
        for pid in products
    ]


async def dispute(run: RunContext, step: model.DisputeStep) -> str:
    raiser, raiser_scope = _side(run, step, step.raised_by)
    proposer, _ = _side(run, step, step.proposer)
    answerer, _ = _side(run, step, "buyer" if step.proposer == "seller" else "seller")
    proposal: dict[str, Any] = {"outcome": step.proposal.outcome, "description": step.proposal.description}
    states: Counter[str] = Counter()
    adjusted = 0.0
    for target in await _targets(run, step):
        raised = await run.request(
            "POST", f"{BILATERAL}/dispute", raiser, params=raiser_scope, body=target | {"reason": step.reason}
        )
        if step.proposal.amount is not None:
            currency = (raised.get("heldAmount") or {}).get("unit") or _agreement_currency(run, step)
            proposal["amount"] = {"unit": currency, "value": step.proposal.amount}
        await run.request("POST", f"{BILATERAL}/dispute/{raised['id']}/proposeResolution", proposer, body=proposal)
        answered = await run.request("POST", f"{BILATERAL}/dispute/{raised['id']}/{step.answer}", answerer)
        states[str(answered["state"])] += 1
        if "adjustment" in answered:
            # The dispute names its adjustment; its amount is the accepted proposal (tax excluded, minor units).
            accepted = answered["proposals"][-1]
            sign = -1 if accepted["outcome"] == "credit" else 1
            adjusted += sign * int(accepted["amountMinor"]) / 100
        if target["targetType"] == "customerBillItem":
            buyer, _ = _side(run, step, "buyer")
            item = await run.request("GET", f"{BILLING}/customerBillItem/{target['targetId']}", buyer)
            states[f"item {item['state']}"] += 1
    total = sum(v for k, v in states.items() if not k.startswith("item "))
    _add(run, "disputes.raised", total)
    _add(run, "disputes.resolved", states["resolved"])
    _add(run, "disputes.adjustments", adjusted)
    outcome = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    money = f"; adjustments {adjusted:+,.2f} for the next bill" if adjusted else ""
    who = step.buyer if step.raised_by == "buyer" else step.seller
    return f"{step.raised_by} {who} disputed {total} {step.target}(s) of {step.ref or 'the bill'}: {outcome}{money}"


def _agreement_currency(run: RunContext, step: model.Pair) -> str:
    issued = run.bills.get((step.buyer, step.seller))
    return issued.currency if issued is not None else "EUR"


async def settle(run: RunContext, step: model.SettleStep) -> str:
    first, second = step.between
    # The statement is proposed by one operator (as the seller of its bilateral), confirmed by both.
    proposer = run.topology.seller(first)
    body = {"counterpartyId": second} | run.period_body()
    statement = await run.request("POST", f"{BILATERAL}/settlement", proposer, body=body)
    await run.request("POST", f"{BILATERAL}/settlement/{statement['id']}/confirm", run.topology.buyer(first))
    confirmed = await run.request(
        "POST", f"{BILATERAL}/settlement/{statement['id']}/confirm", run.topology.seller(second)
    )
    if confirmed["state"] != "confirmed":
        raise RuntimeError(f"settlement {statement['id']} is {confirmed['state']} after both confirmations")
    paid = confirmed
    lines = []
    for line in confirmed["lines"]:
        net = _value(line["netAmount"])
        currency = str(line["netAmount"]["unit"])
        payer = line.get("payer")
        run.figures["settlement.aOwesB"] = _value(line["aOwesB"])
        run.figures["settlement.bOwesA"] = _value(line["bOwesA"])
        run.figures["settlement.net"] = net
        if payer:
            payee = second if payer == first else first
            run.figures[f"settlement.{payer}->{payee}"] = net
            paid = await run.request(
                "POST",
                f"{BILATERAL}/settlement/{statement['id']}/payment",
                run.topology.buyer(str(payer)),
                body={
                    "amount": line["netAmount"],
                    "paymentMethod": "wireTransfer",
                    "paymentDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
            lines.append(f"{payer} pays {payee} {net:,.2f} {currency}")
        else:
            lines.append(f"nets to zero in {currency}")
    settled = 0
    for (buyer_id, seller_id), issued in run.bills.items():
        if {buyer_id, seller_id} != {first, second}:
            continue
        document = await run.request("GET", f"{BILLING}/customerBill/{issued.bill_id}", run.topology.buyer(buyer_id))
        settled += document["state"] == "settled"
    run.figures["settlement.billsSettled"] = run.figures.get("settlement.billsSettled", 0) + settled
    run.counters["settlements"] += 1
    return f"statement {statement['id']} {paid['state']}: {'; '.join(lines)}; {settled} bill(s) settled"
