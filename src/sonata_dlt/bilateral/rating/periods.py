"""Calendar arithmetic for billing: half-open UTC intervals, calendar months and the proration fractions.

A recurring price is per calendar month. The share of a month that a product version was active is counted in
seconds (``seconds`` basis: active seconds / seconds in that month) or in days (``days`` basis: active days / days
in that month, where a UTC calendar day belongs to whatever was in effect at its end, so the activation day is
charged, the termination day is not, and a mid-day change gives that day to the new version; the days of
consecutive versions therefore add up to the month exactly, like their seconds do).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fractions import Fraction

DAY = 86_400


class Proration(StrEnum):
    SECONDS = "seconds"
    DAYS = "days"


def month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """Same day and time ``months`` later, clamped to the last day of a shorter month (Jan 31 + 1 -> Feb 28/29)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_index = index + 1
    next_month_start = datetime(next_index // 12, next_index % 12 + 1, 1, tzinfo=moment.tzinfo)
    last_day = (next_month_start - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def months_between(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Calendar months ``[m, next_m)`` that overlap ``[start, end)``, in order."""
    current = month_start(start)
    while current < end:
        following = add_months(current, 1)
        yield current, following
        current = following


def overlap(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> tuple[datetime, datetime] | None:
    start = max(a_start, b_start)
    end = min(a_end, b_end)
    return (start, end) if start < end else None


def seconds(start: datetime, end: datetime) -> int:
    delta = end - start
    return delta.days * DAY + delta.seconds  # whole seconds; sub-second activity is not billed


def _day_ends_in(start: datetime, end: datetime) -> int:
    """Number of UTC midnights ``m`` with ``start < m <= end``: the days whose end falls in ``(start, end]``."""
    first = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=1)
    if first > end:
        return 0
    return (end - first).days + 1


def month_fraction(start: datetime, end: datetime, basis: Proration) -> Fraction:
    """How many calendar months ``[start, end)`` covers, exactly, summed month by month."""
    total = Fraction(0)
    for m_start, m_end in months_between(start, end):
        part = overlap(start, end, m_start, m_end)
        if part is None:
            continue
        if basis is Proration.SECONDS:
            total += Fraction(seconds(*part), seconds(m_start, m_end))
        else:
            total += Fraction(_day_ends_in(*part), (m_end - m_start).days)
    return total
