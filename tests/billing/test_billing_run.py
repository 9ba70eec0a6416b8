"""Billing runs end to end: inputs in the database, the run through the service, bills read through the API."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlmodel import func, select

from billing.conftest import GivenInputs, add_product
from billing.factories import MARCH, VAT, make_terms, utc
from sonata_dlt.bilateral.billing.billing_run import RunRequest, create_run, issue_bill
from sonata_dlt.bilateral.billing.inputs import BILLING_INPUTS
from sonata_dlt.bilateral.rating.engine import Period, SlaEvent, SlaRule, SlaTier
from sonata_dlt.core.parties import BilateralRef, Party
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.errors import Conflict, Forbidden, Unprocessable
from sonata_dlt.settings import DEMO_BUYER_ID, DEMO_SELLER_ID, Role
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.billing import BillingRun, CustomerBill, CustomerBillItem
from sonata_dlt.storage.log import LogLeaf
from sonata_dlt.transparency.canonical import canonical_json

SELLER = Party(DEMO_SELLER_ID, Role.SELLER)
BUYER = Party(DEMO_BUYER_ID, Role.BUYER)


def eur(amount: Decimal) -> float | int:
    value = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(value) if value == value.to_integral_value() else float(value)


def march_run(runtime: Runtime, bilateral: BilateralRef, **kwargs: Any) -> dict[str, Any]:
    return create_run(runtime, SELLER, bilateral, RunRequest(Period(*MARCH), **kwargs))


def test_a_run_bills_an_upgrade_with_tax_and_records_every_item(
    billing_runtime: Runtime,
    demo_bilateral: BilateralRef,
    inputs: GivenInputs,
    billing_client: Any,
    buyer_headers: dict[str, str],
    mef_validate: Callable[[str, Any], None],
) -> None:
    inputs.terms_by_bilateral[demo_bilateral.id] = make_terms(taxes=(VAT,))
    add_product(
        billing_runtime,
        demo_bilateral,
        "P1",
        [
            (utc(2025, 2, 1), utc(2025, 3, 16), "accessEline", "100Mbps"),
            (utc(2025, 3, 16), None, "accessEline", "1Gbps"),
        ],
    )
    add_product(billing_runtime, demo_bilateral, "P2", [(utc(2025, 2, 1), None, "accessEline", "100Mbps")])
    inputs.held["P2"] = "sellerOnly: the buyer reported no such service"

    run = march_run(billing_runtime, demo_bilateral)

    v1, v2 = Decimal(300) * 15 / 31, Decimal(900) * 16 / 31
    net = Decimal(eur(v1)).quantize(Decimal("0.01")) + Decimal(str(eur(v2)))
    net = Decimal(str(eur(v1))) + Decimal(str(eur(v2)))
    tax = Decimal(str(eur(Decimal(str(eur(v1))) * Decimal("0.2")))) + Decimal(
        str(eur(Decimal(str(eur(v2))) * Decimal("0.2")))
    )
    assert run["totals"]["taxExcludedAmount"] == {"unit": "EUR", "value": eur(net)}
    assert run["totals"]["amountDue"] == {"unit": "EUR", "value": eur(net + tax)}
    assert run["heldServices"] == [{"productId": "P2", "reason": "sellerOnly: the buyer reported no such service"}]
    assert run["agreement"] == {"id": "MSA-1", "version": 3}
    assert run["itemCount"] == 2

    bill_id = run["customerBill"]["id"]
    response = billing_client.get(
        f"/mefApi/sonata/customerBillManagement/v2/customerBill/{bill_id}", headers=buyer_headers
    )
    assert response.status_code == 200
    bill = response.json()
    mef_validate("CustomerBill", bill)
    assert bill["state"] == "generated"
    assert bill["agreement"] == {"id": "MSA-1", "version": 3}
    assert bill["taxIncludedAmount"] == run["totals"]["amountDue"]
    for ref in bill["customerBillItem"]:
        item = billing_client.get(ref["href"], headers=buyer_headers)
        assert item.status_code == 200
        mef_validate("CustomerBillItem", item.json())
    listing = billing_client.get(
        "/mefApi/sonata/customerBillManagement/v2/customerBill?state=generated", headers=buyer_headers
    )
    assert listing.status_code == 200 and listing.headers["X-Total-Count"] == "1"
    for summary in listing.json():
        mef_validate("CustomerBill_Find", summary)

    with billing_runtime.db.read() as session:
        kinds = session.exec(select(LogLeaf.resource_type, func.count()).group_by(LogLeaf.resource_type)).all()
    assert dict(kinds) == {"customerBill": 1, "customerBillItem": 2, "billingRun": 1}


def test_an_overlapping_run_is_refused_and_stores_nothing(
    billing_runtime: Runtime, demo_bilateral: BilateralRef
) -> None:
    add_product(billing_runtime, demo_bilateral, "P1", [(utc(2025, 1, 1), None, "accessEline", "100Mbps")])
    march_run(billing_runtime, demo_bilateral)
    with pytest.raises(Conflict, match="overlaps"):
        create_run(billing_runtime, SELLER, demo_bilateral, RunRequest(Period(utc(2025, 3, 31), utc(2025, 4, 30))))
    # The adjacent period is fine: periods are half-open.
    create_run(billing_runtime, SELLER, demo_bilateral, RunRequest(Period(utc(2025, 4, 1), utc(2025, 5, 1))))
    with billing_runtime.db.read() as session:
        assert session.exec(select(func.count()).select_from(BillingRun)).one() == 2


def test_bad_input_is_refused_before_anything_is_stored(
    billing_runtime: Runtime, demo_bilateral: BilateralRef, inputs: GivenInputs
) -> None:
    add_product(billing_runtime, demo_bilateral, "P1", [(utc(2025, 1, 1), None, "accessEline", "10Mbps")])
    with pytest.raises(Unprocessable, match="no price for accessEline at 10Mbps"):
        march_run(billing_runtime, demo_bilateral)
    with pytest.raises(Unprocessable, match="does not match the agreement's currency EUR"):
        march_run(billing_runtime, demo_bilateral, currency="USD")
    with pytest.raises(Unprocessable, match="not active in the period"):
        march_run(billing_runtime, demo_bilateral, sla_events=(SlaEvent("P9", 60),))
    with pytest.raises(Unprocessable, match="periodEnd must be after periodStart"):
        create_run(billing_runtime, SELLER, demo_bilateral, RunRequest(Period(utc(2025, 4, 1), utc(2025, 3, 1))))
    with pytest.raises(Forbidden):
        create_run(billing_runtime, BUYER, demo_bilateral, RunRequest(Period(*MARCH)))
    with billing_runtime.db.read() as session:
        for table in (BillingRun, CustomerBill, CustomerBillItem, LogLeaf):
            assert session.exec(select(func.count()).select_from(table)).one() == 0


def test_a_run_without_an_approved_agreement_is_refused_and_stores_nothing(
    billing_runtime: Runtime, demo_bilateral: BilateralRef
) -> None:

    del billing_runtime.components[BILLING_INPUTS]  # the stored inputs: no agreement version was ever approved
    add_product(billing_runtime, demo_bilateral, "P1", [(utc(2025, 1, 1), None, "accessEline", "100Mbps")])
    with pytest.raises(Unprocessable, match="no approved agreement version is in effect at 2025-03-01"):
        march_run(billing_runtime, demo_bilateral)
    with billing_runtime.db.read() as session:
        assert session.exec(select(func.count()).select_from(CustomerBill)).one() == 0
        assert session.exec(select(func.count()).select_from(LogLeaf)).one() == 0


def test_the_same_inputs_give_the_same_bill_bytes_in_two_databases(
    make_settings: Callable[..., Any], tmp_path: Any
) -> None:

    documents = []
    for name in ("one", "two"):
        settings = make_settings(database_url=f"sqlite:///{tmp_path / name}.sqlite")
        runtime = start_runtime(settings)
        try:
            runtime.components[BILLING_INPUTS] = GivenInputs(terms_by_bilateral={}, usage_totals=[])
            bilateral = runtime.parties.bilaterals[0]
            runtime.components[BILLING_INPUTS].terms_by_bilateral[bilateral.id] = make_terms(
                taxes=(VAT,), sla_rules=(SlaRule("A", (SlaTier(Decimal("99.9"), Decimal(10)),)),)
            )
            add_product(
                runtime,
                bilateral,
                "P1",
                [
                    (utc(2025, 2, 1), utc(2025, 3, 16), "accessEline", "100Mbps"),
                    (utc(2025, 3, 16), None, "accessEline", "1Gbps"),
                ],
            )
            run = create_run(runtime, SELLER, bilateral, RunRequest(Period(*MARCH), sla_events=(SlaEvent("P1", 9000),)))
            with runtime.db.read() as session:
                bill = session.get(CustomerBill, run["customerBill"]["id"])
                assert bill is not None
                items = session.exec(select(CustomerBillItem).order_by(CustomerBillItem.position)).all()
                documents.append(canonical_json([bill.document, [item.document for item in items]]))
        finally:
            runtime.close()
    assert documents[0] == documents[1]


def test_issuing_moves_the_bill_to_payment_due_once(billing_runtime: Runtime, demo_bilateral: BilateralRef) -> None:
    add_product(billing_runtime, demo_bilateral, "P1", [(utc(2025, 1, 1), None, "accessEline", "100Mbps")])
    run = march_run(billing_runtime, demo_bilateral)
    with pytest.raises(Forbidden):
        issue_bill(billing_runtime, BUYER, run["id"])
    assert issue_bill(billing_runtime, SELLER, run["id"])["state"] == "paymentDue"
    with pytest.raises(Conflict):
        issue_bill(billing_runtime, SELLER, run["id"])


def test_bulk_recorded_rows_read_back_as_the_documents_their_leaves_fingerprint(
    billing_runtime: Runtime, demo_bilateral: BilateralRef
) -> None:
    import json

    from sonata_dlt.transparency.canonical import state_hash

    inputs_terms = make_terms(taxes=(VAT,))
    billing_runtime.components[BILLING_INPUTS].terms_by_bilateral[demo_bilateral.id] = inputs_terms
    add_product(billing_runtime, demo_bilateral, "P1", [(utc(2025, 1, 1), None, "accessEline", "100Mbps")])
    add_product(billing_runtime, demo_bilateral, "P2", [(utc(2025, 3, 10), None, "accessEline", "1Gbps")])
    march_run(billing_runtime, demo_bilateral)
    with billing_runtime.db.read() as session:
        leaves = session.exec(select(LogLeaf).order_by(LogLeaf.seq)).all()
        assert [leaf.seq for leaf in leaves] == list(range(len(leaves)))
        for leaf in leaves:
            record = json.loads(leaf.record)
            assert canonical_json(record) == leaf.record
            table = {"customerBill": CustomerBill, "customerBillItem": CustomerBillItem, "billingRun": BillingRun}
            row = session.get(table[leaf.resource_type], leaf.resource_id)
            assert row is not None and row.version == record["version"] == 1
            # What a verifier recomputes from the stored (and served) document is what the log holds.
            assert state_hash(row.document).hex() == record["stateHash"]
            if isinstance(row, CustomerBill | BillingRun):  # dates went in through the bulk path as the ORM's
                assert (row.period_start, row.period_end) == MARCH
