"""Network faults from a hostile or broken server on 127.0.0.1, each over within 10 s.

A connection reset in the middle of a body, a body (or header) that drips in a
byte at a time, the wrong kind of content, a gzip bomb, endless redirects. The
servers are plain sockets in threads, since each fault needs control below HTTP;
only 127.0.0.1 is ever used, allowed through `download.allow_networks`.

The plain behaviour of the downloader (caps with and without Content-Length, a
single slow answer, redirect loops, 5xx retries) is in test_download.py and
test_feed_network.py; this file adds what a server can do on purpose.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import accepted, read_request_head
from pytest_httpserver import HTTPServer

from convert.cli import main
from convert.config import Download, load_config
from convert.errors import ConvertError
from convert.media.intake import fetch_pictures
from convert.media.prepare import PictureOptions
from convert.net.client import Downloader
from convert.net.fetched import Fetched

# An empty, non-final stored deflate block: valid after any flush, decodes to nothing.
EMPTY_BLOCK = b"\x00\x00\x00\xff\xff"

Handler = Callable[[socket.socket, bytes, threading.Event], None]
"""Serves one connection, given the request head; returns when done or when told to stop."""

# Every case must end well within this, however the server behaves.
CASE_SECONDS = 10.0


class RawServer:
    """A TCP server on 127.0.0.1 that hands each connection to `handler`, in a thread."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        for conn in accepted(self._sock, self.stop):
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                head = read_request_head(conn)
                if head is None:
                    return
                self.requests.append(head)
                self.handler(conn, head, self.stop)
            except OSError:
                return  # the client hung up: what a fault server expects

    def close(self) -> None:
        self.stop.set()
        self._accepting.join()
        self._sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def limits(tmp_path: Path, **changes: object) -> Download:
    """The shipped limits, 127.0.0.1 allowed, fast; no retries unless asked."""
    base = dataclasses.replace(
        load_config().download,
        allow_private=False,
        allow_networks=("127.0.0.1/32",),
        timeout=2.0,
        retries=0,
        backoff=0.05,
        deadline=5.0,
        cache_dir=str(tmp_path / "cache"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def timed_get(url: str, download: Download, **options: int) -> tuple[Fetched | ConvertError, float]:
    """What `get` returns or raises, and how long it took."""
    started = time.monotonic()
    with Downloader(download) as downloader:
        try:
            result: Fetched | ConvertError = downloader.get(url, **options)  # type: ignore[arg-type]
        except ConvertError as error:
            result = error
    return result, time.monotonic() - started


def refused(url: str, download: Download, **options: int) -> tuple[ConvertError, float]:
    result, seconds = timed_get(url, download, **options)
    assert isinstance(result, ConvertError), result
    assert result.where == url
    assert "\n" not in str(result)
    assert seconds < CASE_SECONDS
    return result, seconds


def head(status: str = "200 OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN: SO_LINGER on, zero seconds."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def run_cli(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], more: str = ""
) -> list[str]:
    """Run the command line with 127.0.0.1 allowed (and `more` download settings); its
    stderr lines."""
    config = tmp_path / "faults.yaml"
    config.write_text(
        "download:\n"
        '  allow_networks: ["127.0.0.1/32"]\n'
        f'  cache_dir: "{tmp_path / "cache"}"\n'
        "  retries: 1\n"
        "  backoff: 0.05\n"
        "  timeout: 2\n"
        "  deadline: 3\n" + more,
        encoding="utf-8",
    )
    capsys.readouterr()
    code = main(["-c", str(config), *args])
    lines = capsys.readouterr().err.splitlines()
    return [f"exit {code}", *lines]


# --- 1. connection reset in the middle of the body ---------------------------------------


def _resets_mid_body(framing: str) -> Handler:
    def handler(conn: socket.socket, _head: bytes, _stop: threading.Event) -> None:
        if framing == "content-length":
            conn.sendall(head(Content_Type="application/rss+xml", Content_Length="100000"))
            conn.sendall(b"<rss>" + b"x" * 1000)
        elif framing == "chunked":
            conn.sendall(head(Content_Type="application/rss+xml", Transfer_Encoding="chunked"))
            conn.sendall(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
        else:  # close-delimited: only the RST tells a cut body from a whole one
            conn.sendall(head(Content_Type="application/rss+xml", Connection="close"))
            conn.sendall(b"<rss>" + b"x" * 1000)
        time.sleep(0.2)  # the client has the head and part of the body by now
        reset(conn)

    return handler


@pytest.mark.parametrize("framing", ["content-length", "chunked", "close-delimited"])
def test_reset_mid_body_is_retried_then_reported(
    serve: Callable[[Handler], RawServer], tmp_path: Path, framing: str
) -> None:
    server = serve(_resets_mid_body(framing))

    error, seconds = refused(server.url("/feed.xml"), limits(tmp_path, retries=2))

    assert error.reason.startswith("download failed: ")
    assert "reset" in error.reason.lower()
    assert server.connections == 3  # the first attempt and two retries
    assert seconds < 3


def test_reset_once_then_whole_body_succeeds(
    serve: Callable[[Handler], RawServer], tmp_path: Path
) -> None:
    calls = iter(range(100))

    def handler(conn: socket.socket, head_: bytes, stop: threading.Event) -> None:
        if next(calls) == 0:
            _resets_mid_body("content-length")(conn, head_, stop)
        else:
            conn.sendall(head(Content_Type="text/plain", Content_Length="5") + b"whole")

    server = serve(handler)

    result, _ = timed_get(server.url(), limits(tmp_path, retries=1))

    assert isinstance(result, Fetched)
    assert result.content == b"whole"
    assert server.connections == 2


def test_reset_feed_is_one_error_line_and_no_output(
    serve: Callable[[Handler], RawServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(_resets_mid_body("content-length"))
    url = server.url("/feed.xml")
    out = tmp_path / "out.xml"

    lines = run_cli(["feed", url, "-o", str(out)], tmp_path, capsys)

    assert lines[0] == "exit 1"
    [line] = lines[1:]
    assert line.startswith(f"error: {url}: download failed: ")
    assert "reset" in line.lower()
    assert not out.exists()
    assert server.connections == 2  # retries: 1 in the config


# --- 2. a slow drip: each read is quick, the whole never ends ------------------------------


def _drips(where: str) -> Handler:
    def handler(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        if where == "head":
            for byte in head(Content_Type="text/plain", Content_Length="2") + b"ok":
                if stop.wait(0.2):
                    return
                conn.sendall(bytes([byte]))
            return
        if where == "gzip":  # a gzip header, then empty blocks: nothing ever decodes
            conn.sendall(head(Content_Type="application/rss+xml", Content_Encoding="gzip"))
            deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
            conn.sendall(deflate.compress(b"") + deflate.flush(zlib.Z_SYNC_FLUSH))
            drip = EMPTY_BLOCK
        elif where == "chunked":
            conn.sendall(head(Content_Type="application/rss+xml", Transfer_Encoding="chunked"))
            drip = b"1\r\nx\r\n"
        else:
            conn.sendall(head(Content_Type="application/rss+xml", Connection="close"))
            drip = b"x"
        for _ in range(150):  # "forever": 30 s, three times any case's limit
            if stop.wait(0.2):
                return
            conn.sendall(drip)

    return handler


@pytest.mark.parametrize("where", ["body", "chunked", "head", "gzip"])
def test_slow_drip_ends_at_the_deadline(
    serve: Callable[[Handler], RawServer], tmp_path: Path, where: str
) -> None:
    server = serve(_drips(where))
    # Each read gets a byte within 0.2 s, far inside the 1 s timeout: only the
    # deadline on the whole download can end this.
    download = limits(tmp_path, timeout=1.0, deadline=1.5, retries=2)

    error, seconds = refused(server.url("/feed.xml"), download)

    assert error.reason == "not done within the 1.5-second deadline (download.deadline)"
    assert 1.4 < seconds < 2.5
    assert server.connections == 1  # no retry once the time is up


def test_deadline_bounds_the_retries_of_a_silent_server(
    serve: Callable[[Handler], RawServer], tmp_path: Path
) -> None:
    def silent(_conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        stop.wait(30)

    server = serve(silent)
    # Without a deadline: two attempts × 0.5 s, then the host is left for the run (its
    # second timeout); the deadline comes first, within the second attempt.
    download = limits(tmp_path, timeout=0.5, retries=5, backoff=0.1, deadline=0.8)

    error, seconds = refused(server.url(), download)

    assert "0.8-second deadline" in error.reason
    assert seconds < 1.4
    assert server.connections <= 2


def test_deadline_spans_redirects(serve: Callable[[Handler], RawServer], tmp_path: Path) -> None:
    hops = iter(range(1000))

    def slow_hop(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        if not stop.wait(0.3):
            conn.sendall(head("302 Found", Location=f"/hop/{next(hops)}", Content_Length="0"))

    server = serve(slow_hop)
    download = limits(tmp_path, max_redirects=50, deadline=1.0)

    error, seconds = refused(server.url(), download)

    assert "1-second deadline" in error.reason
    assert seconds < 1.6
    assert server.connections < 6


def test_a_dripping_picture_is_left_out_at_the_deadline(
    serve: Callable[[Handler], RawServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(_drips("body"))
    url = server.url("/slow.jpg")
    started = time.monotonic()

    with Downloader(limits(tmp_path, timeout=1.0, deadline=1.0)) as downloader:
        pictures = fetch_pictures([url], downloader, tmp_path / "pictures", PictureOptions())

    assert pictures == {}
    assert f"{url}: not done within the 1-second deadline" in caplog.text
    assert time.monotonic() - started < 2


def test_the_shipped_deadline_is_a_minute() -> None:
    assert load_config().download.deadline == 60


# --- 3. the wrong kind of content -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "application/rss+xml"),
        (b'{"error": "rate limited"}', "application/feed+json"),
        (b"Service temporarily unavailable", "text/plain"),
        (b"\x1f\x8b\x08\x00garbage that is not a feed", "application/octet-stream"),
    ],
    ids=["png-as-rss", "json-not-a-feed", "plain-text", "binary"],
)
def test_not_a_feed_where_a_feed_is_expected_is_one_error_line(
    httpserver: HTTPServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: bytes,
    content_type: str,
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(body, content_type=content_type)
    url = httpserver.url_for("/feed.xml")
    out = tmp_path / "out.xml"

    lines = run_cli(["feed", url, "-o", str(out)], tmp_path, capsys)

    assert lines == [
        "exit 1",
        f"error: {url}: not a feedx article, feed, OPML list or HTML page "
        "(expected '<!--epoch-->' and '[title](url)', <rss>, <feed>, <opml> or HTML tags)",
    ]
    assert not out.exists()


def test_an_html_error_page_where_a_feed_is_expected_is_an_error(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = b"<html><head><title>403 Forbidden</title></head><body><p>nginx</p></body></html>"
    httpserver.expect_request("/feed.xml").respond_with_data(page, content_type="text/html")
    url = httpserver.url_for("/feed.xml")
    out = tmp_path / "out.xml"

    lines = run_cli(["feed", url, "-o", str(out)], tmp_path, capsys)

    assert lines[0] == "exit 1"
    assert f"error: {url}: the server sent an error page ('403 Forbidden')" in lines[1:]
    assert not out.exists()


def test_an_html_page_where_a_picture_is_expected_is_not_a_picture(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Served honestly as text/html this time: the bytes decide, not the header."""
    httpserver.expect_request("/photo.jpg").respond_with_data(
        b"<!doctype html><html><body>Please log in</body></html>", content_type="text/html"
    )
    url = httpserver.url_for("/photo.jpg")

    with Downloader(limits(tmp_path)) as downloader:
        pictures = fetch_pictures([url], downloader, tmp_path / "pictures", PictureOptions())

    assert pictures == {}
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{url}: not a picture"
    ]


# --- 4. a gzip bomb ---------------------------------------------------------------------------

_GIB = 1 << 30
_PIECE_ZEROS = 16 << 20  # each piece: 16 MiB of zeros in about 16 KB


@pytest.fixture(scope="module")
def zero_piece() -> bytes:
    """Raw deflate of 16 MiB of zeros, ending on a full flush: pieces can be repeated."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflate.compress(bytes(_PIECE_ZEROS)) + deflate.flush(zlib.Z_FULL_FLUSH)


def _bomb(piece: bytes, coding: str, decoded: int) -> Handler:
    """`decoded` bytes of zeros, gzip- or zlib-wrapped, sent until the client gives up."""
    prefix = {
        "gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",
        "x-gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",
        "deflate": b"\x78\xda",
        "gzip, gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",
    }[coding]

    def handler(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        conn.sendall(head(Content_Type="image/jpeg", Content_Encoding=coding, Connection="close"))
        conn.sendall(prefix)
        for _ in range(decoded // _PIECE_ZEROS):
            if stop.is_set():
                return
            conn.sendall(piece)  # OSError once the client has hung up: the end

    return handler


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate"])
def test_gzip_bomb_stops_at_the_cap_in_bounded_memory(
    serve: Callable[[Handler], RawServer], tmp_path: Path, zero_piece: bytes, coding: str
) -> None:
    # About 10 MB on the wire, 10 GiB of zeros once inflated.
    server = serve(_bomb(zero_piece, coding, 10 * _GIB))
    cap = 15_000_000  # the shipped picture cap

    tracemalloc.start()
    try:
        error, seconds = refused(server.url("/bomb.jpg"), limits(tmp_path, max_bytes=cap))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert error.reason == f"larger than the {cap}-byte limit"
    assert seconds < 3
    # The body up to the cap and one piece past it: httpx's own decoding would
    # inflate each 64 KB read to 64 MB at once.
    assert peak < 2.5 * cap, f"peak {peak / 1e6:.1f} MB"


def test_stacked_content_codings_are_refused_before_inflating(
    serve: Callable[[Handler], RawServer], tmp_path: Path, zero_piece: bytes
) -> None:
    server = serve(_bomb(zero_piece, "gzip, gzip", 10 * _GIB))

    error, seconds = refused(server.url("/bomb.jpg"), limits(tmp_path))

    assert error.reason == "unsupported Content-Encoding 'gzip, gzip'"
    assert seconds < 1


def test_compressed_data_that_never_inflates_is_capped_as_received(
    serve: Callable[[Handler], RawServer], tmp_path: Path
) -> None:
    """Empty deflate blocks forever: nothing decodes, so the cap counts what arrives."""

    def empty_blocks(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
        conn.sendall(head(Content_Type="application/rss+xml", Content_Encoding="deflate"))
        deflate = zlib.compressobj(6, zlib.DEFLATED, 15)
        conn.sendall(deflate.compress(b"") + deflate.flush(zlib.Z_SYNC_FLUSH))
        block = EMPTY_BLOCK * 2000
        while not stop.is_set():
            conn.sendall(block)

    server = serve(empty_blocks)

    error, seconds = refused(server.url(), limits(tmp_path), max_bytes=100_000)

    assert error.reason == "larger than the 100000-byte limit"
    assert seconds < 2


def test_gzip_bombed_picture_is_left_out_with_a_warning(
    serve: Callable[[Handler], RawServer],
    tmp_path: Path,
    zero_piece: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pictures go through the same downloader, so the same cap on decoded bytes."""
    server = serve(_bomb(zero_piece, "gzip", 10 * _GIB))
    url = server.url("/bomb.jpg")
    download = limits(tmp_path)  # the shipped 15 MB cap

    with Downloader(download) as downloader:
        pictures = fetch_pictures([url], downloader, tmp_path / "pictures", PictureOptions())

    assert pictures == {}
    assert f"{url}: larger than the {download.max_bytes}-byte limit" in caplog.text


def test_gzip_body_under_the_cap_is_decoded(
    serve: Callable[[Handler], RawServer], tmp_path: Path
) -> None:
    """Positive control: the downloader's own decoding gives the same bytes as httpx's."""
    text = ("<rss>" + "新闻 " * 20_000 + "</rss>").encode()
    bodies = {
        "gzip": zlib.compress(text, wbits=31),
        "deflate": zlib.compress(text),
        "raw-deflate": zlib.compress(text, wbits=-15),
    }

    def handler(conn: socket.socket, request: bytes, _stop: threading.Event) -> None:
        kind = request.split(b" ")[1].decode().strip("/")
        coding = "deflate" if kind == "raw-deflate" else kind
        body = bodies[kind]
        conn.sendall(head(Content_Encoding=coding, Content_Length=str(len(body))) + body)

    server = serve(handler)
    for kind in bodies:
        result, _ = timed_get(server.url(f"/{kind}"), limits(tmp_path))
        assert isinstance(result, Fetched), (kind, result)
        assert result.content == text, kind
    assert all(b"accept-encoding: gzip, deflate\r\n" in r.lower() for r in server.requests)


# --- 5. endless redirects ---------------------------------------------------------------------


def test_endless_fresh_redirects_end_without_retries(
    serve: Callable[[Handler], RawServer], tmp_path: Path
) -> None:
    """Every answer a new address, never a loop: the count of hops ends it, once."""
    hops = iter(range(10_000))

    def onward(conn: socket.socket, _head: bytes, _stop: threading.Event) -> None:
        location = f"/r/{next(hops)}?{'x' * 1000}"
        conn.sendall(head("307 Temporary Redirect", Location=location, Content_Length="0"))

    server = serve(onward)
    download = limits(tmp_path, retries=3)

    error, seconds = refused(server.url("/r/start"), download)

    assert error.reason == f"more than {download.max_redirects} redirects"
    assert server.connections == download.max_redirects + 1  # not retried
    assert seconds < 2


# --- a picture server that sends its headers and then nothing ---------------------------


def _headers_then_nothing(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
    conn.sendall(head(Content_Type="image/png", Content_Length="5000"))
    stop.wait(CASE_SECONDS)  # the body never comes


@pytest.mark.parametrize("workers", [1, 8])
def test_a_stalled_host_is_asked_twice_then_not_again_in_the_run(
    serve: Callable[[Handler], RawServer],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    workers: int,
) -> None:
    """Each of 16 pictures cost the whole 60-second deadline (the read timeout retried);
    now each stalled read is cut at the read timeout, and after two the host is left."""
    server = serve(_headers_then_nothing)
    urls = [server.url(f"/p{n}.png") for n in range(16)]
    download = limits(tmp_path, timeout=0.5, retries=2, deadline=30.0)
    started = time.monotonic()
    with Downloader(download) as downloader:
        options = PictureOptions(workers=workers)
        pictures = fetch_pictures(urls, downloader, tmp_path / "pictures", options)
    seconds = time.monotonic() - started
    assert pictures == {}
    # One at a time: exactly two. With threads, those in flight when the second timeout
    # came, and none after it: not 16 pictures × 3 attempts.
    assert len(server.requests) == 2 if workers == 1 else len(server.requests) <= workers + 1
    assert seconds < 2 * 0.5 + 1.5  # two rounds of cut reads, not 16 deadlines
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert said.count("127.0.0.1: timed out 2 times; not asked again in this run") == 1


# --- the run's downloads end by its deadline ----------------------------------------------


def _drips_forever(conn: socket.socket, _head: bytes, stop: threading.Event) -> None:
    """A picture whose body comes a byte every 0.1 s: never a read timeout, never done."""
    conn.sendall(head(Content_Type="image/png", Content_Length="100000"))
    while not stop.wait(0.1):
        conn.sendall(b"x")


OUT_OF_TIME = "downloads stopped: this run's 1 seconds for downloads (download.run_deadline)"


def test_the_runs_downloads_end_by_its_deadline_with_one_warning(
    serve: Callable[[Handler], RawServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Twelve pictures that each take their whole 30-second deadline end, all of them,
    when the run's one second is spent: the rest are not asked for."""
    server = serve(_drips_forever)
    urls = [server.url(f"/p{n}.png") for n in range(12)]
    download = limits(tmp_path, timeout=2.0, deadline=30.0, run_deadline=1.0)
    started = time.monotonic()
    with Downloader(download) as downloader:
        pictures = fetch_pictures(
            urls, downloader, tmp_path / "pictures", PictureOptions(workers=3)
        )
    seconds = time.monotonic() - started
    assert pictures == {}
    assert seconds < 3
    assert len(server.requests) == 3  # those in flight when the time ran out
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and said[0].startswith(OUT_OF_TIME), said


def test_a_book_is_written_when_the_runs_download_time_runs_out(
    serve: Callable[[Handler], RawServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = serve(_drips_forever)
    figures = "".join(f'<figure><img src="{server.url(f"/p{n}.png")}"></figure>' for n in range(6))
    article = tmp_path / "article.txt"
    article.write_text(
        "<!--1716540598000-->\n[图片](https://cn.nytimes.com/china/20240524/pictures/)\n"
        '------\n\n<time pudate="2024-05-24 16:08:33">2024年5月24日</time>'
        f"{figures}<p>六张图片都下载不完。</p>",
        encoding="utf-8",
    )
    book = tmp_path / "book.epub"
    started = time.monotonic()
    lines = run_cli(
        ["epub", str(article), "-o", str(book), "--week", "all"],
        tmp_path,
        capsys,
        "  deadline: 30\n  run_deadline: 1\n",
    )
    assert time.monotonic() - started < 5
    assert lines[0] == "exit 0"
    assert sum(OUT_OF_TIME in line for line in lines) == 1, lines
    assert not any("p3.png" in line for line in lines)  # no line per picture skipped
    assert book.stat().st_size > 0
