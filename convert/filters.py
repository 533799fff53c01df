"""Only what the reader wants: include and exclude lists, and a maximum age.

A source's filter drops articles as they are read (the run's summary counts them per
source); an output's drops them from that output only. Words match without regard to
case anywhere in the title, the authors, the tags or the body text; `/regex/` is a
regular expression (case-insensitive) searched in the same text. An article is kept
when it matches one of `include` (or `include` is empty), matches none of `exclude`,
and is not older than `max_age_days` (an undated article is never too old).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from convert.fragments import parse_fragment, text_of
from convert.model import Article, item_date


def check_patterns(values: tuple[str, ...]) -> None:
    """ValueError naming the first word or /regex/ that cannot be used."""
    for value in values:
        if not value.strip():
            raise ValueError("an empty word matches everything")
        if _is_regex(value):
            try:
                re.compile(value[1:-1])
            except re.error as error:
                raise ValueError(f"bad regular expression {value}: {error}") from None


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    """Which articles are taken."""

    include: tuple[str, ...] = ()
    """Take only articles matching one of these (empty: every article)."""

    exclude: tuple[str, ...] = ()
    """Leave out articles matching any of these."""

    max_age_days: int | None = None
    """Leave out articles dated more than this many days before the run."""

    @property
    def active(self) -> bool:
        """True when it may leave something out."""
        return bool(self.include or self.exclude or self.max_age_days)

    def refusal(self, article: Article, now: datetime) -> str | None:
        """Why `article` is left out, or None when it is taken."""
        if self.max_age_days:
            moment = item_date(article)
            if moment is not None and moment < now - timedelta(days=self.max_age_days):
                return f"older than {self.max_age_days} days"
        if not (self.include or self.exclude):
            return None
        text = _searched(article)
        if self.include and not any(_matches(p, text) for p in self.include):
            return "matches no include"
        for pattern in self.exclude:
            if _matches(pattern, text):
                return f"matches exclude {pattern!r}"
        return None


def _is_regex(value: str) -> bool:
    return len(value) >= 2 and value.startswith("/") and value.endswith("/")


def _matches(pattern: str, text: str) -> bool:
    if _is_regex(pattern):
        return re.search(pattern[1:-1], text, re.IGNORECASE) is not None
    return pattern.casefold() in text


def _searched(article: Article) -> str:
    """The words a filter looks at, case-folded: title, authors, tags, body text."""
    body = text_of(parse_fragment(article.body)) if article.body else ""
    return "\n".join((article.title, *article.authors, *article.tags, body)).casefold()
