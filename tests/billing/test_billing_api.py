"""Billing through HTTP: agreement -> reports -> reconciliation -> billing run -> bills -> disputes -> settlement.

Two operators that buy from each other (mirror bilaterals OPERATOR-A <-> OPERATOR-B), every step through the Smart
Bilateral and Customer Bill APIs. Products are put into the inventory tables directly (``add_product``): ordering
is tested elsewhere. Expected amounts are worked out here by hand: EUR, VAT 20 %, whole months, no discounts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlmodel import func, select

from billing.conftest import add_product
from billing.factories import utc
from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Role
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.billing import BillingRun, CustomerBill, CustomerBillItem, Dispute, Settlement
from tests.billing.smart_bilateral import API, APRIL_START, MARCH_START, approved_agreement, log_size, propose
from tests.mirror import mirror_settings, mirror_token

BILLS = "/mefApi/sonata/customerBillManagement/v2"
MAY_START = "2025-05-01T00:00:00.000Z"
MARCH = {"periodStart": MARCH_START, "periodEnd": APRIL_START}
APRIL = {"periodStart": APRIL_START, "periodEnd": MAY_START}
NO_DISCOUNTS: dict[str, Any] = {"discounts": None}


def headers(who: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mirror_token(who, role)}"}


A_BUYER, A_SELLER = headers("A", Role.BUYER), headers("A", Role.SELLER)
B_BUYER, B_SELLER = headers("B", Role.BUYER), headers("B", Role.SELLER)


@pytest.fixture
def mirror(make_settings: Callable[..., Any]) -> Iterator[tuple[Any, Runtime, BilateralRef, BilateralRef]]:
    from sonata_dlt.api.app import create_app

    settings = mirror_settings(make_settings, prefix="OPERATOR")
    runtime = start_runtime(settings)
    refs = {(ref.buyer_id, ref.seller_id): ref for ref in runtime.parties.bilaterals}
    try:
        with create_app(settings, runtime, run_workers=False).test_client() as client:
            yield client, runtime, refs[("OPERATOR-A", "OPERATOR-B")], refs[("OPERATOR-B", "OPERATOR-A")]
    finally:
        runtime.close()


def row(service_id: str, mbps: int) -> dict[str, Any]:
    return {"serviceId": service_id, "productType": "accessEline", "bandwidthMbps": mbps, "status": "active"}


def reconcile(
    client: Any,
    buyer: dict[str, str],
    seller: dict[str, str],
    period: dict[str, str],
    buyer_rows: list[dict[str, Any]],
    seller_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    reports = []
    for who, rows in ((buyer, buyer_rows), (seller, seller_rows)):
        answer = client.post(f"{API}/inventoryReport", json={**period, "rows": rows}, headers=who)
        assert answer.status_code == 201, answer.text
        reports.append(answer.json()["id"])
    answer = client.post(
        f"{API}/reconciliation", json={"buyerReportId": reports[0], "sellerReportId": reports[1]}, headers=seller
    )
    assert answer.status_code == 201, answer.text
    document: dict[str, Any] = answer.json()
    return document


def post(client: Any, path: str, who: dict[str, str], body: Any = None, status: int = 200) -> Any:
    answer = (
        client.post(f"{API}{path}", json=body, headers=who)
        if body is not None
        else client.post(f"{API}{path}", headers=who)
    )
    assert answer.status_code == status, answer.text
    return answer.json()


def eur(value: float | int) -> dict[str, Any]:
    return {"unit": "EUR", "value": value}


def test_the_billing_lifecycle_end_to_end_through_http(mirror: Any) -> None:
    client, runtime, a_buys, b_buys = mirror
    approved_agreement(client, A_BUYER, B_SELLER, **NO_DISCOUNTS)
    approved_agreement(client, B_BUYER, A_SELLER, **NO_DISCOUNTS)
    for product_id in ("AB-1", "AB-2", "AB-3"):
        add_product(runtime, a_buys, product_id, [(utc(2025, 2, 1), None, "accessEline", "100Mbps")])
    add_product(runtime, b_buys, "BA-1", [(utc(2025, 2, 1), None, "accessEline", "1000Mbps")])

    # Reconciliation: AB-1 matched; AB-2 partial (the buyer reports 1 Gbps); AB-3 only the seller reports.
    rec = reconcile(
        client,
        A_BUYER,
        B_SELLER,
        MARCH,
        [row("AB-1", 100), row("AB-2", 1000)],
        [row(p, 100) for p in ("AB-1", "AB-2", "AB-3")],
    )
    assert {k: rec["summary"][k] for k in ("matched", "partial", "sellerOnly")} == {
        "matched": 1,
        "partial": 1,
        "sellerOnly": 1,
    }
    # The seller disputes the AB-2 record; the buyer accepts "no change": the record becomes billable.
    record_dispute = post(
        client,
        "/dispute",
        B_SELLER,
        {"targetType": "reconciliationRecord", "reconciliationId": rec["id"], "targetId": "ab-2", "reason": "1G?"},
        201,
    )
    assert record_dispute["@type"] == "Dispute" and record_dispute["state"] == "open"
    post(client, f"/dispute/{record_dispute['id']}/proposeResolution", B_SELLER,
         {"outcome": "noChange", "description": "the circuit is 100 Mbps, see the order"})  # fmt: skip
    assert post(client, f"/dispute/{record_dispute['id']}/accept", A_BUYER)["resolution"]["kind"] == "accepted"

    # A buyer cannot bill; the seller runs March.
    refused = client.post(f"{API}/billingRun", json=MARCH, headers=A_BUYER)
    assert refused.status_code == 403 and refused.json()["code"] == "accessDenied"
    run = post(client, "/billingRun", B_SELLER, MARCH, 201)
    assert run["@type"] == "BillingRun" and run["itemCount"] == 2
    assert [held["productId"] for held in run["heldServices"]] == ["AB-3"]
    assert "sellerOnly" in run["heldServices"][0]["reason"]
    assert run["totals"]["taxExcludedAmount"] == eur(600) and run["totals"]["amountDue"] == eur(720)
    assert client.get(f"{API}/billingRun/{run['id']}", headers=A_BUYER).json() == run
    listing = client.get(f"{API}/billingRun", headers=B_SELLER)
    assert listing.status_code == 200 and listing.headers["X-Total-Count"] == "1"

    # The bill, through Customer Bill Management, as the buyer sees it.
    bill_id = run["customerBill"]["id"]
    bill = client.get(f"{BILLS}/customerBill/{bill_id}", headers=A_BUYER).json()
    assert bill["state"] == "generated" and bill["amountDue"] == eur(720)
    items = [client.get(ref["href"], headers=A_BUYER).json() for ref in bill["customerBillItem"]]
    assert sorted(item["product"]["id"] for item in items) == ["AB-1", "AB-2"]
    issued = post(client, f"/billingRun/{run['id']}/issue", B_SELLER)
    assert issued["state"] == "paymentDue"

    # The buyer disputes AB-2's item; the seller proposes a 10.00 credit, the buyer accepts.
    (ab2,) = [item for item in items if item["product"]["id"] == "AB-2"]
    item_dispute = post(
        client, "/dispute", A_BUYER, {"targetType": "customerBillItem", "targetId": ab2["id"], "reason": "outage"}, 201
    )
    assert item_dispute["heldAmount"] == eur(360)
    wrong_currency = client.post(
        f"{API}/dispute/{item_dispute['id']}/proposeResolution",
        json={"outcome": "credit", "amount": {"unit": "USD", "value": 10}, "description": "x"},
        headers=B_SELLER,
    )
    assert wrong_currency.status_code == 422 and wrong_currency.json()[0]["propertyPath"] == "/amount/unit"
    post(client, f"/dispute/{item_dispute['id']}/proposeResolution", B_SELLER,
         {"outcome": "credit", "amount": eur(10), "description": "one day of outage"})  # fmt: skip
    same_side = client.post(f"{API}/dispute/{item_dispute['id']}/accept", headers=B_SELLER)
    assert same_side.status_code == 403
    resolved = post(client, f"/dispute/{item_dispute['id']}/accept", A_BUYER)
    assert resolved["state"] == "resolved" and resolved["adjustment"]["id"] == f"ADJ-{item_dispute['id']}"
    assert client.get(ab2["href"], headers=A_BUYER).json()["state"] == "credit"
    note = client.get(resolved["adjustment"]["href"], headers=B_SELLER)
    assert note.status_code == 200, note.text
    assert {k: note.json()[k] for k in ("kind", "state", "amount")} == {
        "kind": "credit",
        "state": "pending",
        "amount": eur(-10),
    }
    assert client.get(resolved["adjustment"]["href"], headers=B_BUYER).status_code == 404  # not B's purchase
    disputes = client.get(f"{API}/dispute", headers=A_BUYER)
    assert disputes.headers["X-Total-Count"] == "2"

    # April (reconciled, everything matched): the credit note lands on it, with its VAT.
    reconcile(client, A_BUYER, B_SELLER, APRIL, [row(p, 100) for p in ("AB-1", "AB-2", "AB-3")],
              [row(p, 100) for p in ("AB-1", "AB-2", "AB-3")])  # fmt: skip
    april = post(client, "/billingRun", B_SELLER, APRIL, 201)
    assert april["appliedAdjustments"] == [f"ADJ-{item_dispute['id']}"]
    applied = client.get(resolved["adjustment"]["href"], headers=A_BUYER).json()
    assert applied["state"] == "applied" and applied["appliedTo"]["id"] == april["customerBill"]["id"]
    assert april["heldServices"] == [] and april["totals"]["credits"] == eur(10)
    assert april["totals"]["amountDue"] == eur(900 - 10 + 180 - 2)

    # B's side: B buys 1 Gbps from A (900.00 + VAT).
    reconcile(client, B_BUYER, A_SELLER, MARCH, [row("BA-1", 1000)], [row("BA-1", 1000)])
    b_run = post(client, "/billingRun", A_SELLER, MARCH, 201)
    assert b_run["totals"]["amountDue"] == eur(1080)
    post(client, f"/billingRun/{b_run['id']}/issue", A_SELLER)

    # Netting: A owes B 720, B owes A 1080; B pays A 360.
    position = client.get(f"{API}/netPosition", headers=A_BUYER).json()
    assert position["positions"] == [
        {"currency": "EUR", "net": eur(360), "counterparties": [{"partyId": "OPERATOR-B", "net": eur(360)}]}
    ]
    statement = post(client, "/settlement", A_SELLER, {"counterpartyId": "OPERATOR-B", **MARCH}, 201)
    assert statement["@type"] == "Settlement" and statement["state"] == "proposed"
    (line,) = statement["lines"]
    assert (line["aOwesB"], line["bOwesA"], line["payer"], line["netAmount"]) == (
        eur(720),
        eur(1080),
        "OPERATOR-B",
        eur(360),
    )
    early = client.post(
        f"{API}/settlement/{statement['id']}/payment",
        json={"amount": eur(360), "paymentMethod": "wireTransfer", "paymentDate": "2025-04-20T00:00:00Z"},
        headers=B_BUYER,
    )
    assert early.status_code == 409 and early.json()["code"] == "conflict"
    post(client, f"/settlement/{statement['id']}/confirm", A_BUYER)
    assert post(client, f"/settlement/{statement['id']}/confirm", B_SELLER)["state"] == "confirmed"
    done = post(
        client,
        f"/settlement/{statement['id']}/payment",
        B_BUYER,
        {"amount": eur(360), "paymentMethod": "wireTransfer", "paymentDate": "2025-04-20T00:00:00Z"},
    )
    assert done["state"] == "settled"
    assert client.get(f"{API}/settlement/{statement['id']}", headers=B_BUYER).json() == done
    assert client.get(f"{API}/settlement", headers=B_SELLER).headers["X-Total-Count"] == "1"

    for who, settled_id, owed in ((A_BUYER, bill_id, 720), (B_BUYER, b_run["customerBill"]["id"], 1080)):
        settled = client.get(f"{BILLS}/customerBill/{settled_id}", headers=who).json()
        assert settled["state"] == "settled" and settled["remainingAmount"] == eur(0)
        assert [payment["appliedAmount"] for payment in settled["appliedPayment"]] == [eur(owed)]
    # A settled bill cannot be disputed any more.
    late = client.post(
        f"{API}/dispute", json={"targetType": "customerBill", "targetId": bill_id, "reason": "late"}, headers=A_BUYER
    )
    assert late.status_code == 409 and "is settled" in late.json()["reason"]


def count(runtime: Runtime, *tables: Any) -> list[int]:
    with runtime.db.read() as session:
        return [int(session.exec(select(func.count()).select_from(table)).one()) for table in tables]


STORED = (BillingRun, CustomerBill, CustomerBillItem, Dispute, Settlement)


def test_bad_input_gets_a_sonata_error_and_stores_nothing(mirror: Any) -> None:
    client, runtime, a_buys, _ = mirror
    add_product(runtime, a_buys, "AB-1", [(utc(2025, 2, 1), None, "accessEline", "100Mbps")])

    def refused(path: str, who: dict[str, str], body: Any, status: int) -> Any:
        before = (log_size(None), count(runtime, *STORED))
        answer = client.post(f"{API}{path}", json=body, headers=who)
        assert answer.status_code == status, answer.text
        assert (log_size(None), count(runtime, *STORED)) == before
        return answer.json()

    # An agreement version the buyer approved, still missing the seller's approval.
    proposed = propose(client, A_BUYER, **NO_DISCOUNTS)
    assert proposed.status_code == 201
    post(client, f"/agreement/{proposed.json()['id']}/approve", A_BUYER)
    (issue,) = refused("/billingRun", B_SELLER, MARCH, 422)
    assert issue["code"] == "referenceNotFound" and "missing the seller approval" in issue["reason"]
    assert issue["propertyPath"] == "/periodStart"
    post(client, f"/agreement/{proposed.json()['id']}/approve", B_SELLER)

    # Approved, but the period was never reconciled: nothing unreconciled is billed.
    (issue,) = refused("/billingRun", B_SELLER, MARCH, 422)
    assert "no reconciliation covers" in issue["reason"]
    reconcile(client, A_BUYER, B_SELLER, MARCH, [row("AB-1", 100)], [row("AB-1", 100)])

    # A currency that is not the agreement's.
    (issue,) = refused("/billingRun", B_SELLER, {**MARCH, "currency": "USD"}, 422)
    assert issue["code"] == "invalidValue" and issue["propertyPath"] == "/currency"
    # A period that ends before it starts; a date-time without a time zone.
    (issue,) = refused("/billingRun", B_SELLER, {"periodStart": APRIL_START, "periodEnd": MARCH_START}, 422)
    assert issue["propertyPath"] == "/periodEnd"
    body = refused("/billingRun", B_SELLER, {"periodStart": "2025-03-01T00:00:00", "periodEnd": APRIL_START}, 400)
    assert body["code"] == "invalidBody" and "periodStart" in body["reason"]

    # Overlapping periods: the second run is a 409 and leaves nothing behind.
    run = post(client, "/billingRun", B_SELLER, MARCH, 201)
    body = refused("/billingRun", B_SELLER, {"periodStart": "2025-03-31T00:00:00Z", "periodEnd": MAY_START}, 409)
    assert body["code"] == "conflict" and "overlaps" in body["reason"]

    # Disputes naming nothing real.
    (issue,) = refused("/dispute", A_BUYER, {"targetType": "customerBill", "targetId": "CB-none", "reason": "?"}, 422)
    assert issue["code"] == "referenceNotFound" and issue["propertyPath"] == "/targetId"
    (issue,) = refused("/dispute", A_BUYER, {"targetType": "reconciliationRecord", "targetId": "ab-1", "reason": "?"},
                       422)  # fmt: skip
    assert issue["propertyPath"] == "/reconciliationId"

    # A dispute on a settled bill: settle March first (A pays the whole bill: nothing to net against).
    post(client, f"/billingRun/{run['id']}/issue", B_SELLER)
    statement = post(client, "/settlement", B_SELLER, {"counterpartyId": "OPERATOR-A", **MARCH}, 201)
    post(client, f"/settlement/{statement['id']}/confirm", B_SELLER)
    post(client, f"/settlement/{statement['id']}/confirm", A_BUYER)
    post(client, f"/settlement/{statement['id']}/payment", A_BUYER,
         {"amount": eur(360), "paymentMethod": "wireTransfer", "paymentDate": "2025-04-20T00:00:00Z"})  # fmt: skip
    bill_id = run["customerBill"]["id"]
    body = refused("/dispute", A_BUYER, {"targetType": "customerBill", "targetId": bill_id, "reason": "late"}, 409)
    assert body["code"] == "conflict" and "settled" in body["reason"]
    with runtime.db.read() as session:
        (item_id,) = session.exec(select(CustomerBillItem.id).where(CustomerBillItem.customer_bill_id == bill_id)).all()
    body = refused("/dispute", A_BUYER, {"targetType": "customerBillItem", "targetId": item_id, "reason": "x"}, 409)
    assert body["code"] == "conflict"
    # A payment for a settlement that is already settled, and one in a currency the statement does not have.
    body = refused(
        f"/settlement/{statement['id']}/payment",
        A_BUYER,
        {"amount": eur(360), "paymentMethod": "wireTransfer", "paymentDate": "2025-04-20T00:00:00Z"},
        409,
    )
    assert body["code"] == "conflict"


def test_a_dispute_can_be_withdrawn_by_its_raiser_only_and_escalated(mirror: Any) -> None:
    client, runtime, a_buys, _ = mirror
    approved_agreement(client, A_BUYER, B_SELLER, **NO_DISCOUNTS)
    add_product(runtime, a_buys, "AB-1", [(utc(2025, 2, 1), None, "accessEline", "100Mbps")])
    reconcile(client, A_BUYER, B_SELLER, MARCH, [row("AB-1", 100)], [row("AB-1", 100)])
    run = post(client, "/billingRun", B_SELLER, MARCH, 201)
    bill_id = run["customerBill"]["id"]
    dispute = post(
        client, "/dispute", A_BUYER, {"targetType": "customerBill", "targetId": bill_id, "reason": "rate"}, 201
    )
    assert client.get(f"{BILLS}/customerBill/{bill_id}", headers=A_BUYER).json()["state"] == "paymentDue"
    post(client, f"/dispute/{dispute['id']}/proposeResolution", B_SELLER,
         {"outcome": "noChange", "description": "per the MSA"})  # fmt: skip
    assert post(client, f"/dispute/{dispute['id']}/reject", A_BUYER)["state"] == "rejected"
    assert post(client, f"/dispute/{dispute['id']}/escalate", A_BUYER)["state"] == "escalated"
    not_raiser = client.post(f"{API}/dispute/{dispute['id']}/resolve", headers=B_SELLER)
    assert not_raiser.status_code == 403 and not_raiser.json()["code"] == "accessDenied"
    withdrawn = post(client, f"/dispute/{dispute['id']}/resolve", A_BUYER)
    assert withdrawn["state"] == "resolved" and withdrawn["resolution"] == {"kind": "withdrawn", "by": "OPERATOR-A"}
    assert "adjustment" not in withdrawn
    again = client.post(f"{API}/dispute/{dispute['id']}/resolve", headers=A_BUYER)
    assert again.status_code == 409
    assert client.get(f"{API}/dispute/{dispute['id']}", headers=B_SELLER).json() == withdrawn
    assert client.get(f"{API}/dispute/unknown", headers=B_SELLER).status_code == 404


def test_a_bill_beyond_two_to_the_31_cents_is_stored_exactly(mirror: Any) -> None:
    """Wholesale bills pass 21,474,836.47 EUR (2**31 cents): the amounts are 64-bit columns on every database."""
    client, runtime, a_buys, _ = mirror
    price_list = [{"productType": "accessEline", "bandwidthMbps": 100, "monthlyRecurring": eur(30_000_000.01)}]
    approved_agreement(client, A_BUYER, B_SELLER, priceList=price_list, **NO_DISCOUNTS)
    add_product(runtime, a_buys, "AB-BIG", [(utc(2025, 2, 1), None, "accessEline", "100Mbps")])
    reconcile(client, A_BUYER, B_SELLER, MARCH, [row("AB-BIG", 100)], [row("AB-BIG", 100)])
    run = post(client, "/billingRun", B_SELLER, MARCH, 201)
    assert run["totals"]["amountDue"] == eur(36_000_000.01)  # 30,000,000.01 + 6,000,000.00 VAT (rounded to cents)
    with runtime.db.read() as session:
        bill = session.get(CustomerBill, run["customerBill"]["id"])
        assert bill is not None and bill.amount_due_minor == bill.remaining_minor == 3_600_000_001
