"""Money: exact minor units, the agreement's rounding rule, and the Sonata ``Money`` wire form.

Amounts are kept as integers of the currency's minor unit (cents for EUR, yen for JPY). Rates may carry more
precision than the minor unit (0.0125 EUR per GB), so intermediate results are exact ``Fraction``s and become
minor units exactly once per line through ``round_fraction`` with the agreement's rule. No float is ever used
for arithmetic; floats appear only on the wire, where MEF's ``Money.value`` is a JSON number.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

# ISO 4217 minor units of the currencies operators commonly settle in; others must be named in the agreement.
MINOR_UNITS: dict[str, int] = {
    "AUD": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "INR": 2,
    "JPY": 0,
    "KRW": 0,
    "NOK": 2,
    "NZD": 2,
    "SEK": 2,
    "SGD": 2,
    "USD": 2,
    "ZAR": 2,
    "BHD": 3,
    "KWD": 3,
}


class Rounding(StrEnum):
    """How a line's exact amount becomes minor units (names as in ``decimal``, the agreement's vocabulary)."""

    HALF_UP = "ROUND_HALF_UP"  # ties away from zero: 0.5 -> 1, -0.5 -> -1
    HALF_EVEN = "ROUND_HALF_EVEN"  # ties to even (banker's rounding)
    HALF_DOWN = "ROUND_HALF_DOWN"  # ties toward zero
    DOWN = "ROUND_DOWN"  # toward zero
    UP = "ROUND_UP"  # away from zero
    FLOOR = "ROUND_FLOOR"
    CEILING = "ROUND_CEILING"


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"currency {currency!r} has no known minor unit") from None


def round_fraction(value: Fraction, mode: Rounding) -> int:
    """``value`` (in minor units, exact) rounded to an integer with ``mode``."""
    return round_ratio(value.numerator, value.denominator, mode)


def round_ratio(numerator: int, denominator: int, mode: Rounding) -> int:
    """``numerator / denominator`` (minor units, exact; ``denominator > 0``) rounded to an integer with ``mode``.

    The integer form of ``round_fraction``: the ratio need not be in lowest terms (scaling both by k scales the
    remainder by k and leaves every comparison below unchanged), so the engine multiplies integer numerators and
    denominators and never pays for a Fraction's gcd on its hot path.
    """
    floor, remainder = divmod(numerator, denominator)
    if remainder == 0:
        return floor
    ceiling = floor + 1
    positive = numerator > 0
    if mode is Rounding.FLOOR:
        return floor
    if mode is Rounding.CEILING:
        return ceiling
    if mode is Rounding.DOWN:
        return floor if positive else ceiling
    if mode is Rounding.UP:
        return ceiling if positive else floor
    twice = 2 * remainder
    if twice < denominator:
        return floor
    if twice > denominator:
        return ceiling
    if mode is Rounding.HALF_UP:
        return ceiling if positive else floor
    if mode is Rounding.HALF_DOWN:
        return floor if positive else ceiling
    return floor if floor % 2 == 0 else ceiling


def to_minor_fraction(amount: Decimal, exponent: int) -> Fraction:
    """A major-unit Decimal (a rate from the agreement) as an exact Fraction of minor units."""
    return Fraction(amount) * Fraction(10**exponent)


def to_decimal(minor: int, exponent: int) -> Decimal:
    """Minor units as a major-unit Decimal with exactly ``exponent`` places (1234, 2 -> Decimal('12.34'))."""
    return Decimal(minor).scaleb(-exponent)


def wire_number(value: Decimal) -> int | float:
    """A Decimal as the JSON number MEF's ``Money.value`` is. The shortest float repr equals the Decimal's digits
    for every amount below 2**53 minor units, so the canonical JSON hash of a bill is exact."""
    normal = value.normalize()
    if normal == normal.to_integral_value():
        return int(normal)
    return float(normal)


def money(minor: int, currency: str, exponent: int) -> dict[str, Any]:
    """The Sonata ``Money`` object for an amount in minor units."""
    return {"unit": currency, "value": wire_number(to_decimal(minor, exponent))}


def rate_money(rate: Decimal, currency: str) -> dict[str, Any]:
    """A unit rate (any precision) as Sonata ``Money``."""
    return {"unit": currency, "value": wire_number(rate)}


def minor_from_wire(value: Any, exponent: int, *, field: str) -> int:
    """Exact minor units from a JSON amount in major units; refuses sub-minor precision rather than rounding."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{field} must be a number")
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise ValueError(f"{field} must be a finite number")
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{field} has more decimals than the currency's {exponent} minor digits")
    return int(scaled)
