"""Settlement with netting between two operators that buy from each other (a bilateral and its mirror).

A settlement covers the bills of both bilaterals that are ``paymentDue`` and whose billing period lies inside the
settlement period. Only undisputed money counts: a bill contributes its remaining amount minus what unresolved
disputes hold. Per currency, what A owes B and what B owes A are netted (``net_positions``, antisymmetric by
construction); the statement is ``proposed`` until both parties confirm it, then the payer of each currency
records the net payment. When every currency is paid (or nets to zero), each bill gets an ``appliedPayment`` for
the amount settled, its ``remainingAmount`` drops by it, and a bill with nothing left becomes ``settled`` with its
items. The statement is recorded in both bilaterals' logs.
"""

from __future__ import annotations

import copy
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt.bilateral.billing.billing_run import RUN_API, set_bill_state
from sonata_dlt.bilateral.billing.bills import bill_href
from sonata_dlt.bilateral.disputes import held_by_open_disputes
from sonata_dlt.bilateral.rating.engine import Period
from sonata_dlt.bilateral.rating.money import minor_from_wire, minor_units, money
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden, NotFound, Unprocessable
from sonata_dlt.storage.billing import CustomerBill, CustomerBillItem, Settlement
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.verifiable_log import changes
from sonata_dlt.verifiable_log.recording import Change, record_change

PAYMENT_METHODS = ("check", "wireTransfer", "electronic", "cash", "other")


@dataclass(frozen=True)
class Obligation:
    debtor: str
    creditor: str
    currency: str
    amount_minor: int


def net_positions(obligations: Iterable[Obligation]) -> dict[str, dict[str, int]]:
    """Per currency, each party's net position: positive = is owed, negative = owes. Sums to zero per currency.

    Works for any number of parties (multilateral netting); with two it is the bilateral net.
    """
    positions: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for obligation in obligations:
        positions[obligation.currency][obligation.creditor] += obligation.amount_minor
        positions[obligation.currency][obligation.debtor] -= obligation.amount_minor
    return {currency: dict(sorted(parties.items())) for currency, parties in sorted(positions.items())}


def _pair(runtime: Runtime, party: Party, counterparty: str) -> list[BilateralRef]:
    pair = [
        ref
        for ref in runtime.parties.bilaterals
        if {ref.buyer_id, ref.seller_id} == {party.id, counterparty} and ref.buyer_id != ref.seller_id
    ]
    if not pair:
        raise Forbidden(f"{party.id} has no bilateral with {counterparty}", code="accessDenied")
    return sorted(pair, key=lambda ref: ref.seller_id)


def create_settlement(runtime: Runtime, party: Party, counterparty: str, period: Period) -> dict[str, Any]:
    if period.start >= period.end:
        raise Unprocessable.single("invalidValue", "periodEnd must be after periodStart", "/periodEnd")
    pair = _pair(runtime, party, counterparty)
    party_a, party_b = sorted((party.id, counterparty))
    with runtime.db.write() as session:
        open_one = session.exec(
            select(Settlement).where(
                Settlement.party_a == party_a, Settlement.party_b == party_b, col(Settlement.state) != "settled"
            )
        ).first()
        if open_one is not None:
            raise Conflict(f"settlement {open_one.id} between {party_a} and {party_b} is still {open_one.state}")
        included: list[dict[str, Any]] = []
        obligations: list[Obligation] = []
        for ref in pair:
            bills = session.exec(
                select(CustomerBill)
                .where(
                    CustomerBill.bilateral_id == ref.id,
                    CustomerBill.state == "paymentDue",
                    col(CustomerBill.period_start) >= period.start,
                    col(CustomerBill.period_end) <= period.end,
                )
                .order_by(col(CustomerBill.id))
            ).all()
            for bill in bills:
                held = held_by_open_disputes(session, bill.id)
                amount = max(bill.remaining_minor - held, 0)
                included.append(
                    {
                        "id": bill.id,
                        "href": bill_href(bill.id),
                        "buyerId": ref.buyer_id,
                        "sellerId": ref.seller_id,
                        "currency": bill.currency,
                        "includedMinor": amount,
                        "heldMinor": held,
                    }
                )
                obligations.append(Obligation(ref.buyer_id, ref.seller_id, bill.currency, amount))
        if not included:
            raise Unprocessable.single("invalidValue", "no bill in paymentDue between these parties in the period")
        lines = []
        for currency, positions in net_positions(obligations).items():
            exponent = minor_units(currency)
            owed = {
                p: sum(o.amount_minor for o in obligations if o.currency == currency and o.debtor == p)
                for p in (party_a, party_b)
            }
            net_a = positions.get(party_a, 0)
            payer, payee = (party_b, party_a) if net_a > 0 else (party_a, party_b)
            lines.append(
                {
                    "currency": currency,
                    "aOwesB": money(owed[party_a], currency, exponent),
                    "bOwesA": money(owed[party_b], currency, exponent),
                    "payer": payer if net_a else None,
                    "payee": payee if net_a else None,
                    "netAmount": money(abs(net_a), currency, exponent),
                    "netMinor": abs(net_a),
                    "paid": net_a == 0,
                }
            )
        settlement_id = (
            "ST-"
            + hashlib.sha256(
                f"{party_a}\n{party_b}\n{rfc3339(period.start)}\n{rfc3339(period.end)}\n{len(included)}\n"
                f"{rfc3339(utcnow())}".encode()
            ).hexdigest()[:24]
        )
        document: dict[str, Any] = {
            "id": settlement_id,
            "href": f"{RUN_API}/settlement/{settlement_id}",
            "@type": "Settlement",
            "partyA": party_a,
            "partyB": party_b,
            "periodStart": rfc3339(period.start),
            "periodEnd": rfc3339(period.end),
            "state": "proposed",
            "lines": lines,
            "customerBill": included,
            "confirmedBy": [],
            "payments": [],
        }
        home = pair[0]
        row = Settlement(
            id=settlement_id,
            bilateral_id=home.id,
            mirror_bilateral_id=pair[1].id if len(pair) > 1 else None,
            party_a=party_a,
            party_b=party_b,
            state="proposed",
            period_start=period.start,
            period_end=period.end,
        )
        _save(session, runtime, row, document, "proposed", party.actor)
        return document


def net_position(runtime: Runtime, party: Party) -> dict[str, Any]:
    """The party's multilateral net per currency over every bilateral it is in, as buyer or seller: the undisputed
    remaining amounts of ``paymentDue`` bills (what a settlement would net), with the share of each counter-party."""
    refs = [ref for ref in runtime.parties.bilaterals if party.id in (ref.buyer_id, ref.seller_id)]
    if not refs:
        raise Forbidden(f"{party.id} has no bilateral on this server", code="accessDenied")
    obligations: list[Obligation] = []
    with runtime.db.read() as session:
        for ref in refs:
            bills = session.exec(
                select(CustomerBill).where(CustomerBill.bilateral_id == ref.id, CustomerBill.state == "paymentDue")
            ).all()
            for bill in bills:
                amount = max(bill.remaining_minor - held_by_open_disputes(session, bill.id), 0)
                obligations.append(Obligation(ref.buyer_id, ref.seller_id, bill.currency, amount))
    positions = []
    for currency, nets in net_positions(obligations).items():
        exponent = minor_units(currency)
        counterparties: dict[str, int] = defaultdict(int)
        for obligation in obligations:
            if obligation.currency != currency:
                continue
            if obligation.creditor == party.id:
                counterparties[obligation.debtor] += obligation.amount_minor
            elif obligation.debtor == party.id:
                counterparties[obligation.creditor] -= obligation.amount_minor
        positions.append(
            {
                "currency": currency,
                "net": money(nets.get(party.id, 0), currency, exponent),
                "counterparties": [
                    {"partyId": other, "net": money(amount, currency, exponent)}
                    for other, amount in sorted(counterparties.items())
                ],
            }
        )
    return {"@type": "NetPosition", "partyId": party.id, "positions": positions}


def _save(
    session: Session, runtime: Runtime, row: Settlement, document: dict[str, Any], event: str, actor: str
) -> None:
    home = runtime.parties.by_id(row.bilateral_id)
    if home is None:
        raise NotFound(f"bilateral {row.bilateral_id} is not configured")
    row.state = document["state"]
    changes.save(session, home, row, document, resource_type="settlement", event=event, actor=actor)
    if row.mirror_bilateral_id:
        # The statement binds both relationships: the mirror bilateral's log fingerprints it too.
        record_change(
            session,
            row.mirror_bilateral_id,
            Change("settlement", row.id, row.version, event, document),
            actor=actor,
        )


def _load(session: Session, party: Party, settlement_id: str) -> Settlement:
    row = session.get(Settlement, settlement_id)
    if row is None or party.id not in (row.party_a, row.party_b):
        raise NotFound(f"settlement {settlement_id} does not exist")
    return row


def get_settlement(runtime: Runtime, party: Party, settlement_id: str) -> dict[str, Any]:
    with runtime.db.read() as session:
        return _load(session, party, settlement_id).document


def list_settlements(runtime: Runtime, party: Party, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    with runtime.db.read() as session:
        rows = session.exec(
            select(Settlement)
            .where((Settlement.party_a == party.id) | (Settlement.party_b == party.id))
            .order_by(col(Settlement.period_start).desc(), col(Settlement.id))
        ).all()
        return [row.document for row in rows[offset : offset + limit]], len(rows)


def confirm(runtime: Runtime, party: Party, settlement_id: str) -> dict[str, Any]:
    with runtime.db.write() as session:
        row = _load(session, party, settlement_id)
        if row.state != "proposed":
            raise Conflict(f"settlement {row.id} is {row.state}; only a proposed statement is confirmed")
        document = copy.deepcopy(row.document)
        if party.id in document["confirmedBy"]:
            raise Conflict(f"{party.id} has already confirmed settlement {row.id}")
        document["confirmedBy"] = sorted([*document["confirmedBy"], party.id])
        if len(document["confirmedBy"]) == 2:
            document["state"] = "confirmed"
        _save(session, runtime, row, document, "confirmed", party.actor)
        if document["state"] == "confirmed" and all(line["paid"] for line in document["lines"]):
            _apply(session, runtime, row, document, party, method="other", paid_at=utcnow())
        return row.document


def record_payment(
    runtime: Runtime, party: Party, settlement_id: str, currency: str, amount: Any, method: str, paid_at: datetime
) -> dict[str, Any]:
    if method not in PAYMENT_METHODS:
        raise Unprocessable.single("invalidValue", f"paymentMethod must be one of {', '.join(PAYMENT_METHODS)}")
    with runtime.db.write() as session:
        row = _load(session, party, settlement_id)
        if row.state != "confirmed":
            raise Conflict(f"settlement {row.id} is {row.state}; payments follow the confirmation by both parties")
        document = copy.deepcopy(row.document)
        line = next((line for line in document["lines"] if line["currency"] == currency), None)
        if line is None:
            raise Unprocessable.single("invalidValue", f"the statement has no {currency} line", "/amount/unit")
        if line["paid"]:
            raise Conflict(f"the {currency} line of settlement {row.id} is already paid")
        if line["payer"] != party.id:
            raise Forbidden(f"{line['payer']} pays the {currency} net, not {party.id}", code="accessDenied")
        try:
            paid = minor_from_wire(amount, minor_units(currency), field="amount.value")
        except ValueError as exc:
            raise Unprocessable.single("invalidValue", str(exc), "/amount/value") from None
        if paid != line["netMinor"]:
            raise Unprocessable.single(
                "invalidValue", f"the net {currency} amount is {line['netAmount']['value']}, not {amount}", "/amount"
            )
        line["paid"] = True
        document["payments"].append(
            {
                "id": f"{row.id}/{currency}",
                "payer": party.id,
                "amount": line["netAmount"],
                "paymentMethod": method,
                "paymentDate": rfc3339(paid_at),
            }
        )
        _save(session, runtime, row, document, "paymentRecorded", party.actor)
        if all(item["paid"] for item in document["lines"]):
            _apply(session, runtime, row, copy.deepcopy(document), party, method=method, paid_at=paid_at)
        return row.document


def _apply(
    session: Session,
    runtime: Runtime,
    row: Settlement,
    document: dict[str, Any],
    party: Party,
    *,
    method: str,
    paid_at: datetime,
) -> None:
    """Put the settled amounts on the bills and settle the bills with nothing left to pay."""
    for entry in document["customerBill"]:
        amount = int(entry["includedMinor"])
        bill = session.get(CustomerBill, entry["id"])
        bilateral = runtime.parties.by_id(bill.bilateral_id) if bill else None
        if bill is None or bilateral is None or amount == 0:
            continue
        currency, exponent = bill.currency, minor_units(bill.currency)
        remaining = bill.remaining_minor - amount
        payment = {
            "appliedAmount": money(amount, currency, exponent),
            "payment": {
                "id": f"{row.id}/{currency}",
                "amount": money(amount, currency, exponent),
                "paymentMethod": method,
                "paymentDate": rfc3339(paid_at),
            },
        }
        updates = {
            "appliedPayment": [*bill.document["appliedPayment"], payment],
            "remainingAmount": money(remaining, currency, exponent),
        }
        settled = remaining == 0 and held_by_open_disputes(session, bill.id) == 0
        set_bill_state(session, runtime, bilateral, bill, "settled" if settled else bill.state, party.actor, **updates)
        if settled:
            _settle_items(session, runtime, bilateral, bill.id, party.actor)
    document["state"] = "settled"
    _save(session, runtime, row, document, "settled", party.actor)


def _settle_items(session: Session, runtime: Runtime, bilateral: BilateralRef, bill_id: str, actor: str) -> None:
    items: Sequence[CustomerBillItem] = session.exec(
        select(CustomerBillItem).where(
            CustomerBillItem.customer_bill_id == bill_id, CustomerBillItem.state != "settled"
        )
    ).all()
    for item in items:
        document = copy.deepcopy(item.document)
        document["state"] = "settled"
        item.state = "settled"
        changes.save(
            session,
            bilateral,
            item,
            document,
            resource_type="customerBillItem",
            event="stateChanged",
            actor=actor,
        )
