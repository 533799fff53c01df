"""Periods of a digest: ISO weeks (`2024-W21`, `last`) and date ranges, in one time zone."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)


@dataclass(frozen=True, slots=True)
class Period:
    """Whole days from `start` to `end` inclusive, with the label a reader sees."""

    start: date
    """The first day."""

    end: date
    """The last day (inclusive)."""

    label: str
    """`2024-W21`, or `2024-05-20 – 2024-05-22`."""

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The period as [start, end) instants in `zone`."""
        return (
            datetime.combine(self.start, time(), zone),
            datetime.combine(self.end + timedelta(days=1), time(), zone),
        )


def iso_week(text: str, today: date) -> Period:
    """The ISO week `YYYY-Www`, or `last`: the last whole week before `today`."""
    if text.strip().lower() == "last":
        monday = today - timedelta(days=today.weekday() + 7)
    else:
        match = _WEEK.match(text.strip())
        if not match:
            raise ValueError(f"not an ISO week (YYYY-Www or last): {text!r}")
        try:
            monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            raise ValueError(f"no such week: {text!r}") from None
    year, week, _ = monday.isocalendar()
    return Period(monday, monday + timedelta(days=6), f"{year}-W{week:02d}")


def date_range(since: date, until: date) -> Period:
    """The days from `since` to `until`, both included."""
    if until < since:
        raise ValueError(f"--until {until} is before --since {since}")
    return Period(since, until, f"{since.isoformat()} – {until.isoformat()}")


def covering(days: Iterable[date]) -> Period:
    """The ISO week holding all `days` when there is one, else their date range."""
    ordered = sorted(days)
    if not ordered:
        raise ValueError("no dates")
    first, last = ordered[0], ordered[-1]
    if first.isocalendar()[:2] == last.isocalendar()[:2]:
        return iso_week(f"{first.isocalendar()[0]}-W{first.isocalendar()[1]}", first)
    return date_range(first, last)
