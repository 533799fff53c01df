"""The one way this tool fetches from the network: bounded, and never into private space.

Every address a name resolves to is checked at connect time, in the network
backend itself, so that neither a redirect nor a DNS answer that changes between
check and connect (rebinding) can reach loopback, private, link-local, CGNAT or
cloud-metadata addresses, unless the config allows private addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from convert import __version__
from convert.config import Download
from convert.errors import ConvertError

USER_AGENT = f"feedx-convert/{__version__} (+https://pypi.org/project/feedx-convert/)"
_CHUNK = 64 * 1024


class RefusedAddress(Exception):
    """A connection the rules forbid: the address is not on the public internet."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful download."""

    url: str
    """The final address, after redirects."""

    content: bytes
    """The response body, at most `max_bytes` long."""

    content_type: str
    """The Content-Type header, lower-case, without parameters."""


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

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private

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
            raise httpcore.ConnectError(f"cannot resolve {host}: {error.strerror}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if self._allow_private or address_is_public(a)]
        if not allowed:
            raise RefusedAddress(
                f"{host} is {', '.join(addresses)}, not a public address "
                "(download.allow_private is false)"
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

    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_GuardedBackend(allow_private),
        )


class Downloader:
    """Fetches http(s) URLs with timeouts, a size cap and a redirect limit."""

    def __init__(self, limits: Download) -> None:
        self.limits = limits
        self._client = httpx.Client(
            transport=_GuardedTransport(limits.allow_private),
            timeout=httpx.Timeout(limits.timeout),
            follow_redirects=False,  # followed by hand so that each hop is checked
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # a proxy from the environment would bypass the guard
        )

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

    def get(self, url: str) -> Fetched:
        """Download `url`; a ConvertError names the URL and the reason on any failure."""
        current = url
        for _hop in range(self.limits.max_redirects + 1):
            try:
                scheme = urlsplit(current).scheme.lower()
            except ValueError as error:  # "Invalid IPv6 URL"
                raise ConvertError(url, f"bad address {current!r}: {error}") from None
            if scheme not in ("http", "https"):
                raise ConvertError(url, f"refused: {scheme or 'no'} scheme, only http(s)")
            try:
                with self._client.stream("GET", current) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        try:
                            current = urljoin(current, location)
                        except ValueError as error:  # a server's malformed Location
                            raise ConvertError(url, f"bad address {location!r}: {error}") from None
                        continue
                    if response.status_code != 200:
                        raise ConvertError(url, f"HTTP {response.status_code}")
                    content = self._read_capped(response, url)
                    kind = response.headers.get("content-type", "").split(";")[0].strip()
                    return Fetched(url=current, content=content, content_type=kind.lower())
            except RefusedAddress as error:
                raise ConvertError(url, f"refused: {error}") from None
            except httpx.InvalidURL as error:  # not an HTTPError: would escape uncaught
                raise ConvertError(url, f"bad address {current!r}: {error}") from None
            except httpx.TimeoutException:
                raise ConvertError(url, f"timed out after {self.limits.timeout:g} s") from None
            except httpx.HTTPError as error:
                raise ConvertError(url, f"download failed: {error}") from None
        raise ConvertError(url, f"more than {self.limits.max_redirects} redirects")

    def _read_capped(self, response: httpx.Response, url: str) -> bytes:
        limit = self.limits.max_bytes
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
