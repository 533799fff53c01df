"""The normalized document: what every reader builds and every writer reads.

Readers produce these values, cleaning returns changed copies
(`dataclasses.replace`), writers only read them. Everything is frozen so that a
writer cannot change what the next writer sees.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """One picture of an article, with what the source says about it."""

    url: str
    """Where the picture lives: its origin, or the user's own mirror of it."""

    mirrored_url: str = ""
    """The URL as found in the input when it was rewritten (a proxy's, say); else empty."""

    caption: str = ""
    """The caption as plain text, without the credit."""

    credit: str = ""
    """Who made or owns the picture (the `<cite>` of a figure), plain text."""

    alt: str = ""
    """What the picture shows, for who cannot see it (its `alt` text), plain text; the
    caption stands in for it when empty."""

    width: int | None = None
    """Width in pixels when the source states it."""

    height: int | None = None
    """Height in pixels when the source states it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Contributor:
    """A person or desk credited for the article, other than its authors."""

    name: str
    """The name as printed."""

    role: str
    """What they did: `reporter`, `translator`, `photographer`, `editor`, ..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A related address: another language edition or the author's page."""

    url: str
    """The absolute http(s) address."""

    rel: str
    """The relation, as in HTML: `alternate` (another edition) or `author`."""

    title: str = ""
    """The link text the source gave it, plain text."""

    language: str = ""
    """BCP 47 tag of the linked edition for `alternate` links (`en`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Article:
    """One news article, cleaned or about to be."""

    id: str
    """Stable identifier: a hash of the canonical URL (or of the content without one)."""

    title: str
    """Headline as plain text."""

    url: str
    """The article's address at its origin (tracking parameters dropped once cleaned)."""

    canonical_url: str
    """`url` normalized for deduplication: lower-case host, no `m.`, no tracking, no fragment."""

    language: str
    """BCP 47 tag of the text: `zh-Hans`, `zh-Hant`, `en`, ... (`und` when unknown)."""

    source_name: str
    """Human name of the publication (`纽约时报中文网`), or its host when unknown."""

    source_host: str
    """Host name of `url` (`cn.nytimes.com`)."""

    body: str
    """The article text as HTML; sanitized once cleaning has run."""

    authors: tuple[str, ...] = ()
    """Bylines, in the order printed."""

    translator: str = ""
    """Who translated the article (`纽约时报中文网`), when credited."""

    contributors: tuple[Contributor, ...] = ()
    """Everyone else credited, with their role, in the order printed."""

    published: datetime | None = None
    """Publication time, time-zone aware, in the source's own zone."""

    captured: datetime | None = None
    """When the mirror captured the article, time-zone aware (UTC)."""

    summary: str = ""
    """A short plain-text summary, when the source gives one (a feed being published
    fills it in for each item where the article was cleaned: see `outputs.feed`)."""

    lead_image: Image | None = None
    """The picture shown above the article; not repeated in `body`."""

    images: tuple[Image, ...] = ()
    """Every picture in reading order: the lead image first, then those in `body`."""

    credits: tuple[str, ...] = ()
    """Footer credit lines as plain text (reporting help, author bio, translation)."""

    links: tuple[Link, ...] = ()
    """Related addresses: the English edition, the author's page."""

    tags: tuple[str, ...] = ()
    """Subjects or sections, as given by the source."""

    guid: str = ""
    """The item's permanent id in the feed it was read from (RSS guid, Atom id, JSON Feed
    id) when that is a URI; kept when the item is published again (see `item_id`)."""

    converted_from: str = ""
    """The language the article was written in when an output showed it in the other
    Chinese script (`script:`); empty: shown as written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """What a feed says about itself (RSS channel, Atom feed, JSON Feed top level)."""

    title: str
    """The feed's name, plain text."""

    link: str = ""
    """The home page the feed belongs to."""

    description: str = ""
    """One line about the feed, plain text."""

    language: str = ""
    """BCP 47 tag of the feed as a whole."""

    self_url: str = ""
    """Where the feed itself is published (`atom:link rel="self"`)."""

    updated: datetime | None = None
    """When the feed last changed, time-zone aware."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    """A channel and its articles, newest first: what the feed writers write."""

    channel: Channel
    """The feed's own metadata."""

    articles: tuple[Article, ...] = ()
    """The items, newest first, one per canonical URL."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """A book of the articles of one period: what the EPUB writer writes."""

    name: str
    """The masthead (`feedx 周报`)."""

    label: str
    """The period as shown: an ISO week (`2024-W21`) or a date range."""

    start: date
    """First day of the period."""

    end: date
    """Last day of the period (inclusive)."""

    language: str
    """BCP 47 tag of the book: the language most of its articles are in."""

    identifier: str
    """Stable identifier (`urn:uuid:` of name and period): a rebuild is the same book."""

    modified: datetime
    """The newest article's time: the book's `dcterms:modified`, never the clock."""

    articles: tuple[Article, ...] = ()
    """The stories in reading order: by day, then source, then time; each story once."""


# Sorts after every real date when newest come first.
_NO_DATE = datetime.min.replace(tzinfo=UTC)


def item_date(article: Article) -> datetime | None:
    """The date an article is filed under: its publication, else its capture; None."""
    return article.published or article.captured


def newest_first(article: Article) -> tuple[bool, datetime]:
    """A sort key, with `reverse=True`: dated articles newest first, undated ones last."""
    moment = article.published or article.captured
    return (moment is not None, moment or _NO_DATE)


# --- JSON -----------------------------------------------------------------------------
# The JSON form is the model's fields by name; datetimes are ISO 8601 with their offset.
# Conversion is driven by the type hints so that a new field needs no new code here.

_T = TypeVar("_T")


def to_json(value: Any) -> Any:
    """Turn a model value into plain JSON-ready data (dicts, lists, strings, numbers)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_json(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def from_json(cls: type[_T], data: Any) -> _T:
    """Build a model value of type `cls` from what `to_json` produced."""
    return typing.cast(_T, _decode(cls, data))


@functools.cache
def _type_hints(cls: Any) -> dict[str, Any]:
    # get_type_hints evaluates annotations each call; an archive reads thousands of articles.
    return typing.get_type_hints(cls)


def _decode(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode(inner, data)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(hint)
        return tuple(_decode(inner, item) for item in data)
    if hint is datetime:
        return datetime.fromisoformat(data)
    if dataclasses.is_dataclass(hint):
        hints = _type_hints(typing.cast(type, hint))
        names = {f.name for f in dataclasses.fields(hint)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(
                f"unknown {typing.cast(type, hint).__name__} fields: {', '.join(sorted(unknown))}"
            )
        return typing.cast(Any, hint)(**{name: _decode(hints[name], data[name]) for name in data})
    return data
