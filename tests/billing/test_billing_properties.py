"""Properties: a bill's totals are the sums of its items, bills are reproducible, netting is antisymmetric."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.factories import MARCH, VAT, make_terms, make_version, utc
from sonata_dlt.bilateral.billing import bills
from sonata_dlt.bilateral.rating.engine import Discount, Period, ProductVersion, SlaEvent, SlaRule, SlaTier, rate
from sonata_dlt.bilateral.rating.money import Rounding
from sonata_dlt.bilateral.settlement import Obligation, net_positions
from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.transparency.canonical import canonical_json

BILATERAL = BilateralRef("b1", "BUYER-1", "SELLER-1", "origin")
BANDWIDTHS = ("100Mbps", "1Gbps")


@st.composite
def histories(draw: st.DrawFn) -> list[ProductVersion]:
    versions = []
    for index in range(draw(st.integers(1, 6))):
        cuts = sorted(draw(st.lists(st.integers(0, 90 * 86400), min_size=1, max_size=4, unique=True)))
        start = utc(2025, 1, 15)
        terminated = draw(st.booleans())
        for number, cut in enumerate(cuts, start=1):
            end = utc(2025, 1, 15) + timedelta(seconds=cut) if number < len(cuts) or terminated else None
            if end is not None and end <= start:
                continue
            versions.append(
                make_version(
                    f"P{index}",
                    version=number,
                    start=start,
                    end=end,
                    bandwidth=draw(st.sampled_from(BANDWIDTHS)),
                    terminated=terminated and number == len(cuts),
                )
            )
            if end is None:
                break
            start = end
    return versions


def property_terms(rounding: Rounding) -> object:
    return make_terms(
        rounding=rounding,
        taxes=(VAT,),
        discounts=(Discount("D", "discount", Decimal("7.5")),),
        sla_rules=(SlaRule("S", (SlaTier(Decimal("99.9"), Decimal(5)), SlaTier(Decimal(99), Decimal(15)))),),
        default_minimum_term_months=12,
        early_termination_percent=Decimal(40),
    )


@settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from(list(Rounding)), st.integers(0, 200_000))
def test_bill_totals_are_the_sums_of_its_items(versions: list[ProductVersion], rounding: Rounding, outage: int) -> None:
    terms = property_terms(rounding)
    events = [SlaEvent(v.product_id, outage) for v in versions[:1]]
    rated = rate(terms, Period(*MARCH), versions, sla_events=events)  # type: ignore[arg-type]
    built = bills.build(BILATERAL, terms, rated, "BR-1")  # type: ignore[arg-type]
    items = [document for _, document in built.items]
    cents = lambda money: round(Decimal(str(money["value"])) * 100)  # noqa: E731
    assert cents(built.document["taxExcludedAmount"]) == sum(cents(item["taxExcludedAmount"]) for item in items)
    item_tax = sum(cents(tax["amount"]) for item in items for tax in item["appliedTax"])
    assert cents(built.document["taxIncludedAmount"]) == cents(built.document["taxExcludedAmount"]) + item_tax
    assert cents(built.document["amountDue"]) == cents(built.document["taxIncludedAmount"])
    assert sum(cents(tax["taxAmount"]) for tax in built.document["taxItem"]) == item_tax
    assert [ref["id"] for ref in built.document["customerBillItem"]] == [item["id"] for item in items]


@settings(max_examples=40, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_the_same_inputs_give_byte_identical_bills_whatever_their_order(
    versions: list[ProductVersion], rnd: random.Random
) -> None:
    terms = property_terms(Rounding.HALF_EVEN)
    shuffled = list(versions)
    rnd.shuffle(shuffled)
    first = bills.build(BILATERAL, terms, rate(terms, Period(*MARCH), versions), "BR-1")  # type: ignore[arg-type]
    second = bills.build(BILATERAL, terms, rate(terms, Period(*MARCH), shuffled), "BR-1")  # type: ignore[arg-type]
    assert canonical_json([first.document, [d for _, d in first.items]]) == canonical_json(
        [second.document, [d for _, d in second.items]]
    )


obligations = st.lists(
    st.builds(
        Obligation,
        debtor=st.sampled_from(["A", "B", "C"]),
        creditor=st.sampled_from(["A", "B", "C"]),
        currency=st.sampled_from(["EUR", "USD"]),
        amount_minor=st.integers(0, 10**9),
    ),
    max_size=30,
)


@given(obligations)
def test_netting_is_antisymmetric_and_balanced(items: list[Obligation]) -> None:
    forward = net_positions(items)
    backward = net_positions(Obligation(o.creditor, o.debtor, o.currency, o.amount_minor) for o in items)
    for currency, positions in forward.items():
        assert sum(positions.values()) == 0
        assert {party: -value for party, value in positions.items()} == backward[currency]
