"""The one way this tool fetches from the network: bounded, and never into private space.

Every address a name resolves to is checked at connect time, in the network
backend itself (`transport`, by the rules of `policy`), so that neither a redirect nor
a DNS answer that changes between check and connect (rebinding) can reach loopback,
private, link-local, CGNAT or cloud-metadata addresses, unless the config allows
private addresses.

Each download is bounded three ways: a timeout per connect and per read, a size cap
on the body (counted both as received and as decoded, so a gzip bomb stops at the
cap without ever being inflated past it: `inflate`), and a deadline on the whole
download (redirects, retries and a body that drips in a byte at a time all count).
The downloads of one run together end by the run's deadline (`run_deadline`): the
rest are skipped (`OutOfTime`), with one warning, and the run writes what it has.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urljoin, urlsplit

from convert import __version__
from convert.config import Download
from convert.errors import ConvertError
from convert.net.cache import ResponseCache, user_cache_dir
from convert.net.fetched import Fetched
from convert.net.inflate import ACCEPT_ENCODING, Inflater
from convert.net.policy import DEADLINE, AddressPolicy, RefusedAddress, UnresolvableHost
from convert.urls import host_of

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# What httpx and h11 say of an answer that is broken as sent (a Location that is no
# URL, a header with a NUL), unlike a connection cut midway: asking again gets the same.
_BROKEN_ANSWERS = ("Invalid URL in location header", "illegal header line")

TIMEOUTS_PER_HOST = 2
"""Timeouts after which a host is not asked again in this run (a stalled server)."""

USER_AGENT = f"feedx-convert/{__version__} (+https://pypi.org/project/feedx-convert/)"


class OutOfTime(ConvertError):
    """A download skipped, or cut short, because the run's time for downloads ran out."""


class Downloader:
    """Fetches http(s) URLs with timeouts, a size cap and a redirect limit."""

    def __init__(self, limits: Download, *, ends_at: float | None = None) -> None:
        self.limits = limits
        self.ends_at = time.time() + limits.run_deadline if ends_at is None else ends_at
        """When (seconds since the epoch: worker processes share it) the run's downloads end."""
        # What it may reach, as text: caches keyed by it never hand a stricter run what
        # a looser one fetched.
        self.address_rule = (
            "any address"
            if limits.allow_private
            else "public, " + ",".join(sorted(limits.allow_networks))
        )
        # Made on the first request: its TLS contexts cost about 0.1 s, and most runs
        # (local files, or one per worker process) never download anything.
        self._lazy_client: httpx.Client | None = None
        cache_root = Path(limits.cache_dir) if limits.cache_dir else user_cache_dir()
        self._cache = ResponseCache(cache_root / "http")
        # Hosts that timed out, and those given up on: a server that sends its headers
        # and then nothing would cost every one of its pictures the whole deadline.
        self._timeouts: Counter[str] = Counter()
        self._lock = threading.Lock()  # pictures are fetched from several threads
        self._out_of_time_said = False

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

            from convert.net.transport import GuardedTransport  # noqa: PLC0415

            limits = self.limits
            policy = AddressPolicy(limits.allow_private, limits.allow_networks)
            self._lazy_client = httpx.Client(
                transport=GuardedTransport(policy),
                timeout=httpx.Timeout(limits.timeout),
                follow_redirects=False,  # followed by hand so that each hop is checked
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
                trust_env=False,  # a proxy from the environment would bypass the guard
            )
        return self._lazy_client

    def get(self, url: str, *, max_bytes: int | None = None, cache: bool = False) -> Fetched:
        """Download `url`; a ConvertError names the URL and the reason on any failure.

        5xx answers, timeouts and failed connections are retried with backoff. With
        `cache`, the last copy is revalidated (ETag, Last-Modified) and reused on 304.
        All of it, retries included, ends within `deadline` seconds, and by the run's
        deadline (else OutOfTime).
        """
        limit = max_bytes or self.limits.max_bytes
        host = host_of(url)
        if self._timeouts[host] >= TIMEOUTS_PER_HOST:
            raise ConvertError(url, f"not asked: {host} timed out {TIMEOUTS_PER_HOST} times")
        left = self.ends_at - time.time()
        if left <= 0:
            raise self._out_of_time(url)
        cached = self._cache.lookup(url) if cache else None
        headers = cached.validators() if cached else {}
        allowed = min(self.limits.deadline, left)
        deadline = _Deadline(time.monotonic() + allowed, allowed < self.limits.deadline)
        token = DEADLINE.set(deadline.at)
        try:
            fetched = self._attempts(url, headers, limit, deadline)
        except ConvertError as error:
            if deadline.of_run and time.monotonic() >= deadline.at:
                raise self._out_of_time(url) from None
            raise error from None
        finally:
            DEADLINE.reset(token)
        if fetched.not_modified:
            if cached is None:
                raise ConvertError(url, "HTTP 304 without a cached copy")
            return cached.fetched
        if cache:
            self._cache.store(url, fetched)
        return fetched

    def _out_of_time(self, url: str) -> OutOfTime:
        """The error for a download the run has no time left for; the first one warns."""
        seconds = self.limits.run_deadline
        with self._lock:
            first, self._out_of_time_said = not self._out_of_time_said, True
        if first:
            log.warning(
                "downloads stopped: this run's %g seconds for downloads (download.run_deadline)"
                " are spent; the rest are skipped and the outputs written without them",
                seconds,
            )
        return OutOfTime(url, f"skipped: the run's {seconds:g} s for downloads are spent")

    def _attempts(
        self, url: str, headers: dict[str, str], limit: int, deadline: _Deadline
    ) -> Fetched:
        """The first attempt and the retries, with backoff, all before `deadline`."""
        for attempt in range(self.limits.retries + 1):
            try:
                return self._follow(url, headers, limit, deadline.at)
            except _Transient as error:
                if time.monotonic() >= deadline.at:
                    raise ConvertError(url, self._late()) from None
                if attempt == self.limits.retries:
                    raise ConvertError(url, error.reason) from None
                pause = self.limits.backoff * 2**attempt
                if error.wait is not None:
                    if error.wait > self.limits.retry_after_max:
                        reason = (
                            f"{error.reason}, retry after {error.wait:g} s: longer than "
                            f"download.retry_after_max ({self.limits.retry_after_max:g} s)"
                        )
                        raise ConvertError(url, reason) from None
                    pause = error.wait
                if time.monotonic() + pause >= deadline.at:
                    raise ConvertError(url, f"{error.reason}; {self._late()}") from None
                time.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _gives_up_on(self, host: str) -> bool:
        """Count a timeout of `host`; True (and one warning) when it is not to be asked again."""
        with self._lock:
            self._timeouts[host] += 1
            count = self._timeouts[host]
        if count == TIMEOUTS_PER_HOST:
            log.warning("%s: timed out %d times; not asked again in this run", host, count)
        return count >= TIMEOUTS_PER_HOST

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
                    if response.status_code in (429, 503):
                        # Busy, and maybe saying for how long: waited for (within the
                        # deadline and retry_after_max) and asked again, else skipped.
                        raise _Transient(
                            f"HTTP {response.status_code}",
                            wait=_retry_after(response.headers.get("retry-after", "")),
                        )
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
            except (httpx.InvalidURL, UnicodeError) as error:  # not HTTPErrors: would escape
                # (UnicodeError: a host IDNA cannot encode, `a..b`.)
                raise ConvertError(url, f"bad address {current!r}: {error}") from None
            except httpx.TimeoutException:
                if time.monotonic() >= deadline:
                    raise ConvertError(url, self._late()) from None
                reason = f"timed out after {self.limits.timeout:g} s"
                if self._gives_up_on(host_of(current)):
                    raise ConvertError(url, reason) from None  # not retried either
                raise _Transient(reason) from None
            except httpx.RemoteProtocolError as error:
                if str(error).startswith(_BROKEN_ANSWERS):  # the same next time: no retry
                    raise ConvertError(url, f"download failed: {error}") from None
                raise _Transient(f"download failed: {error}") from None  # a cut connection
            except (httpx.ConnectError, httpx.ReadError) as error:
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
        inflater = Inflater.for_coding(response.headers.get("content-encoding", ""), url)
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


@dataclass(frozen=True, slots=True)
class _Deadline:
    """When one download must be done, and whether that is the run's deadline (sooner
    than its own)."""

    at: float
    of_run: bool


class _Transient(Exception):
    """A failure worth another attempt: a 5xx or 429 answer, a timeout, a lost connection."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait  # seconds the server asked for (Retry-After), if it said


def _retry_after(value: str) -> float | None:
    """Seconds a `Retry-After` asks for (a number of seconds, or an HTTP date); None
    when it says nothing usable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
