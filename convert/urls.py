"""URL rules: which schemes are safe, which parameters track, how to join and hash."""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

WEB_SCHEMES = frozenset({"http", "https"})


# Cached: one article checks the same few addresses in the reader, the picture rewrite
# and the sanitizer, and urlsplit is a tenth of its cleaning time.
@functools.lru_cache(maxsize=4096)
def is_web_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)


# An absolute http(s) URL that urljoin gives back unchanged whatever the base: lower-case
# scheme, a host, no white space or controls (which urlsplit strips), no brackets (IPv6,
# which it checks), no `;` (path parameters it rewrites), and no empty `?` or `#`.
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[^/?#;\[\]\s\x00-\x1f\x7f]+(?:/[^?#;\s\x00-\x1f\x7f]*)?"
    r"(?:\?[^#\s\x00-\x1f\x7f]+)?(?:#[^\s\x00-\x1f\x7f]+)?"
)


def is_relative_reference(url: str) -> bool:
    """True for an address relative to its page (`pic.png`, `../a.html`, `/about`, `#top`):
    no scheme, not empty, no backslash (which browsers read as a slash)."""
    if not url or "\\" in url:
        return False
    try:
        return not urlsplit(url).scheme
    except ValueError:
        return False


def absolute_url(base: str, url: str) -> str:
    """`urljoin(base, url)`, without parsing the many URLs that are absolute already."""
    if _PLAIN_ABSOLUTE.fullmatch(url):
        return url
    return urljoin(base, url)


@functools.lru_cache(maxsize=4096)
def host_of(url: str) -> str:
    """Lower-case host name of `url`, or '' when it has none."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_tracking_parameter(name: str, patterns: Iterable[str]) -> bool:
    """True when a query parameter name matches one of the glob `patterns` (`utm_*`)."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern) for pattern in patterns)


def drop_tracking(url: str, patterns: Iterable[str]) -> str:
    """`url` without tracking parameters; unchanged when it has none."""
    if "?" not in url:
        return url  # no query: nothing to drop (and most URLs have none)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    patterns = tuple(patterns)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not is_tracking_parameter(k, patterns)]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


def host_in(host: str, domains: Iterable[str]) -> bool:
    """True when `host` is one of `domains` or under one: whole labels only, so that
    `www.feedx.net` is under `feedx.net` and `notfeedx.net` is not."""
    host = host.lower()
    return any(host == d or host.endswith(f".{d}") for d in (d.lower() for d in domains))


def stable_id(text: str) -> str:
    """A short stable identifier for `text` (16 hex digits of its SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
