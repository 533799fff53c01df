"""URL rules: which schemes are safe, which parameters track, how to join and hash."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import re
import unicodedata
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


# RFC 3986: what a URI may hold as it is; the rest is written %XX (UTF-8 for non-ASCII).
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCHAR = _UNRESERVED | frozenset("!$&'()*+,;=:@")
_SAFE_IN = {
    "host": _UNRESERVED | frozenset("!$&'()*+,;="),
    "path": _PCHAR | {"/"},
    "query": _PCHAR | {"/", "?"},
}
DEFAULT_PORTS = {"http": 80, "https": 443}
"""The port each web scheme means when it names none."""
_OCTET = re.compile(r"%[0-9A-Fa-f]{2}|.", re.S)


@functools.lru_cache(maxsize=4096)
def as_uri(url: str) -> str:
    """`url` as a URI in RFC 3986's normal form: ASCII only (a non-ASCII host in IDNA,
    other characters %XX-encoded), lower-case scheme and host, no default port, no dot
    segments, `%XX` only where needed and upper-case, `/` for an empty path.

    What strict readers and the feed validator take, and how they compare addresses;
    a browser goes to the same place for either form.
    """
    text = unicodedata.normalize("NFC", url.strip())
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return url
    netloc = ""
    if parts.netloc:
        host = _ascii_host(parts.hostname or "")
        if ":" in host:
            host = f"[{host}]"  # IPv6
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (_encoded(userinfo, "path").replace("/", "%2F") + "@" if userinfo else "") + host
        if port is not None and port != DEFAULT_PORTS.get(parts.scheme.lower()):
            netloc += f":{port}"
    path = _encoded(parts.path, "path")
    if netloc:
        path = _without_dot_segments(path) or "/"
    query = _encoded(parts.query, "query") if "?" in url else ""
    fragment = _encoded(parts.fragment, "query") if "#" in url else ""
    uri = f"{parts.scheme.lower()}:" if parts.scheme else ""
    # An authority, even an empty one (`file:///x`), keeps its `//`.
    uri += f"//{netloc}" if text[len(parts.scheme) :].lstrip(":").startswith("//") else ""
    uri += path
    uri += f"?{query}" if query or parts.query else ""
    return uri + (f"#{fragment}" if fragment else "")


def _ascii_host(host: str) -> str:
    if ":" in host:
        return host.lower()  # an IPv6 address, which urlsplit has checked
    if not host.isascii():
        with contextlib.suppress(UnicodeError):  # no IDNA form (a long label): %XX below
            host = host.encode("idna").decode("ascii")
    return _encoded(host.lower(), "host")


def _encoded(part: str, where: str) -> str:
    safe = _SAFE_IN[where]
    out = []
    for octet in _OCTET.findall(part):
        if len(octet) == 3:  # %XX: decoded when unreserved, else kept, in upper case
            char = chr(int(octet[1:], 16))
            out.append(char if char in _UNRESERVED else octet.upper())
        elif octet in safe:
            out.append(octet)
        else:
            out.append("".join(f"%{byte:02X}" for byte in octet.encode("utf-8", "replace")))
    return "".join(out)


def _without_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4, for a path that starts at the authority.
    segments: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if segments:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    if path.rsplit("/", maxsplit=1)[-1] in (".", ".."):
        segments.append("")  # `/a/.` is `/a/`
    return "/" + "/".join(segments) if path else ""
