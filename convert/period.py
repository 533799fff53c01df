"""Periods of a digest: one parser for the config, the command line and the job.

A period is asked for as a week, `latest` (the week of the newest article), `last`
(the last whole week), `all` (every article given), an ISO week (`2024-W21`), or a
window of days (`since` and `until`, both included). `parse_period` checks the
spelling; `PeriodSpec.resolve` turns it into days once the articles are known.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)
WEEK_WORDS = ("latest", "last", "all")
SPELLINGS = "latest, last, all or an ISO week such as 2024-W21"


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


@dataclass(frozen=True, slots=True)
class PeriodSpec:
    """A period as asked for, before the articles are known."""

    week: str = "latest"
    """`latest`, `last`, `all`, or an ISO week `YYYY-Www`; ignored with `since`."""

    since: date | None = None
    """The first day of a window (with `until`)."""

    until: date | None = None
    """The window's last day, included."""

    def resolve(
        self, today: date, newest: Callable[[], date | None], days: Callable[[], Iterable[date]]
    ) -> Period | None:
        """The days: `today` for `last`, the newest article's day for `latest`, every
        article's day for `all` (None when there is none)."""
        if self.since is not None and self.until is not None:
            return date_range(self.since, self.until)
        word = self.week.lower()
        if word == "all":
            known = list(days())
            return covering(known) if known else None
        if word == "latest":
            day = newest() or today
            year, week, _ = day.isocalendar()
            return iso_week(f"{year}-W{week:02d}", day)
        return iso_week(self.week, today)


def parse_period(week: str = "", since: str = "", until: str = "") -> PeriodSpec:
    """The period `week`, or `since`..`until` (YYYY-MM-DD); `latest` when none is given.

    ValueError says what is wrong with the spelling.
    """
    week = week.strip()
    if week and (since or until):
        raise ValueError("give a week or since/until, not both")
    if bool(since) != bool(until):
        raise ValueError("since and until go together")
    if since and until:
        first, last = _day(since), _day(until)
        date_range(first, last)  # checks the order
        return PeriodSpec(since=first, until=last)
    if not week:
        return PeriodSpec()
    if week.lower() in WEEK_WORDS:
        return PeriodSpec(week=week.lower())
    iso_week(week, date.today())  # checks the spelling and that the week exists
    return PeriodSpec(week=week)


def _day(text: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"no such day: {text!r}") from None


def iso_week(text: str, today: date) -> Period:
    """The ISO week `YYYY-Www`, or `last`: the last whole week before `today`."""
    if text.strip().lower() == "last":
        monday = today - timedelta(days=today.weekday() + 7)
    else:
        match = _WEEK.match(text.strip())
        if not match:
            raise ValueError(f"not a week ({SPELLINGS}): {text!r}")
        try:
            monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            raise ValueError(f"no such week: {text!r}") from None
    year, week, _ = monday.isocalendar()
    return Period(monday, monday + timedelta(days=6), f"{year}-W{week:02d}")


def date_range(since: date, until: date) -> Period:
    """The days from `since` to `until`, both included."""
    if until < since:
        raise ValueError(f"until {until} is before since {since}")
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
