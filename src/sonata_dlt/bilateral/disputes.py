"""Disputes: either party contests a reconciliation record, a bill item or a whole bill.

Lifecycle (each step recorded in the bilateral's log)::

    open -> proposedResolution -> accepted -> resolved
                 |   ^                (an adjustment, credit or debit note, lands on the next bill)
                 v   |
              rejected -> escalated   (escalated and rejected disputes accept a new proposal)

The party that raised a dispute may also close it without an adjustment (``resolve``: it withdraws the claim).
A reconciliation record is named by its reconciliation and its ``serviceKey``; once such a dispute is
resolved by an accepted proposal, the run of that reconciliation's period bills the service (see ``inputs``).

While a dispute is not resolved its amount (tax included) is held out of netting (``held_minor``). A disputed
item is ``disputeBeingInvestigated``; on resolution it becomes ``credit`` (part credited), ``withDrawn`` (all of it
credited) or ``paymentDue`` (upheld). A settled bill cannot be disputed (409).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from sonata_dlt.bilateral.billing.billing_run import RUN_API, set_bill_state
from sonata_dlt.bilateral.billing.bills import bill_href, item_href
from sonata_dlt.bilateral.rating.money import minor_from_wire, minor_units, money
from sonata_dlt.bilateral.reconciliation import runs as reconciliation
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden, NotFound, Unprocessable
from sonata_dlt.storage.billing import Adjustment, CustomerBill, CustomerBillItem, Dispute
from sonata_dlt.storage.types import rfc3339, utcnow
from sonata_dlt.verifiable_log import changes

TARGET_TYPES = ("reconciliationRecord", "customerBillItem", "customerBill")
OUTCOMES = ("credit", "debit", "noChange")
UNRESOLVED = ("open", "proposedResolution", "rejected", "escalated", "accepted")


@dataclass(frozen=True)
class Proposal:
    outcome: str  # credit | debit | noChange
    amount_minor: int  # tax excluded, >= 0; the sign comes from the outcome
    description: str


def held_by_open_disputes(session: Session, bill_id: str) -> int:
    rows = session.exec(
        select(Dispute.held_minor).where(Dispute.customer_bill_id == bill_id, col(Dispute.state).in_(UNRESOLVED))
    ).all()
    return sum(rows)


def raise_dispute(
    runtime: Runtime,
    party: Party,
    bilateral: BilateralRef,
    target_type: str,
    target_id: str,
    reason: str,
    *,
    reconciliation_id: str | None = None,
) -> dict[str, Any]:
    if target_type not in TARGET_TYPES:
        raise Unprocessable.single(
            "invalidValue", f"targetType must be one of {', '.join(TARGET_TYPES)}", "/targetType"
        )
    if target_type == "reconciliationRecord":
        _check_reconciliation_record(runtime, party, bilateral, reconciliation_id, target_id)
    with runtime.db.write() as session:
        clash = session.exec(
            select(Dispute).where(
                Dispute.bilateral_id == bilateral.id, Dispute.target_id == target_id, col(Dispute.state).in_(UNRESOLVED)
            )
        ).first()
        if clash is not None:
            raise Conflict(f"{target_type} {target_id} already has the unresolved dispute {clash.id}")
        bill: CustomerBill | None = None
        item: CustomerBillItem | None = None
        held = 0
        target: dict[str, Any] = {"id": target_id}
        if reconciliation_id is not None and target_type == "reconciliationRecord":
            href = f"{RUN_API}/reconciliation/{reconciliation_id}"
            target["reconciliation"] = {"id": reconciliation_id, "href": href}
        if target_type == "customerBill":
            bill = session.get(CustomerBill, target_id)
            if bill is None or bill.bilateral_id != bilateral.id:
                raise Unprocessable.single("referenceNotFound", f"no customer bill {target_id}", "/targetId")
            held = bill.remaining_minor - held_by_open_disputes(session, bill.id)
            target["href"] = bill_href(bill.id)
        elif target_type == "customerBillItem":
            item = session.get(CustomerBillItem, target_id)
            if item is None or item.bilateral_id != bilateral.id:
                raise Unprocessable.single("referenceNotFound", f"no customer bill item {target_id}", "/targetId")
            bill = session.get(CustomerBill, item.customer_bill_id)
            held = item.amount_minor + item.tax_minor
            target["href"] = item_href(item.id)
        if bill is not None and bill.state == "settled":
            raise Conflict(
                f"customer bill {bill.id} is settled: a settled bill and its items cannot be disputed;"
                " raise the matter as a dispute on the next bill or the reconciliation record"
            )
        dispute_id = str(uuid.uuid4())
        now = rfc3339(utcnow())
        document: dict[str, Any] = {
            "id": dispute_id,
            "href": f"{RUN_API}/dispute/{dispute_id}",
            "@type": "Dispute",
            "buyerId": bilateral.buyer_id,
            "sellerId": bilateral.seller_id,
            "state": "open",
            "targetType": target_type,
            "target": target,
            "reason": reason,
            "raisedBy": party.id,
            "raisedAt": now,
            "proposals": [],
        }
        if bill is not None:
            document["customerBill"] = {"id": bill.id, "href": bill_href(bill.id)}
            document["heldAmount"] = money(max(held, 0), bill.currency, minor_units(bill.currency))
        row = Dispute(
            id=dispute_id,
            bilateral_id=bilateral.id,
            state="open",
            target_type=target_type,
            target_id=target_id,
            customer_bill_id=bill.id if bill else None,
            currency=bill.currency if bill else None,
            held_minor=max(held, 0),
            raised_by=party.id,
        )
        changes.save(session, bilateral, row, document, resource_type="dispute", event="opened", actor=party.actor)
        if item is not None:
            _set_item_state(session, runtime, bilateral, item, "disputeBeingInvestigated", party.actor)
        if bill is not None and bill.state == "generated":
            # MEF 141: a bill is paymentDue while any of its items is under investigation.
            set_bill_state(session, runtime, bilateral, bill, "paymentDue", party.actor)
        return document


def _check_reconciliation_record(
    runtime: Runtime, party: Party, bilateral: BilateralRef, reconciliation_id: str | None, service_key: str
) -> None:
    """The record must exist in a reconciliation of this bilateral (read through the reconciliation service)."""
    if not reconciliation_id:
        raise Unprocessable.single(
            "missingProperty", "reconciliationId is required to dispute a reconciliation record", "/reconciliationId"
        )
    try:
        _, total = reconciliation.list_records(
            runtime,
            party,
            reconciliation_id,
            classification=None,
            service_key=service_key,
            offset=0,
            limit=1,
            buyer_id=bilateral.buyer_id,
            seller_id=bilateral.seller_id,
        )
    except NotFound:
        raise Unprocessable.single(
            "referenceNotFound", f"no reconciliation {reconciliation_id} in this bilateral", "/reconciliationId"
        ) from None
    if not total:
        raise Unprocessable.single(
            "referenceNotFound", f"reconciliation {reconciliation_id} has no record {service_key!r}", "/targetId"
        )


def _set_item_state(
    session: Session, runtime: Runtime, bilateral: BilateralRef, item: CustomerBillItem, state: str, actor: str
) -> None:
    document = copy.deepcopy(item.document)
    document["state"] = state
    item.state = state
    changes.save(
        session,
        bilateral,
        item,
        document,
        resource_type="customerBillItem",
        event="stateChanged",
        actor=actor,
    )


def _load(session: Session, runtime: Runtime, party: Party, dispute_id: str) -> tuple[Dispute, BilateralRef]:
    row = session.get(Dispute, dispute_id)
    refs = {ref.id: ref for ref in runtime.parties.bilaterals_of(party)}
    if row is None or row.bilateral_id not in refs:
        raise NotFound(f"dispute {dispute_id} does not exist")
    return row, refs[row.bilateral_id]


def _save(
    session: Session,
    runtime: Runtime,
    bilateral: BilateralRef,
    row: Dispute,
    document: dict[str, Any],
    event: str,
    actor: str,
) -> None:
    row.state = document["state"]
    changes.save(
        session,
        bilateral,
        row,
        document,
        resource_type="dispute",
        event=event,
        actor=actor,
    )


def propose(runtime: Runtime, party: Party, dispute_id: str, proposal: Proposal) -> dict[str, Any]:
    if proposal.outcome not in OUTCOMES:
        raise Unprocessable.single("invalidValue", f"outcome must be one of {', '.join(OUTCOMES)}", "/outcome")
    if proposal.amount_minor < 0 or (proposal.outcome == "noChange" and proposal.amount_minor):
        raise Unprocessable.single("invalidValue", "amount must be 0 or more, and 0 for noChange", "/amount")
    with runtime.db.write() as session:
        row, bilateral = _load(session, runtime, party, dispute_id)
        if row.state not in ("open", "rejected", "escalated"):
            raise Conflict(
                f"dispute {row.id} is {row.state}; a resolution can be proposed only when it is open,"
                " rejected or escalated"
            )
        document = copy.deepcopy(row.document)
        document["state"] = "proposedResolution"
        document["proposals"].append(
            {
                "proposedBy": party.id,
                "proposedAt": rfc3339(utcnow()),
                "outcome": proposal.outcome,
                "amountMinor": proposal.amount_minor,
                "description": proposal.description,
            }
        )
        _save(session, runtime, bilateral, row, document, "resolutionProposed", party.actor)
        return document


def _answerable(row: Dispute, party: Party) -> dict[str, Any]:
    if row.state != "proposedResolution":
        raise Conflict(f"dispute {row.id} is {row.state}; there is no proposal to answer")
    latest: dict[str, Any] = row.document["proposals"][-1]
    if latest["proposedBy"] == party.id:
        raise Forbidden("the other party answers a proposal, not the one who made it", code="accessDenied")
    return latest


def reject(runtime: Runtime, party: Party, dispute_id: str) -> dict[str, Any]:
    with runtime.db.write() as session:
        row, bilateral = _load(session, runtime, party, dispute_id)
        _answerable(row, party)
        document = copy.deepcopy(row.document)
        document["state"] = "rejected"
        _save(session, runtime, bilateral, row, document, "resolutionRejected", party.actor)
        return document


def escalate(runtime: Runtime, party: Party, dispute_id: str) -> dict[str, Any]:
    with runtime.db.write() as session:
        row, bilateral = _load(session, runtime, party, dispute_id)
        if row.state not in ("open", "proposedResolution", "rejected"):
            raise Conflict(f"dispute {row.id} is {row.state}; it cannot be escalated")
        document = copy.deepcopy(row.document)
        document["state"] = "escalated"
        _save(session, runtime, bilateral, row, document, "escalated", party.actor)
        return document


def accept(runtime: Runtime, party: Party, dispute_id: str) -> dict[str, Any]:
    """Accept the latest proposal: record ``accepted``, create the adjustment, then record ``resolved``."""
    with runtime.db.write() as session:
        row, bilateral = _load(session, runtime, party, dispute_id)
        proposal = _answerable(row, party)
        document = copy.deepcopy(row.document)
        document["state"] = "accepted"
        _save(session, runtime, bilateral, row, document, "resolutionAccepted", party.actor)

        item = session.get(CustomerBillItem, row.target_id) if row.target_type == "customerBillItem" else None
        amount = int(proposal["amountMinor"])
        signed = -amount if proposal["outcome"] == "credit" else amount
        resolved = copy.deepcopy(document)
        if signed:
            currency = row.currency
            if currency is None:
                raise Unprocessable.single(
                    "invalidValue", "a reconciliation dispute has no bill currency; resolve it with noChange"
                )
            adjustment = _adjustment(session, runtime, bilateral, row, item, signed, currency, proposal, party)
            resolved["adjustment"] = {"id": adjustment.id, "href": f"{RUN_API}/adjustment/{adjustment.id}"}
        if item is not None:
            if proposal["outcome"] == "credit" and amount >= item.amount_minor:
                state = "withDrawn"
            elif proposal["outcome"] == "credit" and amount:
                state = "credit"
            else:
                state = "paymentDue"
            _set_item_state(session, runtime, bilateral, item, state, party.actor)
        resolved["state"] = "resolved"
        resolved["resolution"] = {"kind": "accepted", "by": party.id}
        resolved["resolvedAt"] = rfc3339(utcnow())
        _save(session, runtime, bilateral, row, resolved, "resolved", party.actor)
        return resolved


def resolve(runtime: Runtime, party: Party, dispute_id: str) -> dict[str, Any]:
    """The raiser closes its dispute without an adjustment; a disputed item is due again as billed."""
    with runtime.db.write() as session:
        row, bilateral = _load(session, runtime, party, dispute_id)
        if row.raised_by != party.id:
            raise Forbidden("only the party that raised a dispute withdraws it", code="accessDenied")
        if row.state not in ("open", "proposedResolution", "rejected", "escalated"):
            raise Conflict(f"dispute {row.id} is {row.state}; it cannot be withdrawn")
        if row.target_type == "customerBillItem":
            item = session.get(CustomerBillItem, row.target_id)
            if item is not None and item.state == "disputeBeingInvestigated":
                _set_item_state(session, runtime, bilateral, item, "paymentDue", party.actor)
        document = copy.deepcopy(row.document)
        document["state"] = "resolved"
        document["resolution"] = {"kind": "withdrawn", "by": party.id}
        document["resolvedAt"] = rfc3339(utcnow())
        _save(session, runtime, bilateral, row, document, "withdrawn", party.actor)
        return document


def proposal_from_wire(
    runtime: Runtime, party: Party, dispute_id: str, outcome: str, amount: Any, description: str
) -> Proposal:
    """A proposal whose ``amount`` is Sonata Money: it must be in the disputed bill's currency, in whole minor
    units (a reconciliation record has no currency: only ``noChange`` without an amount)."""
    with runtime.db.read() as session:
        row, _ = _load(session, runtime, party, dispute_id)
        currency = row.currency
    if amount is None:
        return Proposal(outcome, 0, description)
    if currency is None:
        raise Unprocessable.single("invalidValue", "a reconciliation record dispute carries no amount", "/amount")
    if amount.get("unit") != currency:
        raise Unprocessable.single(
            "invalidValue", f"amount is in {amount.get('unit')} but the disputed bill is in {currency}", "/amount/unit"
        )
    try:
        minor = minor_from_wire(amount.get("value"), minor_units(currency), field="amount.value")
    except ValueError as exc:
        raise Unprocessable.single("invalidValue", str(exc), "/amount/value") from None
    return Proposal(outcome, minor, description)


def _adjustment(
    session: Session,
    runtime: Runtime,
    bilateral: BilateralRef,
    dispute: Dispute,
    item: CustomerBillItem | None,
    signed: int,
    currency: str,
    proposal: dict[str, Any],
    party: Party,
) -> Adjustment:
    adjustment_id = f"ADJ-{dispute.id}"
    kind = "credit note" if signed < 0 else "debit note"
    source = item.document if item is not None else {}
    document = {
        "id": adjustment_id,
        "href": f"{RUN_API}/adjustment/{adjustment_id}",
        "dispute": {"id": dispute.id, "href": f"{RUN_API}/dispute/{dispute.id}"},
        "kind": "credit" if signed < 0 else "debit",
        "state": "pending",  # applied by the next billing run of the bilateral
        "amount": money(signed, currency, minor_units(currency)),
        "description": f"{kind} for dispute {dispute.id}: {proposal['description']}",
        "product": source.get("product", {"id": ""}),
        "productName": source.get("productName", "adjustment"),
        "productOrderItem": source.get("productOrderItem", {"productOrderId": "", "productOrderItemId": ""}),
    }
    row = Adjustment(
        id=adjustment_id, bilateral_id=bilateral.id, dispute_id=dispute.id, currency=currency, amount_minor=signed
    )
    changes.save(
        session,
        bilateral,
        row,
        document,
        resource_type="adjustment",
        event="created",
        actor=party.actor,
    )
    return row


def get_dispute(runtime: Runtime, party: Party, dispute_id: str) -> dict[str, Any]:
    with runtime.db.read() as session:
        row, _ = _load(session, runtime, party, dispute_id)
        return row.document


def get_adjustment(runtime: Runtime, party: Party, adjustment_id: str) -> dict[str, Any]:
    with runtime.db.read() as session:
        row = session.get(Adjustment, adjustment_id)
        if row is None or row.bilateral_id not in {ref.id for ref in runtime.parties.bilaterals_of(party)}:
            raise NotFound(f"adjustment {adjustment_id} does not exist")
        return row.document


def list_disputes(
    runtime: Runtime, party: Party, offset: int, limit: int, scope: list[BilateralRef] | None = None
) -> tuple[list[dict[str, Any]], int]:
    ids = [ref.id for ref in (scope if scope is not None else runtime.parties.bilaterals_of(party))]
    with runtime.db.read() as session:
        rows = session.exec(
            select(Dispute).where(col(Dispute.bilateral_id).in_(ids)).order_by(col(Dispute.created_at), col(Dispute.id))
        ).all()
        return [row.document for row in rows[offset : offset + limit]], len(rows)
