"""URL rules: which schemes are safe, which parameters track, what makes two URLs one."""

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


def canonical_url(url: str, tracking: Iterable[str]) -> str:
    """The form under which two copies of one article compare equal.

    Lower-case scheme and host, no `m.` mobile host, no default port, no
    tracking parameters, no fragment.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host.startswith("m."):
        host = host[2:]
    if port and (scheme, port) not in {("http", 80), ("https", 443)}:
        host = f"{host}:{port}"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not is_tracking_parameter(k, tracking)
        ]
    )
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def stable_id(text: str) -> str:
    """A short stable identifier for `text` (16 hex digits of its SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# Path segments that name an edition of a story, not a story: NYT's
# /.../slug/zh-hant/ and /.../slug/dual/ are the same story as /.../slug/.
EDITION_SEGMENTS = frozenset({"zh-hant", "zh-hans", "dual"})
FEEDX = "feedx"


def story_key(canonical_url: str, feedx_hosts: Iterable[str]) -> str:
    """The key shared by every mirror and language edition of one story (`host/path`)."""
    try:
        parts = urlsplit(canonical_url.strip())
        port = parts.port
    except ValueError:
        return canonical_url.strip()
    host = (parts.hostname or "").lower()
    if not host:
        return canonical_url.strip()  # not a URL (an article id): it is its own story
    # The scheme is left out: http and https copies of an article are one story.
    # `m.example.com` loses its `m.`; `m.com` itself keeps it (it would be left a bare TLD).
    while host.startswith(("m.", "www.")) and "." in host.partition(".")[2]:
        host = host.partition(".")[2]
    # Only whole labels match: `feedx.net` and `www.feedx.net`, never `notfeedx.net`.
    if any(host == h or host.endswith(f".{h}") for h in (h.lower() for h in feedx_hosts)):
        host = FEEDX
    elif port and (parts.scheme.lower(), port) not in {("http", 80), ("https", 443)}:
        host = f"{host}:{port}"
    segments = [s for s in parts.path.split("/") if s]
    while segments and segments[-1].lower() in EDITION_SEGMENTS:
        segments.pop()
    return "/".join([host, *segments])
