"""When two items are one article, when they are one story, and which edition a reader gets.

- **Copies** are one article at several addresses: a feedx mirror host for the origin's,
  http or https, `www.` or `m.`, tracking parameters, a trailing slash, a fragment.
  They share a `copy_key`, and so an `Article.id`: the archive keeps one row for them,
  a feed one item, a Markdown folder one file.
- **Editions** are one story in several languages or scripts: NYT's `/zh-hans/`,
  `/zh-hant/` and `/dual/` after the story's own path. They share a `story_key`: a
  digest shows the story once, in the edition `edition_rank` puts first.

Pure functions of addresses and a few article fields; the archive, the feed merge,
the Markdown folder and the digest all ask here, so they agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from convert.model import Article
from convert.urls import (
    DEFAULT_PORTS,
    as_uri,
    host_in,
    is_tracking_parameter,
    is_web_url,
    stable_id,
)

# Path segments that name an edition of a story, not a story: NYT's
# /.../slug/zh-hant/ and /.../slug/dual/ are the same story as /.../slug/.
EDITION_SEGMENTS = frozenset({"zh-hant", "zh-hans", "dual"})
MIRROR = "feedx"
"""The host every feedx mirror domain counts as."""
# Sub-domains that serve the same site: `m.example.com` and `www.example.com` are it.
_ALIAS_LABELS = ("m.", "www.")
# The script a reader gets when they ask for none, or for one no edition has.
DEFAULT_SCRIPT = "zh-hans"
# Sorts before every real time: an undated edition loses to a dated one.
_UNDATED = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Identity:
    """The rules of sameness: feedx's own domains and the parameters that only track."""

    mirror_hosts: tuple[str, ...]
    """feedx's domains (`feedx.net`, ...): an article there is the one at its origin."""

    tracking: tuple[str, ...]
    """Glob patterns of query parameters that never tell two articles apart (`utm_*`)."""

    def canonical_url(self, url: str) -> str:
        """The article's address as published: lower-case scheme and host, no `m.`, no
        default port, no tracking parameters, no fragment (`Article.canonical_url`)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return url.strip()
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if host.startswith("m."):
            host = host[2:]
        if port and port != DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
        return urlunsplit((scheme, host, parts.path or "/", self._query(parts.query), ""))

    def article_id(self, canonical_url: str) -> str:
        """`Article.id` of an article with an address: the same for every copy of it."""
        return stable_id(self.key_of(canonical_url))

    def key_of(self, url: str) -> str:
        """The copy key of an address: `host/path?query` as every copy spells it."""
        address = self._address(url)
        if address is None:
            return url.strip()  # not a URL (an article's id): it is its own key
        host, segments, query = address
        return _joined(host, segments, query)

    def copy_key(self, article: Article) -> str:
        """What every copy of `article` shares (its id when it has no address)."""
        return self.key_of(article.canonical_url) if article.canonical_url else article.id

    def story_key(self, article: Article) -> str:
        """What every copy and edition of `article`'s story shares."""
        return self.story_of(article.canonical_url) if article.canonical_url else article.id

    def story_of(self, url: str) -> str:
        """The story key of an address: its copy key without a trailing edition segment."""
        address = self._address(url)
        if address is None:
            return url.strip()
        host, segments, query = address
        while segments and segments[-1].lower() in EDITION_SEGMENTS:
            segments.pop()
        return _joined(host, segments, query)

    def _address(self, url: str) -> tuple[str, list[str], str] | None:
        """Host, path segments and query as every copy of the article spells them (in
        RFC 3986's normal form: `/a/../b` is `/b`, `%7e` is `~`, `新` is `%E6%96%B0`)."""
        try:
            parts = urlsplit(as_uri(url))
            port = parts.port
        except ValueError:
            return None
        host = (parts.hostname or "").lower()
        if not host:
            return None
        # `m.example.com` loses its `m.`; `m.com` itself keeps it (it would be left a bare TLD).
        while host.startswith(_ALIAS_LABELS) and "." in host.partition(".")[2]:
            host = host.partition(".")[2]
        if host_in(host, self.mirror_hosts):
            host = MIRROR
        elif port:  # as_uri has dropped a default one
            host = f"{host}:{port}"
        segments = [s for s in parts.path.split("/") if s]
        return host, segments, self._query(parts.query)

    def _query(self, query: str) -> str:
        pairs = parse_qsl(query, keep_blank_values=True)
        return urlencode([(k, v) for k, v in pairs if not is_tracking_parameter(k, self.tracking)])

    def one_per_story(self, articles: Iterable[Article], language: str) -> list[Article]:
        """Each story once, in the edition `edition_rank` prefers, in the order first seen."""
        best: dict[str, tuple[tuple[bool, bool, datetime, str], Article]] = {}
        for article in articles:
            story = self.story_key(article)
            moment = article.published or article.captured
            rank = edition_rank(article.language, moment, self.copy_key(article), language)
            if story not in best or rank > best[story][0]:
                best[story] = (rank, article)
        return [article for _rank, article in best.values()]


def item_id(article: Article) -> str:
    """The item's permanent id in a feed: its guid, else its URL, else a URN of its id."""
    if article.guid:
        return article.guid
    return article.url if is_web_url(article.url) else f"urn:feedx-convert:{article.id}"


def text_id(text: str) -> str:
    """`Article.id` of an article without an address: its text identifies it."""
    return stable_id(text)


def edition_rank(
    language: str, published: datetime | None, key: str, wanted: str
) -> tuple[bool, bool, datetime, str]:
    """How much a reader of `wanted` wants this edition of a story: the higher, the more.

    The asked-for language first (tags compared without case), else Simplified Chinese,
    else the newest; equal editions by copy key, so that the choice never depends on
    the order they were read in.
    """
    folded = language.casefold()
    return (
        bool(wanted) and folded == wanted.casefold(),
        folded == DEFAULT_SCRIPT,
        published.astimezone(UTC) if published else _UNDATED,
        key,
    )


def _joined(host: str, segments: list[str], query: str) -> str:
    key = "/".join([host, *segments])
    return f"{key}?{query}" if query else key
