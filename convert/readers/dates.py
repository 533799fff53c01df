"""Every date shape the readers meet, in one place (as feedparser's `datetimes/`).

- a capture stamp: `<!--1716170821000-->`, milliseconds (or seconds) since 1970, UTC;
- an article's own time: feedx's naive `pudate` (`2024-05-20 09:52:45`, China time
  unless the site says otherwise), `<time datetime>`, `article:published_time`: ISO 8601
  or a looser `YYYY-M-D h:mm`; a naive time is in the site's zone, and the result is
  shown in that zone;
- a feed's item date: RFC 822 (`Mon, 20 May 2024 09:52:45 +0800`, feedx's `CST` being
  China's) or ISO 8601; a date without a zone is taken as UTC.

A date that is not one, or falls outside FIRST_YEAR..LAST_YEAR, is None, with one
warning naming where it was found.
"""

from __future__ import annotations

import email.utils
import logging
import re
from datetime import UTC, datetime, tzinfo

log = logging.getLogger(__name__)

# Dates outside these years are mistakes (a zero epoch, a mistyped year), and far from
# them a date overflows when moved to another time zone.
FIRST_YEAR, LAST_YEAR = 1990, 2200


def usable_date(stamp: datetime) -> bool:
    """True for an aware date between FIRST_YEAR and LAST_YEAR, in UTC and in any zone."""
    try:
        return FIRST_YEAR <= stamp.astimezone(UTC).year <= LAST_YEAR
    except (OverflowError, ValueError):
        return False


def capture_time(digits: str, where: str) -> datetime | None:
    """A capture stamp's digits (epoch milliseconds or seconds) as a UTC time."""
    if len(digits.lstrip("-")) > 20:
        log.warning("%s: capture stamp %s… is not a usable time; ignored", where, digits[:20])
        return None
    value = int(digits)
    # Milliseconds since 1970 have 13 digits until the year 2286; seconds have 10.
    seconds = value / 1000 if abs(value) >= 10**11 else value
    try:
        stamp = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        log.warning("%s: capture stamp %s is not a usable time; ignored", where, digits)
        return None
    if value < 0 or stamp.year < FIRST_YEAR:
        log.warning("%s: capture stamp %s is before %d; ignored", where, digits, FIRST_YEAR)
        return None
    if not usable_date(stamp):
        log.warning("%s: capture stamp %s is after %d; ignored", where, digits, LAST_YEAR)
        return None
    return stamp


_LOOSE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def local_time(
    raw: str, zone: tzinfo, where: str, what: str = "publication time"
) -> datetime | None:
    """An article's own time (`pudate`, `datetime`, a meta tag).

    A naive time is taken to be in `zone` (the site's); a time with an offset is the
    source's own and keeps it (`-04:00` stays `-04:00`). `what` names the field in
    the warning.
    """
    stamp = _iso_or_loose(raw.strip())
    if stamp is None:
        log.warning("%s: %s %r is not a usable date; ignored", where, what, raw[:40])
        return None
    naive = stamp.tzinfo is None
    stamp = stamp.replace(tzinfo=zone) if naive else stamp
    if not usable_date(stamp):
        log.warning(
            "%s: %s %r is not between %d and %d; ignored",
            where,
            what,
            raw[:40],
            FIRST_YEAR,
            LAST_YEAR,
        )
        return None
    return stamp.astimezone(zone) if naive else stamp


def _iso_or_loose(raw: str) -> datetime | None:
    """`raw` as a date: ISO 8601 (feedx's own form, parsed in C), else a looser format."""
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        pass
    # strptime also takes what ISO does not, such as one-digit months (`2024-5-20 9:05`).
    for fmt in _LOOSE_FORMATS:
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    return None


# RFC 822 zone names are American; feedx writes China time as "CST".
_CHINA_CST = re.compile(r"\bCST$")


def feed_date(raw: str, where: str = "") -> datetime | None:
    """An RFC 822 or ISO 8601 date with its zone; a date without one is taken as UTC.

    A date that is not one, or not a plausible one, is None, with a warning when
    `where` names the item.
    """
    raw = raw.strip()
    if not raw:
        return None
    stamp: datetime | None
    try:
        stamp = email.utils.parsedate_to_datetime(_CHINA_CST.sub("+0800", raw))
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            stamp = datetime.fromisoformat(raw)
        except ValueError:
            stamp = None
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    if stamp is None or not usable_date(stamp):
        if where:
            log.warning("%s: %r is not a usable date; ignored", where, raw[:40])
        return None
    return stamp
