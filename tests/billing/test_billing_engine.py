"""The rating engine against hand-worked examples; every expected amount is computed here from first principles
(Decimal arithmetic on days and rates), not by the engine's own Fraction path."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest

from billing.factories import MARCH, VAT, make_terms, make_version, utc
from sonata_dlt.bilateral.rating.engine import (
    AdjustmentInput,
    Discount,
    LineKind,
    Period,
    RatingError,
    SlaEvent,
    SlaRule,
    SlaTier,
    TaxRule,
    UsageTotal,
    rate,
)
from sonata_dlt.bilateral.rating.money import Rounding, round_fraction
from sonata_dlt.bilateral.rating.periods import Proration, add_months, month_fraction

CENT = Decimal("0.01")
PERIOD = Period(*MARCH)


def cents(amount: Decimal) -> int:
    return int(amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100)


def test_a_mid_month_upgrade_splits_the_recurring_charge_by_seconds_active() -> None:
    # 100 Mbps until 16 March 00:00, 1 Gbps from then: 15 of March's 31 days at 300, 16 at 900.
    versions = [
        make_version(version=1, start=utc(2025, 2, 1), end=utc(2025, 3, 16)),
        make_version(version=2, bandwidth="1Gbps", start=utc(2025, 3, 16), end=None),
    ]
    bill = rate(make_terms(), PERIOD, versions)

    recurring = [line for line in bill.lines if line.kind is LineKind.RECURRING]
    assert [line.amount_minor for line in recurring] == [
        cents(Decimal(300) * 15 / 31),  # 145.16
        cents(Decimal(900) * 16 / 31),  # 464.52
    ]
    assert [line.key for line in recurring] == ["P1/recurring/v1", "P1/recurring/v2"]
    assert recurring[0].end == recurring[1].start == utc(2025, 3, 16)
    # Activated in February: no one-off charge in March.
    assert all(line.kind is not LineKind.ONE_OFF for line in bill.lines)
    assert bill.totals.tax_excluded == 14516 + 46452


def test_a_mid_day_upgrade_under_the_days_basis_gives_the_day_to_the_new_version() -> None:
    versions = [
        make_version(version=1, start=utc(2025, 3, 1), end=utc(2025, 3, 10, 12)),
        make_version(version=2, bandwidth="1Gbps", start=utc(2025, 3, 10, 12), end=None),
    ]
    bill = rate(make_terms(proration=Proration.DAYS), PERIOD, versions)
    recurring = [line.amount_minor for line in bill.lines if line.kind is LineKind.RECURRING]
    # 1..9 March at the old bandwidth (9 days), 10..31 March at the new one (22 days).
    assert recurring == [cents(Decimal(300) * 9 / 31), cents(Decimal(900) * 22 / 31)]
    one_off = [line.amount_minor for line in bill.lines if line.kind is LineKind.ONE_OFF]
    assert one_off == [15000]  # activated on 1 March: the activation charge once, for the first version only


def test_termination_before_the_minimum_term_charges_the_early_termination_fee() -> None:
    # Activated 1 Jan 2025 with a 12-month minimum term, terminated 11 March 2025 00:00, 50 % fee.
    versions = [make_version(product_type="uni", bandwidth="10Gbps", end=utc(2025, 3, 11), terminated=True)]
    terms = make_terms(default_minimum_term_months=12, early_termination_percent=Decimal(50))
    bill = rate(terms, PERIOD, versions)

    recurring, fee = bill.lines
    assert recurring.amount_minor == cents(Decimal(500) * 10 / 31)  # 1..10 March
    # Months left: 21/31 of March, then April..December (9 whole months).
    months_left = Decimal(9) + Decimal(21) / Decimal(31)
    assert fee.kind is LineKind.TERMINATION_FEE
    assert fee.amount_minor == cents(Decimal(500) * months_left * Decimal("0.5"))
    assert bill.totals.fees == fee.amount_minor
    assert fee.end == utc(2026, 1, 1)


def test_no_fee_once_the_minimum_term_is_served() -> None:
    versions = [
        make_version(
            product_type="uni", bandwidth="10Gbps", start=utc(2024, 1, 1), end=utc(2025, 3, 11), terminated=True
        )
    ]
    terms = make_terms(default_minimum_term_months=12, early_termination_percent=Decimal(50))
    assert [line.kind for line in rate(terms, PERIOD, versions).lines] == [LineKind.RECURRING]


def test_discount_applies_to_the_rounded_recurring_lines_of_the_named_product_types() -> None:
    versions = [make_version("P1", start=utc(2025, 1, 1)), make_version("P2", product_type="uni", bandwidth="10Gbps")]
    terms = make_terms(discounts=(Discount("D10", "10 % volume discount", Decimal("12.5"), frozenset({"uni"})),))
    bill = rate(terms, PERIOD, versions)
    discounts = [line for line in bill.lines if line.kind is LineKind.DISCOUNT]
    assert [(d.product_id, d.amount_minor) for d in discounts] == [("P2", -cents(Decimal(500) * Decimal("0.125")))]
    assert bill.totals.discounts == 6250
    assert bill.totals.tax_excluded == 30000 + 50000 - 6250


def test_sla_credit_takes_the_deepest_tier_the_availability_falls_under() -> None:
    # Two hours down in a 31-day month: availability 1 - 7200 / 2678400 = 99.73 %, under 99.9 but not under 99.5.
    terms = make_terms(
        sla_rules=(SlaRule("AVAIL", (SlaTier(Decimal("99.9"), Decimal(10)), SlaTier(Decimal("99.5"), Decimal(25)))),)
    )
    availability = (1 - Decimal(7200) / Decimal(31 * 86400)) * 100
    assert Decimal("99.5") < availability < Decimal("99.9")
    bill = rate(terms, PERIOD, [make_version()], sla_events=[SlaEvent("P1", 3600), SlaEvent("P1", 3600)])
    credit = next(line for line in bill.lines if line.kind is LineKind.SLA_CREDIT)
    assert credit.amount_minor == -cents(Decimal(300) * Decimal("0.10"))
    assert bill.totals.credits == 3000

    deep = rate(terms, PERIOD, [make_version()], sla_events=[SlaEvent("P1", 5 * 3600)])  # 99.33 %
    assert next(line for line in deep.lines if line.kind is LineKind.SLA_CREDIT).amount_minor == -7500


def test_tax_is_per_line_and_totals_add_up() -> None:
    versions = [
        make_version(version=1, start=utc(2025, 2, 1), end=utc(2025, 3, 16)),
        make_version(version=2, bandwidth="1Gbps", start=utc(2025, 3, 16), end=None),
    ]
    reduced = TaxRule("state", "reduced", Decimal("5.5"), frozenset({LineKind.USAGE}))
    terms = make_terms(taxes=(VAT, reduced), usage_rates={("accessEline", "gigabytes"): Decimal("0.0125")})
    usage = [UsageTotal("P1", "gigabytes", "GB", Decimal("1234.5"))]
    bill = rate(terms, PERIOD, versions, usage=usage)

    line_amounts = [
        cents(Decimal(300) * 15 / 31),
        cents(Decimal(900) * 16 / 31),
        cents(Decimal("1234.5") * Decimal("0.0125")),
    ]
    assert [line.amount_minor for line in bill.lines] == line_amounts
    vat = [cents(Decimal(amount) / 100 * Decimal("0.20")) for amount in line_amounts]
    usage_state_tax = cents(Decimal(line_amounts[2]) / 100 * Decimal("0.055"))
    assert [line.tax_minor for line in bill.lines] == [vat[0], vat[1], vat[2] + usage_state_tax]
    assert bill.totals.tax_excluded == sum(line_amounts)
    assert bill.totals.tax == sum(vat) + usage_state_tax
    assert bill.totals.amount_due == sum(line_amounts) + sum(vat) + usage_state_tax
    assert bill.totals.tax_items == (("country", Decimal(20), sum(vat)), ("state", Decimal("5.5"), usage_state_tax))


def test_held_products_are_not_billed_and_are_listed() -> None:
    bill = rate(make_terms(), PERIOD, [make_version("P1"), make_version("P2")], held={"P2": "seller-only"})
    assert {line.product_id for line in bill.lines} == {"P1"}
    assert bill.held == (("P2", "seller-only"),)


def test_adjustments_become_lines_with_their_taxes() -> None:
    adjustment = AdjustmentInput("ADJ-1", -2500, "credit note for dispute D-1", "P1", "Access E-Line", "PO-P1", "1")
    bill = rate(make_terms(taxes=(VAT,)), PERIOD, [make_version()], adjustments=[adjustment])
    line = bill.lines[-1]
    assert (line.kind, line.amount_minor, line.tax_minor) == (LineKind.ADJUSTMENT, -2500, -500)
    assert bill.totals.credits == 2500


def test_missing_price_and_unknown_usage_are_refused() -> None:
    with pytest.raises(RatingError, match="no price for accessEline at 10Mbps"):
        rate(make_terms(), PERIOD, [make_version(bandwidth="10Mbps")])
    with pytest.raises(RatingError, match="no usage rate"):
        rate(make_terms(), PERIOD, [make_version()], usage=[UsageTotal("P1", "minutes", "min", Decimal(1))])


@pytest.mark.parametrize(
    ("value", "mode", "expected"),
    [
        (Fraction(5, 2), Rounding.HALF_UP, 3),
        (Fraction(-5, 2), Rounding.HALF_UP, -3),
        (Fraction(5, 2), Rounding.HALF_EVEN, 2),
        (Fraction(7, 2), Rounding.HALF_EVEN, 4),
        (Fraction(5, 2), Rounding.HALF_DOWN, 2),
        (Fraction(-5, 2), Rounding.DOWN, -2),
        (Fraction(-5, 2), Rounding.FLOOR, -3),
        (Fraction(21, 10), Rounding.UP, 3),
        (Fraction(21, 10), Rounding.CEILING, 3),
        (Fraction(-21, 10), Rounding.CEILING, -2),
    ],
)
def test_rounding_rules_match_decimal(value: Fraction, mode: Rounding, expected: int) -> None:
    assert round_fraction(value, mode) == expected
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    assert int(exact.quantize(Decimal(1), rounding=mode.value)) == expected


def test_the_agreement_rounding_rule_is_applied_once_per_line() -> None:
    # 0.125 EUR of usage: half-up gives 0.13, half-even 0.12.
    usage = [UsageTotal("P1", "gigabytes", "GB", Decimal(1))]
    for mode, expected in ((Rounding.HALF_UP, ROUND_HALF_UP), (Rounding.HALF_EVEN, ROUND_HALF_EVEN)):
        terms = make_terms(rounding=mode, usage_rates={("accessEline", "gigabytes"): Decimal("0.125")})
        line = next(x for x in rate(terms, PERIOD, [make_version()], usage=usage).lines if x.kind is LineKind.USAGE)
        assert line.amount_minor == int(Decimal("0.125").quantize(CENT, rounding=expected) * 100)


def test_calendar_helpers() -> None:
    assert add_months(utc(2025, 1, 31), 1) == utc(2025, 2, 28)
    assert add_months(utc(2024, 11, 15), 3) == utc(2025, 2, 15)
    assert month_fraction(utc(2025, 2, 1), utc(2025, 4, 1), Proration.SECONDS) == 2
    assert month_fraction(utc(2025, 2, 15), utc(2025, 3, 1), Proration.DAYS) == Fraction(14, 28)
