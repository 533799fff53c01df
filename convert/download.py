"""The one way this tool fetches from the network: bounded, and never into private space.

Every address a name resolves to is checked at connect time, in the network
backend itself, so that neither a redirect nor a DNS answer that changes between
check and connect (rebinding) can reach loopback, private, link-local, CGNAT or
cloud-metadata addresses, unless the config allows private addresses.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from convert import __version__
from convert.config import Download
from convert.errors import ConvertError
from convert.fsutil import write_atomic

log = logging.getLogger(__name__)

USER_AGENT = f"feedx-convert/{__version__} (+https://pypi.org/project/feedx-convert/)"
_CHUNK = 64 * 1024


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


def address_is_public(address: str) -> bool:
    """True for an address on the public internet (IPv4-mapped IPv6 judged as IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, connecting only to addresses the rules allow."""

    def __init__(self, allow_private: bool, allow_networks: Iterable[str] = ()) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in allow_networks]

    def _allows(self, address: str) -> bool:
        if self._allow_private or address_is_public(address):
            return True
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip in network for network in self._allowed)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            # Not worth a retry: the name does not exist, or this machine has no DNS.
            raise UnresolvableHost(f"cannot resolve {host}: {error.strerror}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if self._allows(a)]
        if not allowed:
            raise RefusedAddress(
                f"{host} is {', '.join(addresses)}, not a public address "
                "(see download.allow_private and allow_networks)"
            )
        return self._inner.connect_tcp(
            allowed[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise RefusedAddress("unix sockets are not used")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over the guarded backend (httpx has no public hook for it)."""

    def __init__(self, allow_private: bool, allow_networks: Iterable[str] = ()) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(allow_private, allow_networks),
        )


class Downloader:
    """Fetches http(s) URLs with timeouts, a size cap and a redirect limit."""

    def __init__(self, limits: Download) -> None:
        self.limits = limits
        self._client = httpx.Client(
            transport=_GuardedTransport(limits.allow_private, limits.allow_networks),
            timeout=httpx.Timeout(limits.timeout),
            follow_redirects=False,  # followed by hand so that each hop is checked
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # a proxy from the environment would bypass the guard
        )
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
        self._client.close()

    def get(self, url: str, *, max_bytes: int | None = None, cache: bool = False) -> Fetched:
        """Download `url`; a ConvertError names the URL and the reason on any failure.

        5xx answers, timeouts and failed connections are retried with backoff. With
        `cache`, the last copy is revalidated (ETag, Last-Modified) and reused on 304.
        """
        limit = max_bytes or self.limits.max_bytes
        cached = self._cache.lookup(url) if cache else None
        headers = cached.validators() if cached else {}
        for attempt in range(self.limits.retries + 1):
            try:
                fetched = self._follow(url, headers, limit)
                break
            except _Transient as error:
                if attempt == self.limits.retries:
                    raise ConvertError(url, error.reason) from None
                time.sleep(self.limits.backoff * 2**attempt)
        if fetched.not_modified:
            if cached is None:
                raise ConvertError(url, "HTTP 304 without a cached copy")
            return cached.fetched
        if cache:
            self._cache.store(url, fetched)
        return fetched

    def _follow(self, url: str, headers: dict[str, str], limit: int) -> Fetched:
        """One attempt: the request and its redirects, each hop checked."""
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
                    content = self._read_capped(response, url, limit)
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
                raise _Transient(f"timed out after {self.limits.timeout:g} s") from None
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as error:
                raise _Transient(f"download failed: {error}") from None
            except httpx.HTTPError as error:
                raise ConvertError(url, f"download failed: {error}") from None
        raise ConvertError(url, f"more than {self.limits.max_redirects} redirects")

    def _read_capped(self, response: httpx.Response, url: str, limit: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ConvertError(url, f"larger than the {limit}-byte limit ({declared} bytes)")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ConvertError(url, f"larger than the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)


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
