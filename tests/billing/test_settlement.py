"""Disputes and settlement between two operators that buy from each other (mirror bilaterals A<->B)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from billing.conftest import GivenInputs, add_product
from billing.factories import MARCH, VAT, make_terms, utc
from sonata_dlt.bilateral import disputes, settlement
from sonata_dlt.bilateral.billing.billing_run import RunRequest, create_run, issue_bill
from sonata_dlt.bilateral.billing.bills import items_of
from sonata_dlt.bilateral.billing.inputs import BILLING_INPUTS
from sonata_dlt.bilateral.rating.engine import Period
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden, Unprocessable
from sonata_dlt.settings import Role
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.billing import CustomerBill, CustomerBillItem
from tests.mirror import mirror_settings

A_BUYER, A_SELLER = Party("OP-A", Role.BUYER), Party("OP-A", Role.SELLER)
B_BUYER, B_SELLER = Party("OP-B", Role.BUYER), Party("OP-B", Role.SELLER)
APRIL = Period(utc(2025, 4, 1), utc(2025, 5, 1))


def cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)


@pytest.fixture
def mirror(make_settings: Callable[..., Any]) -> Iterator[tuple[Runtime, BilateralRef, BilateralRef]]:
    settings = mirror_settings(make_settings)
    runtime = start_runtime(settings)
    runtime.components[BILLING_INPUTS] = GivenInputs()
    refs = {(ref.buyer_id, ref.seller_id): ref for ref in runtime.parties.bilaterals}
    a_buys, b_buys = refs[("OP-A", "OP-B")], refs[("OP-B", "OP-A")]
    runtime.components[BILLING_INPUTS].terms_by_bilateral.update(
        {a_buys.id: make_terms(taxes=(VAT,)), b_buys.id: make_terms(taxes=(VAT,))}
    )
    # A buys a full March of 100 Mbps from B: 300.00 + 20 % VAT.
    add_product(runtime, a_buys, "AB-1", [(utc(2025, 2, 1), None, "accessEline", "100Mbps")])
    # B buys 1 Gbps from A from 16 March: 900.00 x 16/31 + 20 % VAT.
    add_product(runtime, b_buys, "BA-1", [(utc(2025, 3, 16), None, "accessEline", "1Gbps")])
    try:
        yield runtime, a_buys, b_buys
    finally:
        runtime.close()


def bill_and_issue(runtime: Runtime, seller: Party, bilateral: BilateralRef, period: Period | None = None) -> str:
    run = create_run(runtime, seller, bilateral, RunRequest(period or Period(*MARCH)))
    issue_bill(runtime, seller, run["id"])
    return str(run["customerBill"]["id"])


def test_netting_both_ways_pays_only_the_difference_and_settles_both_bills(mirror: Any) -> None:
    runtime, a_buys, b_buys = mirror
    a_bill = bill_and_issue(runtime, B_SELLER, a_buys)
    b_bill = bill_and_issue(runtime, A_SELLER, b_buys)

    a_owes = 30000 + cents(Decimal(300) * Decimal("0.2"))
    b_net = cents(Decimal(900) * 16 / 31)
    b_owes = b_net + cents(Decimal(b_net) / 100 * Decimal("0.2")) + 15000 + 3000  # activation 150.00 + VAT
    statement = settlement.create_settlement(runtime, A_BUYER, "OP-B", Period(*MARCH))
    (line,) = statement["lines"]
    assert line["aOwesB"]["value"] * 100 == pytest.approx(a_owes)
    assert line["bOwesA"]["value"] * 100 == pytest.approx(b_owes)
    assert (line["payer"], line["payee"], line["netMinor"]) == ("OP-B", "OP-A", b_owes - a_owes)

    with pytest.raises(Conflict, match="payments follow"):
        settlement.record_payment(runtime, B_SELLER, statement["id"], "EUR", 1, "wireTransfer", utc(2025, 4, 20))
    settlement.confirm(runtime, A_SELLER, statement["id"])
    assert settlement.confirm(runtime, B_BUYER, statement["id"])["state"] == "confirmed"
    with pytest.raises(Forbidden):
        settlement.record_payment(runtime, A_BUYER, statement["id"], "EUR", 1, "wireTransfer", utc(2025, 4, 20))
    with pytest.raises(Unprocessable, match="net EUR amount"):
        settlement.record_payment(runtime, B_BUYER, statement["id"], "EUR", 1, "wireTransfer", utc(2025, 4, 20))
    net_value = Decimal(b_owes - a_owes) / 100
    done = settlement.record_payment(
        runtime, B_BUYER, statement["id"], "EUR", str(net_value), "wireTransfer", utc(2025, 4, 20)
    )
    assert done["state"] == "settled"

    with runtime.db.read() as session:
        for bill_id, owed in ((a_bill, a_owes), (b_bill, b_owes)):
            bill = session.get(CustomerBill, bill_id)
            assert bill is not None and bill.state == "settled" and bill.remaining_minor == 0
            assert bill.document["remainingAmount"] == {"unit": "EUR", "value": 0}
            assert bill.document["appliedPayment"][0]["appliedAmount"]["value"] * 100 == pytest.approx(owed)
            items = items_of(session, bill_id)
            assert {item.document["state"] for item in items} == {"settled"}


def test_a_disputed_item_is_held_out_of_netting_and_its_credit_lands_on_the_next_bill(mirror: Any) -> None:
    runtime, a_buys, _ = mirror
    a_bill = bill_and_issue(runtime, B_SELLER, a_buys)
    with runtime.db.read() as session:
        (item,) = items_of(session, a_bill)
    dispute = disputes.raise_dispute(runtime, A_BUYER, a_buys, "customerBillItem", item.id, "circuit down 3 days")
    assert dispute["heldAmount"] == {"unit": "EUR", "value": 360}
    with pytest.raises(Conflict, match="already has the unresolved dispute"):
        disputes.raise_dispute(runtime, A_BUYER, a_buys, "customerBillItem", item.id, "again")

    statement = settlement.create_settlement(runtime, A_BUYER, "OP-B", Period(*MARCH))
    assert statement["customerBill"][0]["includedMinor"] == 0 and statement["customerBill"][0]["heldMinor"] == 36000
    settlement.confirm(runtime, A_BUYER, statement["id"])
    assert settlement.confirm(runtime, B_SELLER, statement["id"])["state"] == "settled"  # nothing to pay
    with runtime.db.read() as session:
        bill = session.get(CustomerBill, a_bill)
        assert bill is not None and bill.state == "paymentDue" and bill.remaining_minor == 36000

    proposal = disputes.Proposal("credit", 2903, "3 of 31 days unavailable")  # 300.00 x 3/31 = 29.03
    assert cents(Decimal(300) * 3 / 31) == 2903
    disputes.propose(runtime, B_SELLER, dispute["id"], proposal)
    with pytest.raises(Forbidden):
        disputes.accept(runtime, B_SELLER, dispute["id"])
    resolved = disputes.accept(runtime, A_BUYER, dispute["id"])
    assert resolved["state"] == "resolved" and resolved["adjustment"]["id"] == f"ADJ-{dispute['id']}"
    with runtime.db.read() as session:
        assert session.get(CustomerBillItem, item.id).document["state"] == "credit"  # type: ignore[union-attr]

    april = create_run(runtime, B_SELLER, a_buys, RunRequest(APRIL))
    assert april["appliedAdjustments"] == [f"ADJ-{dispute['id']}"]
    assert april["totals"]["credits"] == {"unit": "EUR", "value": 29.03}
    expected = 30000 - 2903 + cents(Decimal(300) * Decimal("0.2")) - cents(Decimal("29.03") * Decimal("0.2"))
    assert april["totals"]["amountDue"]["value"] * 100 == pytest.approx(expected)


def test_a_settled_bill_cannot_be_disputed(mirror: Any) -> None:
    runtime, a_buys, _ = mirror
    a_bill = bill_and_issue(runtime, B_SELLER, a_buys)
    statement = settlement.create_settlement(runtime, B_SELLER, "OP-A", Period(*MARCH))
    settlement.confirm(runtime, A_BUYER, statement["id"])
    settlement.confirm(runtime, B_SELLER, statement["id"])
    settlement.record_payment(runtime, A_BUYER, statement["id"], "EUR", 360, "wireTransfer", utc(2025, 4, 20))
    with pytest.raises(Conflict, match="is settled: a settled bill and its items cannot be disputed"):
        disputes.raise_dispute(runtime, A_BUYER, a_buys, "customerBill", a_bill, "too late")


def test_rejection_escalation_and_a_new_proposal(mirror: Any) -> None:
    runtime, a_buys, _ = mirror
    a_bill = bill_and_issue(runtime, B_SELLER, a_buys)
    dispute = disputes.raise_dispute(runtime, A_BUYER, a_buys, "customerBill", a_bill, "wrong rate")
    disputes.propose(runtime, B_SELLER, dispute["id"], disputes.Proposal("noChange", 0, "rate is per the MSA"))
    assert disputes.reject(runtime, A_BUYER, dispute["id"])["state"] == "rejected"
    assert disputes.escalate(runtime, A_BUYER, dispute["id"])["state"] == "escalated"
    with pytest.raises(Conflict):
        disputes.accept(runtime, B_SELLER, dispute["id"])
    disputes.propose(runtime, A_BUYER, dispute["id"], disputes.Proposal("noChange", 0, "arbitrator upheld the bill"))
    resolved = disputes.accept(runtime, B_SELLER, dispute["id"])
    assert resolved["state"] == "resolved" and "adjustment" not in resolved
    assert [p["proposedBy"] for p in resolved["proposals"]] == ["OP-B", "OP-A"]
