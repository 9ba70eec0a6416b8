"""The terms of an agreement version: their JSON model, strict validation, and the rating engine's ``Terms``.

A version's ``terms`` object (JSON, as proposed through the API; every path below is under ``/terms``)::

    currency          "EUR"                        ISO 4217 code; its minor units come from ISO 4217 (CURRENCIES)
    billingCycle      {frequency: monthly|quarterly|yearly, dayOfMonth: 1..28}
                      bills cover [day D of month m, day D of month m + 1|3|12), 00:00 UTC
    paymentTerms      {dueDays: 0..365}            amount due this many days after the bill date
    proration         "seconds" | "days"           share of a calendar month a product version was active:
                      active seconds / seconds in that month, or active days / days in that month (a UTC day
                      belongs to what was in effect at its end: billing.periods)
    rounding          "halfEven" | "halfUp" | "halfDown" | "up" | "down" | "floor" | "ceiling"
                      each bill line (and each tax of a line) is computed exactly, then rounded ONCE to the
                      currency's minor unit with this rule (billing.money.round_fraction)
    priceList[]       {productType, bandwidthMbps > 0, monthlyRecurring: Money, oneOff?: Money}
                      one entry per (productType, bandwidthMbps); Money = {unit: <currency>, value >= 0} in major
                      units, at most 6 decimals. monthlyRecurring is per calendar month, prorated; oneOff is
                      charged once when the product's first version starts in the billed period
    usageRates[]      {productType, metric, unit, rate: Money}   per unit of usage, one per (productType, metric)
    discounts[]       {id, description?, kind, productTypes?: [..] (empty or absent: all), ...}
                      kind "percentage": {rate}          always applies
                      kind "term":       {rate, minimumTermMonths}  applies to product types whose minimum term
                                         (below) is at least minimumTermMonths
                      kind "volume":     {tiers: [{fromCount, toCount?, rate}]}  applies the rate of the tier
                                         [fromCount, toCount) holding the number of distinct products of the
                                         discount's product types in the billed period (tiers must not overlap)
                      a discount line is -rate x the product's (already rounded) recurring lines
    minimumTerm       {months: 0.., byProductType?: [{productType, months}]}   from the product's first start
    earlyTermination  {rate: 0..1}  fee when a product ends before its minimum term:
                      rate x the last monthly price x the (prorated) months left of the term
    slaCredits[]      {id, productTypes?, tiers: [{availabilityBelow: (0, 1], creditRate: [0, 1]}]}
                      availability = 1 - outage seconds / active seconds in the period; the largest creditRate
                      of the tiers it falls strictly below, times the product's recurring lines, as a credit
    taxes[]           {category: country|state|county|city|other, description, rate: [0, 1],
                       appliesTo?: [recurring|oneOff|usage|discount|slaCredit|earlyTerminationFee|adjustment]}
                      each applicable tax is rate x the line amount, rounded per line and tax
    inventoryMatching {keyFields: [{field, caseInsensitive?}], comparedFields: [{field, comparison, ...}]}
                      fields are inventory report columns (report_rows.REPORT_COLUMNS); keys are text columns.
                      comparison: exact | caseInsensitive (text); numeric {tolerance >= 0 absolute,
                      relativeTolerance in [0, 1] of the larger magnitude} (bandwidthMbps); timestamp
                      {toleranceSeconds >= 0} (startDate, endDate). Two empty values are equal; empty vs a
                      value differs.
    usageMatching?    {absoluteTolerance >= 0, relativeTolerance: [0, 1]}   buyer and seller totals of a service
                      and metric agree when |b - s| <= absoluteTolerance or <= relativeTolerance x max(|b|, |s|)

All ratios are fractions in [0, 1] (0.2 is 20 %). ``engine_terms`` turns a validated model into the rating
engine's ``Terms`` (percentages there), resolving term and volume discounts; prices are keyed by
``(productType, bandwidth_label(bandwidthMbps))``, so a billing run labels product versions with ``bandwidth_label``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sonata_dlt.bilateral.rating.engine import Discount, LineKind, Price, SlaRule, SlaTier, TaxRule, Terms
from sonata_dlt.bilateral.rating.money import Rounding
from sonata_dlt.bilateral.rating.periods import Proration
from sonata_dlt.bilateral.report_columns import REPORT_COLUMNS, ColumnKind
from sonata_dlt.errors import Issue, Unprocessable

_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE "
    "CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL "
    "HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR "
    "MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK "
    "SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD "
    "YER ZAR ZMW ZWG"
)
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
# ISO 4217 active currencies with minor units (codes without minor units, such as XAU or XDR, are not money here).
CURRENCIES: dict[str, int] = {
    code: digits for digits, codes in ((2, _TWO), (0, _ZERO), (3, _THREE), (4, _FOUR)) for code in codes.split()
}

ROUNDING: dict[str, Rounding] = {
    "halfEven": Rounding.HALF_EVEN,
    "halfUp": Rounding.HALF_UP,
    "halfDown": Rounding.HALF_DOWN,
    "up": Rounding.UP,
    "down": Rounding.DOWN,
    "floor": Rounding.FLOOR,
    "ceiling": Rounding.CEILING,
}
CYCLE_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
TAX_CATEGORIES = ("country", "state", "county", "city", "other")
COMPARISONS: dict[ColumnKind, tuple[str, ...]] = {
    ColumnKind.TEXT: ("exact", "caseInsensitive"),
    ColumnKind.DECIMAL: ("numeric",),
    ColumnKind.TIMESTAMP: ("timestamp",),
}
ALL_COMPARISONS = ("exact", "caseInsensitive", "numeric", "timestamp")
MAX_DECIMALS = 6
ONE = Decimal(1)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class KeyField:
    field: str
    case_insensitive: bool = False


@dataclass(frozen=True)
class ComparedField:
    field: str
    comparison: str  # exact | caseInsensitive | numeric | timestamp
    tolerance: Decimal = Decimal(0)  # numeric: absolute, in the column's unit; timestamp: seconds
    relative_tolerance: Decimal = Decimal(0)  # numeric only: fraction of the larger magnitude


@dataclass(frozen=True)
class MatchingRules:
    key_fields: tuple[KeyField, ...]
    compared_fields: tuple[ComparedField, ...]


@dataclass(frozen=True)
class VolumeTier:
    from_count: int
    to_count: int | None  # exclusive; None: no upper bound
    rate: Decimal


@dataclass(frozen=True)
class DiscountTerm:
    id: str
    description: str
    kind: str  # percentage | term | volume
    product_types: frozenset[str]
    rate: Decimal = Decimal(0)
    minimum_term_months: int = 0
    tiers: tuple[VolumeTier, ...] = ()


@dataclass(frozen=True)
class UsageTolerance:
    absolute: Decimal = Decimal(0)
    relative: Decimal = Decimal(0)

    def agrees(self, buyer: Decimal, seller: Decimal) -> bool:
        gap = abs(buyer - seller)
        return gap <= self.absolute or gap <= self.relative * max(abs(buyer), abs(seller))


@dataclass(frozen=True)
class AgreementTerms:
    """A validated ``terms`` object. Amounts are major-unit Decimals; ratios are fractions in [0, 1]."""

    currency: str
    exponent: int
    cycle_frequency: str
    cycle_day: int
    payment_days: int
    proration: Proration
    rounding: Rounding
    prices: Mapping[tuple[str, str], Price]
    usage_rates: Mapping[tuple[str, str], tuple[str, Decimal]]  # (productType, metric) -> (unit, rate)
    discounts: tuple[DiscountTerm, ...]
    minimum_term_months: int
    minimum_term_by_type: Mapping[str, int]
    early_termination_rate: Decimal
    sla_rules: tuple[SlaRule, ...]  # engine form (percent)
    taxes: tuple[TaxRule, ...]  # engine form (percent)
    matching: MatchingRules
    usage_tolerance: UsageTolerance

    @property
    def cycle_months(self) -> int:
        return CYCLE_MONTHS[self.cycle_frequency]

    def minimum_term_for(self, product_type: str) -> int:
        return self.minimum_term_by_type.get(product_type, self.minimum_term_months)


def bandwidth_label(mbps: Decimal) -> str:
    """The price-list key of a bandwidth: ``Decimal('100') -> '100Mbps'``, ``Decimal('0.5') -> '0.5Mbps'``."""
    normal = mbps.normalize()
    return f"{normal:f}Mbps"


def engine_terms(terms: AgreementTerms, agreement_id: str, version: int, *, volumes: Mapping[str, int]) -> Terms:
    """The rating engine's ``Terms``. ``volumes`` maps product type -> distinct products billed in the period
    (for volume discounts); ratios become the engine's percentages exactly (x 100 in Decimal)."""
    all_types = frozenset(product_type for product_type, _ in terms.prices)
    discounts: list[Discount] = []
    for rule in terms.discounts:
        if rule.kind == "percentage":
            discounts.append(Discount(rule.id, rule.description, rule.rate * HUNDRED, rule.product_types))
        elif rule.kind == "term":
            candidates = rule.product_types or all_types
            qualifying = frozenset(t for t in candidates if terms.minimum_term_for(t) >= rule.minimum_term_months)
            if qualifying:
                discounts.append(Discount(rule.id, rule.description, rule.rate * HUNDRED, qualifying))
        else:
            count = sum(n for t, n in volumes.items() if not rule.product_types or t in rule.product_types)
            tier = next(
                (t for t in rule.tiers if t.from_count <= count and (t.to_count is None or count < t.to_count)), None
            )
            if tier is not None and tier.rate:
                discounts.append(Discount(rule.id, rule.description, tier.rate * HUNDRED, rule.product_types))
    return Terms(
        agreement_id=agreement_id,
        agreement_version=version,
        currency=terms.currency,
        exponent=terms.exponent,
        rounding=terms.rounding,
        proration=terms.proration,
        prices=dict(terms.prices),
        usage_rates={key: rate for key, (_unit, rate) in terms.usage_rates.items()},
        discounts=tuple(discounts),
        sla_rules=terms.sla_rules,
        taxes=terms.taxes,
        minimum_term_months=dict(terms.minimum_term_by_type),
        default_minimum_term_months=terms.minimum_term_months,
        early_termination_percent=terms.early_termination_rate * HUNDRED,
        payment_days=terms.payment_days,
    )


class _Checker:
    """Walks the JSON terms, collecting every problem with its JSON Pointer instead of stopping at the first."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def fail(self, path: str, reason: str, code: str = "invalidValue") -> None:
        self.issues.append(Issue(code=code, reason=reason, property_path=path))

    def obj(self, value: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"{path} must be an object", "invalidFormat")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(f"{path}/{key}", f"unknown property {key!r}", "unexpectedProperty")
        for key in required:
            if key not in value:
                self.fail(f"{path}/{key}", f"{key} is required", "missingProperty")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"{path} must be an array", "invalidFormat")
            return []
        return value

    def text(self, value: Any, path: str, choices: Sequence[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"{path} must be a non-empty string", "invalidFormat")
            return ""
        if choices is not None and value not in choices:
            self.fail(path, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"{path} must be an integer", "invalidFormat")
            return low
        if not low <= value <= high:
            self.fail(path, f"{path} must be between {low} and {high}, got {value}")
        return value

    def decimal(self, value: Any, path: str, low: Decimal | None = None, high: Decimal | None = None) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.fail(path, f"{path} must be a number", "invalidFormat")
            return Decimal(0)
        try:
            # str() first: JSON numbers arrive as floats, whose shortest repr is the digits the sender wrote.
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(path, f"{path} must be a number", "invalidFormat")
            return Decimal(0)
        if not number.is_finite():
            self.fail(path, f"{path} must be a finite number")
            return Decimal(0)
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
            self.fail(path, f"{path} has more than {MAX_DECIMALS} decimals")
        if low is not None and number < low:
            self.fail(path, f"{path} must be at least {low}, got {number}")
        if high is not None and number > high:
            self.fail(path, f"{path} must be at most {high}, got {number}")
        return number

    def ratio(self, value: Any, path: str) -> Decimal:
        return self.decimal(value, path, Decimal(0), ONE)

    def money(self, value: Any, path: str, currency: str) -> Decimal:
        body = self.obj(value, path, ("unit", "value"), ("unit", "value"))
        if "unit" in body and body["unit"] != currency:
            self.fail(f"{path}/unit", f"currency mismatch: {body['unit']!r} but the agreement's currency is {currency}")
        if "value" not in body:
            return Decimal(0)
        return self.decimal(body["value"], f"{path}/value", Decimal(0))

    def product_types(self, value: Any, path: str) -> frozenset[str]:
        return frozenset(self.text(item, f"{path}/{i}") for i, item in enumerate(self.array(value, path)))


TOP_LEVEL = (
    "currency", "billingCycle", "paymentTerms", "proration", "rounding", "priceList", "usageRates", "discounts",
    "minimumTerm", "earlyTermination", "slaCredits", "taxes", "inventoryMatching", "usageMatching",
)  # fmt: skip
REQUIRED = ("currency", "billingCycle", "paymentTerms", "proration", "rounding", "priceList", "inventoryMatching")


def parse_terms(raw: Any, path: str = "/terms") -> AgreementTerms:
    """Validate ``raw`` strictly; raise Unprocessable listing every problem (each with its propertyPath)."""
    c = _Checker()
    body = c.obj(raw, path, TOP_LEVEL, REQUIRED)
    currency = c.text(body.get("currency"), f"{path}/currency") if "currency" in body else ""
    if currency and currency not in CURRENCIES:
        c.fail(f"{path}/currency", f"{currency!r} is not an ISO 4217 currency with minor units")
    cycle = c.obj(body.get("billingCycle", {}), f"{path}/billingCycle", ("frequency", "dayOfMonth"), ("frequency",))
    frequency = c.text(cycle.get("frequency", "monthly"), f"{path}/billingCycle/frequency", tuple(CYCLE_MONTHS))
    day = c.integer(cycle.get("dayOfMonth", 1), f"{path}/billingCycle/dayOfMonth", 1, 28)
    payment = c.obj(body.get("paymentTerms", {}), f"{path}/paymentTerms", ("dueDays",), ("dueDays",))
    due_days = c.integer(payment.get("dueDays", 0), f"{path}/paymentTerms/dueDays", 0, 365)
    proration = c.text(body.get("proration", "seconds"), f"{path}/proration", tuple(p.value for p in Proration))
    rounding = c.text(body.get("rounding", "halfEven"), f"{path}/rounding", tuple(ROUNDING))

    prices = _price_list(c, body.get("priceList"), f"{path}/priceList", currency)
    usage_rates = _usage_rates(c, body.get("usageRates"), f"{path}/usageRates", currency)
    discounts = _discounts(c, body.get("discounts"), f"{path}/discounts")
    term_path = f"{path}/minimumTerm"
    term = c.obj(body.get("minimumTerm", {}), term_path, ("months", "byProductType"))
    months = c.integer(term.get("months", 0), f"{term_path}/months", 0, 600)
    by_type: dict[str, int] = {}
    for i, entry in enumerate(c.array(term.get("byProductType"), f"{term_path}/byProductType")):
        entry_path = f"{term_path}/byProductType/{i}"
        item = c.obj(entry, entry_path, ("productType", "months"), ("productType", "months"))
        product_type = c.text(item.get("productType"), f"{entry_path}/productType")
        if product_type in by_type:
            c.fail(f"{entry_path}/productType", f"a second minimum term for {product_type!r}")
        by_type[product_type] = c.integer(item.get("months", 0), f"{entry_path}/months", 0, 600)
    early = c.obj(body.get("earlyTermination", {}), f"{path}/earlyTermination", ("rate",))
    early_rate = c.ratio(early.get("rate", 0), f"{path}/earlyTermination/rate")
    sla_rules = _sla_rules(c, body.get("slaCredits"), f"{path}/slaCredits")
    taxes = _taxes(c, body.get("taxes"), f"{path}/taxes")
    matching = _matching(c, body.get("inventoryMatching", {}), f"{path}/inventoryMatching")
    usage_path = f"{path}/usageMatching"
    usage = c.obj(body.get("usageMatching", {}), usage_path, ("absoluteTolerance", "relativeTolerance"))
    tolerance = UsageTolerance(
        absolute=c.decimal(usage.get("absoluteTolerance", 0), f"{usage_path}/absoluteTolerance", Decimal(0)),
        relative=c.ratio(usage.get("relativeTolerance", 0), f"{usage_path}/relativeTolerance"),
    )
    if c.issues:
        raise Unprocessable(c.issues)
    return AgreementTerms(
        currency=currency,
        exponent=CURRENCIES[currency],
        cycle_frequency=frequency,
        cycle_day=day,
        payment_days=due_days,
        proration=Proration(proration),
        rounding=ROUNDING[rounding],
        prices=prices,
        usage_rates=usage_rates,
        discounts=discounts,
        minimum_term_months=months,
        minimum_term_by_type=by_type,
        early_termination_rate=early_rate,
        sla_rules=sla_rules,
        taxes=taxes,
        matching=matching,
        usage_tolerance=tolerance,
    )


def _price_list(c: _Checker, raw: Any, path: str, currency: str) -> dict[tuple[str, str], Price]:
    prices: dict[tuple[str, str], Price] = {}
    seen: dict[tuple[str, str], int] = {}
    allowed = ("productType", "bandwidthMbps", "monthlyRecurring", "oneOff")
    for i, entry in enumerate(c.array(raw, path)):
        item = c.obj(entry, f"{path}/{i}", allowed, ("productType", "bandwidthMbps", "monthlyRecurring"))
        product_type = c.text(item.get("productType"), f"{path}/{i}/productType")
        mbps = c.decimal(item.get("bandwidthMbps", 1), f"{path}/{i}/bandwidthMbps", Decimal(0))
        if mbps == 0:
            c.fail(f"{path}/{i}/bandwidthMbps", "bandwidthMbps must be greater than 0")
        monthly = c.money(item.get("monthlyRecurring"), f"{path}/{i}/monthlyRecurring", currency)
        one_off = c.money(item["oneOff"], f"{path}/{i}/oneOff", currency) if "oneOff" in item else Decimal(0)
        key = (product_type, bandwidth_label(mbps))
        if key in seen:
            c.fail(
                f"{path}/{i}", f"overlapping price entries: {key[0]} at {key[1]} is also priced at {path}/{seen[key]}"
            )
        seen[key] = i
        prices[key] = Price(monthly, one_off)
    return prices


def _usage_rates(c: _Checker, raw: Any, path: str, currency: str) -> dict[tuple[str, str], tuple[str, Decimal]]:
    rates: dict[tuple[str, str], tuple[str, Decimal]] = {}
    for i, entry in enumerate(c.array(raw, path)):
        required = ("productType", "metric", "unit", "rate")
        item = c.obj(entry, f"{path}/{i}", required, required)
        key = (
            c.text(item.get("productType"), f"{path}/{i}/productType"),
            c.text(item.get("metric"), f"{path}/{i}/metric"),
        )
        unit = c.text(item.get("unit"), f"{path}/{i}/unit")
        rate = c.money(item.get("rate"), f"{path}/{i}/rate", currency)
        if key in rates:
            c.fail(f"{path}/{i}", f"overlapping usage rates: {key[0]} / {key[1]} is rated twice")
        rates[key] = (unit, rate)
    return rates


def _discounts(c: _Checker, raw: Any, path: str) -> tuple[DiscountTerm, ...]:
    discounts: list[DiscountTerm] = []
    ids: set[str] = set()
    allowed = ("id", "description", "kind", "productTypes", "rate", "minimumTermMonths", "tiers")
    for i, entry in enumerate(c.array(raw, path)):
        at = f"{path}/{i}"
        item = c.obj(entry, at, allowed, ("id", "kind"))
        discount_id = c.text(item.get("id"), f"{at}/id")
        if discount_id in ids:
            c.fail(f"{at}/id", f"discount id {discount_id!r} is used twice")
        ids.add(discount_id)
        kind = c.text(item.get("kind"), f"{at}/kind", ("percentage", "term", "volume"))
        description = str(item.get("description") or f"{kind} discount {discount_id}")
        types = c.product_types(item.get("productTypes"), f"{at}/productTypes")
        if kind == "volume":
            tiers = _volume_tiers(c, item.get("tiers"), f"{at}/tiers")
            discounts.append(DiscountTerm(discount_id, description, kind, types, tiers=tiers))
            continue
        if "rate" not in item:
            c.fail(f"{at}/rate", "rate is required", "missingProperty")
        rate = c.ratio(item.get("rate", 0), f"{at}/rate")
        minimum = 0
        if kind == "term":
            if "minimumTermMonths" not in item:
                c.fail(f"{at}/minimumTermMonths", "minimumTermMonths is required", "missingProperty")
            minimum = c.integer(item.get("minimumTermMonths", 1), f"{at}/minimumTermMonths", 1, 600)
        discounts.append(DiscountTerm(discount_id, description, kind, types, rate=rate, minimum_term_months=minimum))
    return tuple(discounts)


def _volume_tiers(c: _Checker, raw: Any, path: str) -> tuple[VolumeTier, ...]:
    tiers: list[tuple[int, VolumeTier]] = []
    entries = c.array(raw, path)
    if not entries:
        c.fail(path, "a volume discount needs at least one tier", "missingProperty")
    for i, entry in enumerate(entries):
        item = c.obj(entry, f"{path}/{i}", ("fromCount", "toCount", "rate"), ("fromCount", "rate"))
        low = c.integer(item.get("fromCount", 0), f"{path}/{i}/fromCount", 0, 10**9)
        high = None if item.get("toCount") is None else c.integer(item["toCount"], f"{path}/{i}/toCount", 1, 10**9)
        if high is not None and high <= low:
            c.fail(f"{path}/{i}/toCount", f"toCount {high} must be greater than fromCount {low}")
        tiers.append((i, VolumeTier(low, high, c.ratio(item.get("rate", 0), f"{path}/{i}/rate"))))
    ordered = sorted(tiers, key=lambda pair: pair[1].from_count)
    for (_, before), (j, after) in itertools.pairwise(ordered):
        if before.to_count is None or before.to_count > after.from_count:
            upper = "..." if before.to_count is None else before.to_count
            c.fail(f"{path}/{j}", f"overlapping tiers: {after.from_count} is inside [{before.from_count}, {upper})")
    return tuple(tier for _, tier in ordered)


def _sla_rules(c: _Checker, raw: Any, path: str) -> tuple[SlaRule, ...]:
    rules: list[SlaRule] = []
    for i, entry in enumerate(c.array(raw, path)):
        item = c.obj(entry, f"{path}/{i}", ("id", "productTypes", "tiers"), ("id", "tiers"))
        rule_id = c.text(item.get("id"), f"{path}/{i}/id")
        tiers: list[SlaTier] = []
        thresholds: set[Decimal] = set()
        for j, tier_raw in enumerate(c.array(item.get("tiers"), f"{path}/{i}/tiers")):
            at = f"{path}/{i}/tiers/{j}"
            tier = c.obj(tier_raw, at, ("availabilityBelow", "creditRate"), ("availabilityBelow", "creditRate"))
            below = c.ratio(tier.get("availabilityBelow", 1), f"{at}/availabilityBelow")
            if below == 0:
                c.fail(f"{at}/availabilityBelow", "availabilityBelow must be greater than 0")
            if below in thresholds:
                c.fail(f"{at}/availabilityBelow", f"overlapping tiers: a second tier below {below}")
            thresholds.add(below)
            tiers.append(SlaTier(below * HUNDRED, c.ratio(tier.get("creditRate", 0), f"{at}/creditRate") * HUNDRED))
        types = c.product_types(item.get("productTypes"), f"{path}/{i}/productTypes")
        rules.append(SlaRule(rule_id, tuple(sorted(tiers, key=lambda t: t.below_percent)), types))
    return tuple(rules)


def _taxes(c: _Checker, raw: Any, path: str) -> tuple[TaxRule, ...]:
    taxes: list[TaxRule] = []
    kinds = tuple(kind.value for kind in LineKind)
    for i, entry in enumerate(c.array(raw, path)):
        allowed = ("category", "description", "rate", "appliesTo")
        item = c.obj(entry, f"{path}/{i}", allowed, ("category", "description", "rate"))
        category = c.text(item.get("category"), f"{path}/{i}/category", TAX_CATEGORIES)
        description = c.text(item.get("description"), f"{path}/{i}/description")
        rate = c.ratio(item.get("rate", 0), f"{path}/{i}/rate")
        applies = c.array(item.get("appliesTo"), f"{path}/{i}/appliesTo")
        chosen = [c.text(kind, f"{path}/{i}/appliesTo/{j}", kinds) for j, kind in enumerate(applies)]
        line_kinds = frozenset(LineKind(kind) for kind in chosen if kind in kinds)
        taxes.append(TaxRule(category, description, rate * HUNDRED, line_kinds))
    return tuple(taxes)


def _matching(c: _Checker, raw: Any, path: str) -> MatchingRules:
    body = c.obj(raw, path, ("keyFields", "comparedFields"), ("keyFields",))
    used: set[str] = set()

    def column(value: Any, at: str, check: Callable[[ColumnKind], str | None]) -> str:
        name = c.text(value, at)
        if name and name not in REPORT_COLUMNS:
            c.fail(at, f"{name!r} is not an inventory report column ({', '.join(REPORT_COLUMNS)})")
            return name
        if name in used:
            c.fail(at, f"{name!r} is named twice in the matching rules")
        used.add(name)
        problem = check(REPORT_COLUMNS[name]) if name else None
        if problem:
            c.fail(at, problem)
        return name

    keys: list[KeyField] = []
    key_entries = c.array(body.get("keyFields"), f"{path}/keyFields")
    if "keyFields" in body and not key_entries:
        c.fail(f"{path}/keyFields", "at least one key field is required", "missingProperty")
    for i, entry in enumerate(key_entries):
        item = c.obj(entry, f"{path}/keyFields/{i}", ("field", "caseInsensitive"), ("field",))
        name = column(
            item.get("field"),
            f"{path}/keyFields/{i}/field",
            lambda kind: None if kind is ColumnKind.TEXT else "key fields must be text columns",
        )
        keys.append(KeyField(name, bool(item.get("caseInsensitive", False))))
    compared: list[ComparedField] = []
    for i, entry in enumerate(c.array(body.get("comparedFields"), f"{path}/comparedFields")):
        at = f"{path}/comparedFields/{i}"
        item = c.obj(
            entry,
            at,
            ("field", "comparison", "tolerance", "relativeTolerance", "toleranceSeconds"),
            ("field", "comparison"),
        )
        comparison = c.text(item.get("comparison"), f"{at}/comparison", ALL_COMPARISONS)

        def fits(kind: ColumnKind, comparison: str = comparison) -> str | None:
            if comparison in COMPARISONS[kind] or not comparison:
                return None
            return f"a {kind.value} column is compared with {' or '.join(COMPARISONS[kind])}, not {comparison}"

        name = column(item.get("field"), f"{at}/field", fits)
        tolerance = Decimal(0)
        relative = Decimal(0)
        if comparison == "numeric":
            tolerance = c.decimal(item.get("tolerance", 0), f"{at}/tolerance", Decimal(0))
            relative = c.ratio(item.get("relativeTolerance", 0), f"{at}/relativeTolerance")
        elif comparison == "timestamp":
            tolerance = c.decimal(item.get("toleranceSeconds", 0), f"{at}/toleranceSeconds", Decimal(0))
        for extra in ("tolerance", "relativeTolerance", "toleranceSeconds"):
            applies = (comparison == "numeric" and extra != "toleranceSeconds") or (
                comparison == "timestamp" and extra == "toleranceSeconds"
            )
            if extra in item and not applies:
                c.fail(f"{at}/{extra}", f"{extra} does not apply to a {comparison} comparison", "unexpectedProperty")
        compared.append(ComparedField(name, comparison, tolerance, relative))
    return MatchingRules(tuple(keys), tuple(compared))
