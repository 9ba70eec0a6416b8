"""The rating engine: bill lines and totals from agreement terms, product versions, usage and SLA events.

Pure: no database, no clock, no randomness. The same inputs always give the same lines in the same order, which
is what makes a bill reproducible byte for byte. ``billing_run`` loads the inputs and persists the result.

Rules (each line is rounded once, to the currency's minor unit, with the agreement's rounding rule):

- **recurring**: one line per product version active in the period. Monthly rate (price list entry for the
  version's product type and bandwidth) x months active (``periods.month_fraction``: seconds or days per
  calendar month). A mid-period bandwidth change therefore splits the product into two lines.
- **one-off**: the price list's activation charge, when the product's first version starts inside the period.
- **usage**: quantity x the agreement's rate for (product type, metric), per usage total.
- **discount**: per product and discount rule, minus percent x the sum of that product's (already rounded)
  recurring lines.
- **SLA credit**: per product, availability = 1 - outage seconds / active seconds in the period; the largest
  credit percent of the tiers whose threshold it falls below, times the product's recurring lines, negative.
- **early-termination fee**: when a product ends (terminated) in the period before its minimum term, percent x
  the last monthly rate x the months left to the end of the term.
- **adjustment**: an agreed dispute resolution (credit negative, debit positive), as given.
- **tax**: every tax rule that applies to a line's kind, rate percent x the line amount, rounded per line and tax.

Totals: taxExcluded = sum of lines; tax = sum of line taxes; taxIncluded = taxExcluded + tax = amountDue;
discounts, credits (SLA credits and credit adjustments) and fees (early-termination fees) as positive magnitudes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

from sonata_dlt.bilateral.rating.money import Rounding, round_fraction, round_ratio, to_minor_fraction
from sonata_dlt.bilateral.rating.periods import Proration, add_months, month_fraction, overlap, seconds

ONE_HUNDRED = Fraction(100)


class LineKind(StrEnum):
    RECURRING = "recurring"
    ONE_OFF = "oneOff"
    USAGE = "usage"
    DISCOUNT = "discount"
    SLA_CREDIT = "slaCredit"
    TERMINATION_FEE = "earlyTerminationFee"
    ADJUSTMENT = "adjustment"


# MEF's MEFPriceType for each kind of line (customerBillItemType).
PRICE_TYPE: dict[LineKind, str] = {
    LineKind.RECURRING: "recurring",
    LineKind.ONE_OFF: "nonRecurring",
    LineKind.USAGE: "usageBased",
    LineKind.DISCOUNT: "recurring",
    LineKind.SLA_CREDIT: "nonRecurring",
    LineKind.TERMINATION_FEE: "nonRecurring",
    LineKind.ADJUSTMENT: "nonRecurring",
}

# Lines are ordered by product, then by this rank, then by their own key: a stable reading order.
_RANK = {kind: rank for rank, kind in enumerate(LineKind)}
_VALUE = {kind: kind.value for kind in LineKind}  # an Enum's .value is a Python-level property: read once


@dataclass(frozen=True)
class Price:
    monthly: Decimal  # recurring rate per calendar month, major units
    activation: Decimal = Decimal(0)  # one-off charge on activation, major units


@dataclass(frozen=True)
class Discount:
    id: str
    description: str
    percent: Decimal
    product_types: frozenset[str] = frozenset()  # empty: every product type


@dataclass(frozen=True)
class SlaTier:
    below_percent: Decimal  # availability strictly below this (percent) ...
    credit_percent: Decimal  # ... credits this percent of the product's recurring charge


@dataclass(frozen=True)
class SlaRule:
    id: str
    tiers: tuple[SlaTier, ...]
    product_types: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TaxRule:
    category: str  # MEF CustomerBillItemTaxCategory: country | state | county | city | other
    description: str
    rate: Decimal  # percent
    kinds: frozenset[LineKind] = frozenset()  # empty: every kind of line


@dataclass(frozen=True)
class Terms:
    """What the engine needs from an approved agreement version."""

    agreement_id: str
    agreement_version: int
    currency: str
    exponent: int  # minor digits of the currency
    rounding: Rounding
    proration: Proration
    prices: Mapping[tuple[str, str], Price]  # (product type, bandwidth) -> price
    usage_rates: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)  # (product type, metric) -> rate
    discounts: tuple[Discount, ...] = ()
    sla_rules: tuple[SlaRule, ...] = ()
    taxes: tuple[TaxRule, ...] = ()
    minimum_term_months: Mapping[str, int] = field(default_factory=dict)  # product type -> months
    default_minimum_term_months: int = 0
    early_termination_percent: Decimal = Decimal(0)
    payment_days: int = 30


class ProductVersion(NamedTuple):
    """One version of a product and when it was in effect: ``[start, end)``, ``end`` None while still active.

    Like ``Line``, an immutable record a run makes hundreds of thousands of: a NamedTuple is built in a third of
    the time a frozen dataclass's ``__init__`` takes."""

    product_id: str
    version: int
    product_type: str
    bandwidth: str
    name: str
    start: datetime
    end: datetime | None
    order_id: str
    order_item_id: str
    terminated: bool = False  # ``end`` is the product's termination, not a change to the next version


@dataclass(frozen=True)
class UsageTotal:
    product_id: str
    metric: str
    unit: str
    quantity: Decimal


@dataclass(frozen=True)
class SlaEvent:
    product_id: str
    outage_seconds: int


@dataclass(frozen=True)
class AdjustmentInput:
    id: str
    amount_minor: int  # negative: credit note; positive: debit note
    description: str
    product_id: str
    product_name: str
    order_id: str
    order_item_id: str


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class LineTax:
    category: str
    description: str
    rate: Decimal
    amount_minor: int


class Line(NamedTuple):
    """One bill line, which becomes one bill item. A NamedTuple (immutable, like the frozen dataclasses here) because
    a run builds one per item, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) took a
    third of the rating time."""

    key: str  # unique within the bill; the line's id is derived from it
    kind: LineKind
    product_id: str
    product_name: str
    order_id: str
    order_item_id: str
    description: str
    start: datetime
    end: datetime
    unit: str
    quantity: Decimal
    unit_rate: Decimal
    amount_minor: int
    taxes: tuple[LineTax, ...]

    @property
    def tax_minor(self) -> int:
        return sum(tax.amount_minor for tax in self.taxes)


@dataclass(frozen=True)
class Totals:
    tax_excluded: int
    tax: int
    tax_included: int
    discounts: int
    credits: int
    fees: int
    tax_items: tuple[tuple[str, Decimal, int], ...]  # (category, rate, amount) sorted

    @property
    def amount_due(self) -> int:
        return self.tax_included


@dataclass(frozen=True)
class RatedBill:
    period: Period
    lines: tuple[Line, ...]
    totals: Totals
    held: tuple[tuple[str, str], ...]  # (product id, reason), sorted


class RatingError(ValueError):
    """The inputs cannot be rated (no price for a product, usage in an unknown metric...)."""


def _quantity(value: Fraction) -> Decimal:
    # Shown on the line for reading only; the amount is computed from the exact fraction.
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001"))


class _Exact:
    """One rating's exact integer arithmetic, memoised.

    Rates are held as integer ratios (``Decimal.as_integer_ratio``) and products of ratios are rounded by
    ``round_ratio`` without building Fractions: the same exact values, rounded once per line by the same rule
    (``round_ratio`` equals ``round_fraction`` for every ratio; a property test holds the two paths equal).
    A bill repeats the same spans, prices and amounts many times, so month fractions, recurring amounts, percentages
    and line taxes are computed once per distinct input.
    """

    def __init__(self, terms: Terms) -> None:
        self.terms = terms
        self.scale = 10**terms.exponent
        self._months: dict[tuple[datetime, datetime], tuple[Fraction, Decimal]] = {}
        self._taxes: dict[tuple[LineKind, int], tuple[LineTax, ...]] = {}
        self._minor: dict[Decimal, tuple[int, int]] = {}
        self._recurring: dict[tuple[Decimal, datetime, datetime], tuple[int, Decimal]] = {}
        self._percents: dict[tuple[int, Decimal], int] = {}
        self._tax_rules = [(rule, *rule.rate.as_integer_ratio()) for rule in terms.taxes]

    def months(self, start: datetime, end: datetime) -> tuple[Fraction, Decimal]:
        """Calendar months in ``[start, end)`` and that figure as shown on a line."""
        key = (start, end)
        found = self._months.get(key)
        if found is None:
            months = month_fraction(start, end, self.terms.proration)
            found = self._months[key] = (months, _quantity(months))
        return found

    def recurring(self, monthly: Decimal, start: datetime, end: datetime) -> tuple[int, Decimal]:
        """A monthly rate prorated over ``[start, end)``: the line amount, rounded once, and the months shown."""
        key = (monthly, start, end)
        found = self._recurring.get(key)
        if found is None:
            months, shown = self.months(start, end)
            numerator, denominator = self.minor(monthly)
            amount = self.round(numerator * months.numerator, denominator * months.denominator)
            found = self._recurring[key] = (amount, shown)
        return found

    def minor(self, amount: Decimal) -> tuple[int, int]:
        """A major-unit Decimal as an exact ratio of minor units (numerator, positive denominator)."""
        found = self._minor.get(amount)
        if found is None:
            numerator, denominator = amount.as_integer_ratio()
            found = self._minor[amount] = (numerator * self.scale, denominator)
        return found

    def round(self, numerator: int, denominator: int) -> int:
        return round_ratio(numerator, denominator, self.terms.rounding)

    def percent_of(self, base: int, percent: Decimal) -> int:
        """``base x percent / 100``, rounded once."""
        key = (base, percent)
        found = self._percents.get(key)
        if found is None:
            numerator, denominator = percent.as_integer_ratio()
            found = self._percents[key] = self.round(base * numerator, denominator * 100)
        return found

    def taxes(self, kind: LineKind, amount: int) -> tuple[LineTax, ...]:
        key = (kind, amount)
        found = self._taxes.get(key)
        if found is None:
            found = self._taxes[key] = tuple(
                LineTax(rule.category, rule.description, rule.rate, self.round(amount * numerator, denominator * 100))
                for rule, numerator, denominator in self._tax_rules
                if not rule.kinds or kind in rule.kinds
            )
        return found


def rate(
    terms: Terms,
    period: Period,
    versions: Iterable[ProductVersion],
    *,
    usage: Iterable[UsageTotal] = (),
    sla_events: Iterable[SlaEvent] = (),
    adjustments: Iterable[AdjustmentInput] = (),
    held: Mapping[str, str] | None = None,
) -> RatedBill:
    """Rate one bilateral for one period. ``held`` maps product ids that must not be billed to the reason."""
    if period.start >= period.end:
        raise RatingError("the period must end after it starts")
    held = dict(held or {})
    exp_scale = 10**terms.exponent
    exact = _Exact(terms)
    by_product: dict[str, list[ProductVersion]] = defaultdict(list)
    for version in versions:
        by_product[version.product_id].append(version)

    proration = terms.proration.value
    lines: list[Line] = []
    recurring_base: dict[str, int] = defaultdict(int)
    active_seconds: dict[str, int] = defaultdict(int)
    product_type_of: dict[str, ProductVersion] = {}
    for product_id in sorted(by_product):
        history = sorted(by_product[product_id], key=lambda v: (v.start, v.version))
        if product_id in held:
            continue
        product_type_of[product_id] = history[-1]
        first = history[0]
        for version in history:
            end = version.end or period.end
            part = overlap(version.start, end, period.start, period.end)
            if part is None:
                continue
            price = _price(terms, version)
            amount, shown_months = exact.recurring(price.monthly, part[0], part[1])
            active_seconds[product_id] += seconds(*part)
            recurring_base[product_id] += amount
            lines.append(
                _line(
                    exact,
                    version,
                    LineKind.RECURRING,
                    f"v{version.version}",
                    part,
                    "month",
                    shown_months,
                    price.monthly,
                    amount,
                    f"{version.name} {version.bandwidth}, monthly charge prorated by {proration}",
                )
            )
            if version is first and period.start <= version.start < period.end and price.activation:
                one_off = exact.round(*exact.minor(price.activation))
                lines.append(
                    _line(
                        exact,
                        version,
                        LineKind.ONE_OFF,
                        "activation",
                        (version.start, version.start),
                        "each",
                        Decimal(1),
                        price.activation,
                        one_off,
                        f"{version.name} activation charge",
                    )
                )
        last = history[-1]
        if last.terminated and last.end is not None and period.start <= last.end < period.end:
            lines.extend(_termination_fee(exact, first, last, last.end))

    for total in sorted(usage, key=lambda u: (u.product_id, u.metric)):
        if total.product_id in held:
            continue
        owner = product_type_of.get(total.product_id)
        if owner is None:
            raise RatingError(f"usage for product {total.product_id} that was not active in the period")
        unit_rate = terms.usage_rates.get((owner.product_type, total.metric))
        if unit_rate is None:
            raise RatingError(f"the agreement has no usage rate for {owner.product_type} / {total.metric}")
        rate_n, rate_d = exact.minor(unit_rate)
        quantity_n, quantity_d = total.quantity.as_integer_ratio()
        amount = exact.round(rate_n * quantity_n, rate_d * quantity_d)
        lines.append(
            _line(
                exact,
                owner,
                LineKind.USAGE,
                total.metric,
                (period.start, period.end),
                total.unit,
                total.quantity,
                unit_rate,
                amount,
                f"{owner.name} usage: {total.metric}",
            )
        )

    for product_id, base in sorted(recurring_base.items()):
        owner = product_type_of[product_id]
        for discount in terms.discounts:
            if discount.product_types and owner.product_type not in discount.product_types:
                continue
            amount = -exact.percent_of(base, discount.percent)
            if amount:
                lines.append(
                    _line(
                        exact,
                        owner,
                        LineKind.DISCOUNT,
                        discount.id,
                        (period.start, period.end),
                        "percent",
                        discount.percent,
                        Decimal(base) / exp_scale,
                        amount,
                        discount.description,
                    )
                )

    outages: dict[str, int] = defaultdict(int)
    for event in sla_events:
        outages[event.product_id] += event.outage_seconds
    for product_id, outage in sorted(outages.items()):
        if product_id in held or product_id not in recurring_base or not active_seconds[product_id]:
            continue
        owner = product_type_of[product_id]
        availability = (1 - Fraction(min(outage, active_seconds[product_id]), active_seconds[product_id])) * 100
        for rule in terms.sla_rules:
            if rule.product_types and owner.product_type not in rule.product_types:
                continue
            credit_percent = max(
                (tier.credit_percent for tier in rule.tiers if availability < Fraction(tier.below_percent)),
                default=None,
            )
            if credit_percent is None:
                continue
            base = recurring_base[product_id]
            amount = -exact.percent_of(base, credit_percent)
            shown = _quantity(availability)
            lines.append(
                _line(
                    exact,
                    owner,
                    LineKind.SLA_CREDIT,
                    rule.id,
                    (period.start, period.end),
                    "percent",
                    credit_percent,
                    Decimal(base) / exp_scale,
                    amount,
                    f"SLA credit {rule.id}: availability {shown}% over {outage} s of outage",
                )
            )

    for adjustment in sorted(adjustments, key=lambda a: a.id):
        lines.append(
            Line(
                key=f"{adjustment.product_id}/{LineKind.ADJUSTMENT.value}/{adjustment.id}",
                kind=LineKind.ADJUSTMENT,
                product_id=adjustment.product_id,
                product_name=adjustment.product_name,
                order_id=adjustment.order_id,
                order_item_id=adjustment.order_item_id,
                description=adjustment.description,
                start=period.start,
                end=period.end,
                unit="each",
                quantity=Decimal(1),
                unit_rate=Decimal(adjustment.amount_minor) / exp_scale,
                amount_minor=adjustment.amount_minor,
                taxes=exact.taxes(LineKind.ADJUSTMENT, adjustment.amount_minor),
            )
        )

    lines.sort(key=lambda line: (line.product_id, _RANK[line.kind], line.key))
    return RatedBill(period=period, lines=tuple(lines), totals=totals_of(lines), held=tuple(sorted(held.items())))


def _price(terms: Terms, version: ProductVersion) -> Price:
    price = terms.prices.get((version.product_type, version.bandwidth))
    if price is None:
        raise RatingError(
            f"the agreement has no price for {version.product_type} at {version.bandwidth}"
            f" (product {version.product_id} version {version.version})"
        )
    return price


def _termination_fee(exact: _Exact, first: ProductVersion, last: ProductVersion, ended: datetime) -> list[Line]:
    terms = exact.terms
    months = terms.minimum_term_months.get(last.product_type, terms.default_minimum_term_months)
    term_end = add_months(first.start, months)
    if months <= 0 or ended >= term_end or not terms.early_termination_percent:
        return []
    remaining = month_fraction(ended, term_end, terms.proration)
    monthly = _price(terms, last).monthly
    fee = to_minor_fraction(monthly, terms.exponent) * remaining * Fraction(terms.early_termination_percent)
    amount = round_fraction(fee / ONE_HUNDRED, terms.rounding)
    if not amount:
        return []
    return [
        _line(
            exact,
            last,
            LineKind.TERMINATION_FEE,
            "fee",
            (ended, term_end),
            "month",
            _quantity(remaining),
            monthly * terms.early_termination_percent / 100,
            amount,
            f"early termination fee: {terms.early_termination_percent}% of the monthly charge for the"
            f" {_quantity(remaining)} months left of the {months}-month minimum term",
        )
    ]


def _line(
    exact: _Exact,
    version: ProductVersion,
    kind: LineKind,
    suffix: str,
    span: tuple[datetime, datetime],
    unit: str,
    quantity: Decimal,
    unit_rate: Decimal,
    amount: int,
    description: str,
) -> Line:
    return Line(
        key=f"{version.product_id}/{_VALUE[kind]}/{suffix}",
        kind=kind,
        product_id=version.product_id,
        product_name=version.name,
        order_id=version.order_id,
        order_item_id=version.order_item_id,
        description=description,
        start=span[0],
        end=span[1],
        unit=unit,
        quantity=quantity,
        unit_rate=unit_rate,
        amount_minor=amount,
        taxes=exact.taxes(kind, amount),
    )


def totals_of(lines: Sequence[Line]) -> Totals:
    """Bill totals from its lines (also used to recompute a corrected bill)."""
    tax_excluded = discounts = credits = fees = tax = 0
    tax_items: dict[tuple[str, Decimal], int] = defaultdict(int)
    for line in lines:
        tax_excluded += line.amount_minor
        if line.kind is LineKind.DISCOUNT:
            discounts -= line.amount_minor
        elif line.kind is LineKind.SLA_CREDIT or (line.kind is LineKind.ADJUSTMENT and line.amount_minor < 0):
            credits -= line.amount_minor
        elif line.kind is LineKind.TERMINATION_FEE:
            fees += line.amount_minor
        for line_tax in line.taxes:
            tax += line_tax.amount_minor
            tax_items[(line_tax.category, line_tax.rate)] += line_tax.amount_minor
    return Totals(
        tax_excluded=tax_excluded,
        tax=tax,
        tax_included=tax_excluded + tax,
        discounts=discounts,
        credits=credits,
        fees=fees,
        tax_items=tuple((category, rate_, amount) for (category, rate_), amount in sorted(tax_items.items())),
    )
