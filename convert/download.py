"""The one way this tool fetches from the network: bounded, and never into private space.

Every address a name resolves to is checked at connect time, in the network
backend itself, so that neither a redirect nor a DNS answer that changes between
check and connect (rebinding) can reach loopback, private, link-local, CGNAT or
cloud-metadata addresses, unless the config allows private addresses.

Each download is bounded three ways: a timeout per connect and per read, a size cap
on the body (counted both as received and as decoded, so a gzip bomb stops at the
cap without ever being inflated past it), and a deadline on the whole download
(redirects, retries and a body that drips in a byte at a time all count).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import time
import zlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urljoin, urlsplit

from convert import __version__
from convert.config import Download
from convert.errors import ConvertError
from convert.fsutil import write_atomic

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

USER_AGENT = f"feedx-convert/{__version__} (+https://pypi.org/project/feedx-convert/)"

# The only content codings asked for, and so the only ones decoded (by `_Inflater`).
_ACCEPT_ENCODING = "gzip, deflate"

# When the download running in this thread must be over (time.monotonic()), if any.
_DEADLINE: ContextVar[float | None] = ContextVar("download_deadline", default=None)


class RefusedAddress(Exception):
    """A connection the rules forbid: the address is not on the public internet."""


class UnresolvableHost(Exception):
    """A host name that DNS does not know."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful download."""

    url: str
    """The final address, after redirects."""

    content: bytes
    """The response body, at most `max_bytes` long."""

    content_type: str
    """The Content-Type header, lower-case, without parameters."""

    etag: str = ""
    """The ETag validator, when the server sent one."""

    last_modified: str = ""
    """The Last-Modified validator, when the server sent one."""

    not_modified: bool = False
    """The server answered 304 to a conditional request (no content)."""

    from_cache: bool = False
    """The content is the cached copy, confirmed unchanged by the server."""


# Not public, whatever this Python's `is_global` says (its tables changed in 3.11.10,
# 3.12.4 and 3.13; some of these it calls global): IANA's special-purpose registries
# plus deprecated ranges that a router may still deliver inside a network.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 itself reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/96",  # unspecified, loopback, IPv4-compatible (deprecated: ::127.0.0.1)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo is judged by its client)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 segment identifiers
        "fc00::/7",  # unique local (fd00::/8)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed in some networks)
        "ff00::/8",  # multicast
    )
)

# The well-known NAT64 prefix: a translator on the path connects to the IPv4 address
# in the last 32 bits, so 64:ff9b::a9fe:a9fe is 169.254.169.254.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_is_public(address: str) -> bool:
    """True for an address on the public internet.

    An IPv6 address that carries an IPv4 address a translator or tunnel would reach
    (IPv4-mapped, NAT64, 6to4, Teredo) is judged by that IPv4 address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            ip = embedded
    if any(ip in network for network in _NOT_PUBLIC):
        return False
    return ip.is_global and not ip.is_multicast


class Downloader:
    """Fetches http(s) URLs with timeouts, a size cap and a redirect limit."""

    def __init__(self, limits: Download) -> None:
        self.limits = limits
        # Made on the first request: its TLS contexts cost about 0.1 s, and most runs
        # (local files, or one per worker process) never download anything.
        self._lazy_client: httpx.Client | None = None
        cache_root = Path(limits.cache_dir) if limits.cache_dir else user_cache_dir()
        self._cache = _ResponseCache(cache_root / "http")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        if self._lazy_client is not None:
            self._lazy_client.close()
            self._lazy_client = None

    @property
    def _client(self) -> httpx.Client:
        if self._lazy_client is None:
            # httpx (and rich, which it imports) cost a tenth of a second at start-up:
            # loaded with the first download only.
            import httpx  # noqa: PLC0415

            from convert.guarded_transport import GuardedTransport  # noqa: PLC0415

            limits = self.limits
            self._lazy_client = httpx.Client(
                transport=GuardedTransport(limits.allow_private, limits.allow_networks),
                timeout=httpx.Timeout(limits.timeout),
                follow_redirects=False,  # followed by hand so that each hop is checked
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": _ACCEPT_ENCODING},
                trust_env=False,  # a proxy from the environment would bypass the guard
            )
        return self._lazy_client

    def get(self, url: str, *, max_bytes: int | None = None, cache: bool = False) -> Fetched:
        """Download `url`; a ConvertError names the URL and the reason on any failure.

        5xx answers, timeouts and failed connections are retried with backoff. With
        `cache`, the last copy is revalidated (ETag, Last-Modified) and reused on 304.
        All of it, retries included, ends within `deadline` seconds.
        """
        limit = max_bytes or self.limits.max_bytes
        cached = self._cache.lookup(url) if cache else None
        headers = cached.validators() if cached else {}
        deadline = time.monotonic() + self.limits.deadline
        token = _DEADLINE.set(deadline)
        try:
            fetched = self._attempts(url, headers, limit, deadline)
        finally:
            _DEADLINE.reset(token)
        if fetched.not_modified:
            if cached is None:
                raise ConvertError(url, "HTTP 304 without a cached copy")
            return cached.fetched
        if cache:
            self._cache.store(url, fetched)
        return fetched

    def _attempts(self, url: str, headers: dict[str, str], limit: int, deadline: float) -> Fetched:
        """The first attempt and the retries, with backoff, all before `deadline`."""
        for attempt in range(self.limits.retries + 1):
            try:
                return self._follow(url, headers, limit, deadline)
            except _Transient as error:
                if time.monotonic() >= deadline:
                    raise ConvertError(url, self._late()) from None
                if attempt == self.limits.retries:
                    raise ConvertError(url, error.reason) from None
                pause = self.limits.backoff * 2**attempt
                if time.monotonic() + pause >= deadline:
                    raise ConvertError(url, f"{error.reason}; {self._late()}") from None
                time.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _late(self) -> str:
        return f"not done within the {self.limits.deadline:g}-second deadline (download.deadline)"

    def _follow(self, url: str, headers: dict[str, str], limit: int, deadline: float) -> Fetched:
        """One attempt: the request and its redirects, each hop checked."""
        import httpx  # noqa: PLC0415 - loaded by the client already (see _client)

        current = url
        for _hop in range(self.limits.max_redirects + 1):
            try:
                scheme = urlsplit(current).scheme.lower()
            except ValueError as error:  # "Invalid IPv6 URL"
                raise ConvertError(url, f"bad address {current!r}: {error}") from None
            if scheme not in ("http", "https"):
                raise ConvertError(url, f"refused: {scheme or 'no'} scheme, only http(s)")
            try:
                with self._client.stream("GET", current, headers=headers) as response:
                    # Not `is_redirect`: httpx counts every 3xx, 304 included, and
                    # a 3xx without Location would re-request the same URL.
                    if response.has_redirect_location:
                        location = response.headers.get("location", "")
                        try:
                            current = urljoin(current, location)
                        except ValueError as error:  # a server's malformed Location
                            raise ConvertError(url, f"bad address {location!r}: {error}") from None
                        continue
                    if response.status_code == 304 and headers:
                        return Fetched(url=current, content=b"", content_type="", not_modified=True)
                    if response.status_code >= 500:
                        raise _Transient(f"HTTP {response.status_code}")
                    if response.status_code != 200:
                        raise ConvertError(url, f"HTTP {response.status_code}")
                    content = self._read_capped(response, url, limit, deadline)
                    kind = response.headers.get("content-type", "").split(";")[0].strip()
                    return Fetched(
                        url=current,
                        content=content,
                        content_type=kind.lower(),
                        etag=response.headers.get("etag", ""),
                        last_modified=response.headers.get("last-modified", ""),
                    )
            except RefusedAddress as error:
                raise ConvertError(url, f"refused: {error}") from None
            except UnresolvableHost as error:
                raise ConvertError(url, str(error)) from None
            except httpx.InvalidURL as error:  # not an HTTPError: would escape uncaught
                raise ConvertError(url, f"bad address {current!r}: {error}") from None
            except httpx.TimeoutException:
                if time.monotonic() >= deadline:
                    raise ConvertError(url, self._late()) from None
                raise _Transient(f"timed out after {self.limits.timeout:g} s") from None
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as error:
                raise _Transient(f"download failed: {error}") from None
            except httpx.HTTPError as error:
                raise ConvertError(url, f"download failed: {error}") from None
        raise ConvertError(url, f"more than {self.limits.max_redirects} redirects")

    def _read_capped(
        self, response: httpx.Response, url: str, limit: int, deadline: float
    ) -> bytes:
        """The body, decoded here (not by httpx) so that the cap bounds the decoded size too."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ConvertError(url, f"larger than the {limit}-byte limit ({declared} bytes)")
        inflater = _Inflater.for_coding(response.headers.get("content-encoding", ""), url)
        body = bytearray()
        received = 0
        for raw in response.iter_raw():
            received += len(raw)
            if received > limit:  # compressed data that never ends, or barely inflates
                raise ConvertError(url, f"larger than the {limit}-byte limit")
            if time.monotonic() >= deadline:
                raise ConvertError(url, self._late())
            pieces = inflater.inflate(raw, limit - len(body)) if inflater else iter((raw,))
            for piece in pieces:
                body += piece
                if len(body) > limit:
                    raise ConvertError(url, f"larger than the {limit}-byte limit")
        if inflater:
            body += inflater.finish()
            if len(body) > limit:
                raise ConvertError(url, f"larger than the {limit}-byte limit")
        return bytes(body)


class _Inflater:
    """Undoes a gzip or deflate Content-Encoding, never producing more than it is asked for.

    httpx inflates each network read in full, so 64 KB of a gzip bomb becomes 64 MB in
    memory before any cap is checked, and a stacked coding (`gzip, gzip`) becomes
    gigabytes. Here each call yields at most `room + 1` bytes, so the size cap stops
    a bomb after at most one chunk past the cap.
    """

    def __init__(self, coding: str, url: str) -> None:
        self._coding = coding
        self._url = url
        self._started = False
        # gzip: a gzip header only; deflate: a zlib stream, or (as some servers send)
        # a raw deflate stream, tried when the first bytes are not a zlib header.
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16 if coding == "gzip" else 15)

    @classmethod
    def for_coding(cls, header: str, url: str) -> _Inflater | None:
        """The inflater for a Content-Encoding header, None for none; unknown codings fail."""
        codings = [c.strip().lower() for c in header.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if not codings:
            return None
        if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
            return cls("deflate" if codings[0] == "deflate" else "gzip", url)
        # Only gzip and deflate are asked for; a stacked coding is a bomb's trick.
        raise ConvertError(url, f"unsupported Content-Encoding {header.strip()[:60]!r}")

    def inflate(self, data: bytes, room: int) -> Iterator[bytes]:
        """The decoded bytes of `data`, in pieces; stops once more than `room` came out."""
        produced = 0
        pending = data
        while pending and produced <= room:
            try:
                piece = self._inflate.decompress(pending, room - produced + 1)
            except zlib.error as error:
                if self._coding == "deflate" and not self._started:
                    self._started = True
                    self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue  # the same bytes, as raw deflate
                raise ConvertError(self._url, f"bad {self._coding} data: {error}") from None
            self._started = True
            pending = self._inflate.unconsumed_tail
            produced += len(piece)
            yield piece
            if self._inflate.eof:
                return  # anything after the end of the stream is ignored, as httpx does

    def finish(self) -> bytes:
        """What the inflater still holds once every byte has been received."""
        try:
            return self._inflate.flush()
        except zlib.error as error:
            raise ConvertError(self._url, f"bad {self._coding} data: {error}") from None


class _Transient(Exception):
    """A failure worth another attempt: a 5xx answer, a timeout, a lost connection."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _CachedCopy:
    fetched: Fetched

    def validators(self) -> dict[str, str]:
        headers = {}
        if self.fetched.etag:
            headers["If-None-Match"] = self.fetched.etag
        if self.fetched.last_modified:
            headers["If-Modified-Since"] = self.fetched.last_modified
        return headers


class _ResponseCache:
    """Last copies of fetched feeds with their validators, one pair of files per URL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.folder / f"{key}.body", self.folder / f"{key}.json"

    def lookup(self, url: str) -> _CachedCopy | None:
        body, meta = self._paths(url)
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            content = body.read_bytes()
        except (OSError, ValueError):
            return None
        if info.get("url") != url or len(content) != info.get("size"):
            return None
        return _CachedCopy(
            Fetched(
                url=str(info.get("final_url", url)),
                content=content,
                content_type=str(info.get("content_type", "")),
                etag=str(info.get("etag", "")),
                last_modified=str(info.get("last_modified", "")),
                from_cache=True,
            )
        )

    def store(self, url: str, fetched: Fetched) -> None:
        if not (fetched.etag or fetched.last_modified):
            return  # nothing to revalidate with
        body, meta = self._paths(url)
        info = {
            "url": url,
            "final_url": fetched.url,
            "content_type": fetched.content_type,
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
            "size": len(fetched.content),
        }
        try:
            write_atomic(body, fetched.content)
            write_atomic(meta, json.dumps(info))
        except OSError as error:
            log.warning("%s: cannot cache the download: %s", url, error.strerror or error)


def user_cache_dir() -> Path:
    """This tool's folder in the user's cache (XDG_CACHE_HOME, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feedx-convert"
