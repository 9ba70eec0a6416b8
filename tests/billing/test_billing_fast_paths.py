"""The billing run's fast paths give exactly what the plain paths give.

- ``round_ratio`` on integer ratios (any common factor) rounds like ``round_fraction`` on the reduced Fraction;
- the engine's integer arithmetic gives the amounts of the Fraction formula;
- ``bills.build``'s templated item JSON is ``canonical_json`` of the item document, which is ``item_document``'s;
- ``canonical_json_trusted`` equals ``canonical_json`` on plain values.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.factories import MARCH, make_terms, make_version, utc
from sonata_dlt.bilateral.billing import bills
from sonata_dlt.bilateral.rating.engine import LineKind, Period, Price, TaxRule, UsageTotal, rate
from sonata_dlt.bilateral.rating.money import Rounding, round_fraction, round_ratio, to_minor_fraction
from sonata_dlt.bilateral.rating.periods import Proration, month_fraction
from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.transparency.canonical import _is_plain, canonical_json, canonical_json_trusted

BILATERAL = BilateralRef("b1", "BUYER-1", "SELLER-1", "origin")

decimals = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@given(
    st.integers(-(10**12), 10**12),
    st.integers(1, 10**9),
    st.integers(1, 10**6),
    st.sampled_from(list(Rounding)),
)
def test_round_ratio_equals_round_fraction_for_unreduced_ratios(
    numerator: int, denominator: int, factor: int, mode: Rounding
) -> None:
    assert round_ratio(numerator * factor, denominator * factor, mode) == round_fraction(
        Fraction(numerator, denominator), mode
    )


@settings(max_examples=60, deadline=None)
@given(
    monthly=decimals,
    tax_rate=st.decimals(min_value=Decimal(0), max_value=Decimal(30), places=3),
    usage_rate=decimals,
    quantity=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3),
    start_seconds=st.integers(0, 45 * 86400),
    mode=st.sampled_from(list(Rounding)),
    proration=st.sampled_from(list(Proration)),
    exponent=st.sampled_from([0, 2, 3]),
)
def test_the_integer_engine_gives_the_fraction_formula(
    monthly: Decimal,
    tax_rate: Decimal,
    usage_rate: Decimal,
    quantity: Decimal,
    start_seconds: int,
    mode: Rounding,
    proration: Proration,
    exponent: int,
) -> None:
    terms = make_terms(
        rounding=mode,
        proration=proration,
        exponent=exponent,
        prices={("accessEline", "100Mbps"): Price(monthly, monthly / 3)},
        usage_rates={("accessEline", "gb"): usage_rate},
        taxes=(TaxRule("country", "VAT", tax_rate),),
    )
    start = utc(2025, 2, 1) + timedelta(seconds=start_seconds)
    period = Period(*MARCH)
    rated = rate(terms, period, [make_version(start=start)], usage=[UsageTotal("P1", "gb", "GB", quantity)])
    lines = {line.kind: line for line in rated.lines}
    span_start = max(start, period.start)
    months = month_fraction(span_start, period.end, proration)
    expected = round_fraction(to_minor_fraction(monthly, exponent) * months, mode)
    assert lines[LineKind.RECURRING].amount_minor == expected
    assert lines[LineKind.USAGE].amount_minor == round_fraction(
        to_minor_fraction(usage_rate, exponent) * Fraction(quantity), mode
    )
    for line in rated.lines:
        for tax in line.taxes:
            assert tax.amount_minor == round_fraction(Fraction(line.amount_minor) * Fraction(tax_rate) / 100, mode)


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    name=text,
    order_id=text,
    monthly=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(10**9), places=5),
    tax_rate=st.decimals(min_value=Decimal(0), max_value=Decimal(30), places=4),
    usage_rate=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10), places=6),
    quantity=st.decimals(min_value=Decimal(0), max_value=Decimal(10**12), places=2),
    start_seconds=st.integers(0, 45 * 86400),
)
def test_templated_item_json_is_the_canonical_json_of_item_document(
    name: str,
    order_id: str,
    monthly: Decimal,
    tax_rate: Decimal,
    usage_rate: Decimal,
    quantity: Decimal,
    start_seconds: int,
) -> None:
    # Tiny rates and quantities, huge amounts and any Unicode (quotes, controls, astral characters) in the
    # strings: numbers and strings the trusted encoder could not write take the general path.
    terms = make_terms(
        prices={("accessEline", "100Mbps"): Price(monthly)},
        usage_rates={("accessEline", "gb"): usage_rate},
        taxes=(TaxRule("country", 'VAT "ü"\n', tax_rate),),
    )
    version = make_version(name=name, order_id=order_id, start=utc(2025, 2, 1) + timedelta(seconds=start_seconds))
    rated = rate(terms, Period(*MARCH), [version], usage=[UsageTotal("P1", "gb", "GB\u2028", quantity)])
    built = bills.build(BILATERAL, terms, rated, "BR-1")
    assert built.item_canonical is not None
    assert built.canonical == canonical_json(built.document)
    for line, item_id, encoded in zip(built.lines, built.item_ids, built.item_canonical, strict=True):
        assert encoded == canonical_json(bills.item_document(line, item_id, built.bill_id, terms))
    assert [document for _, document in built.items] == [
        bills.item_document(line, item_id, built.bill_id, terms)
        for line, item_id in zip(built.lines, built.item_ids, strict=True)
    ]


plain_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.text(st.characters(exclude_categories=["Cs"])),
    st.integers(-(2**53), 2**53),
    st.floats(min_value=1e-4, max_value=1e15, allow_nan=False).filter(lambda x: not x.is_integer()),
)
plain_values = st.recursive(
    plain_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=6), plain_values, max_size=6))
def test_trusted_encoding_equals_canonical_json_on_plain_values(value: dict[str, Any]) -> None:
    assert _is_plain(value)
    assert canonical_json_trusted(value) == canonical_json(value)
