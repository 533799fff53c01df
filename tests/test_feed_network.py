"""Feeds fetched over HTTP, end to end through the feed command's plan and the command line.

Every server listens on 127.0.0.1 (or 127.0.0.2 for the refusal), allowed through
`download.allow_networks` while `allow_private` stays false; no real host name is
ever used. The raw downloader (schemes, address table, size caps) is covered by
test_download.py; here the subject is a feed source: what is written, what is
reported, and what the server saw.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from conftest import run_command
from goldens import ROOT
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from convert.cli import main
from convert.config import Config, FeedTarget, load_config
from convert.net.client import Downloader

FEED = (ROOT / "examples" / "feedx-nytimes.xml").read_bytes()
ARTICLE = ROOT / "examples" / "nyt-putin-harbin.txt"
RSS = "application/rss+xml"
NOW = datetime(2024, 5, 27, tzinfo=UTC)  # a day after the example's newest item
SELF_URL = "https://feeds.example.org/nytimes.xml"  # written into the feed, never fetched
TITLE_ONLY = "大堡礁再现大规模白化，科学家警告珊瑚恢复窗口正在缩小"  # no text: not published
ETAG = '"feedx-nytimes-v1"'
LAST_MODIFIED = "Sun, 26 May 2024 04:10:00 GMT"


def network_config(tmp_path: Path, **download: object) -> Config:
    """The shipped config, allowed to reach 127.0.0.1 only, with fast limits."""
    base = load_config()
    limits = dataclasses.replace(
        base.download,
        allow_networks=("127.0.0.1/32",),
        allow_private=False,
        timeout=2.0,
        retries=0,
        backoff=0.01,
        cache_dir=str(tmp_path / "cache"),
    )
    return dataclasses.replace(base, download=dataclasses.replace(limits, **download))  # type: ignore[arg-type]


@dataclass
class Outcome:
    """What `feed SOURCES -o OUT` did: the files written, the inputs that failed."""

    written: list[Path]
    failed: list[str]


def publish(sources: list[str], out: Path, config: Config) -> Outcome:
    target = FeedTarget(path=str(out), self_url=SELF_URL)
    report = run_command(config, sources, "feed", target, now=NOW)
    failed = [name for row in report.sources for name in row.failed]
    return Outcome(report.outputs[0].written, failed + report.outputs[0].failed)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The error lines logged under `convert`, as the command line would print them."""
    return [
        f"error: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith("convert")
    ]


def serve_feed(server: HTTPServer, path: str = "/feed.xml") -> str:
    server.expect_request(path).respond_with_data(FEED, content_type=RSS)
    return server.url_for(path)


# --- 1. a feed served with 200 --------------------------------------------------------------


def test_served_feed_is_republished(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = serve_feed(httpserver)
    out = tmp_path / "out.xml"

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url], out, network_config(tmp_path))

    assert outcome.written == [out]
    assert outcome.failed == []
    parsed = feedparser.parse(out.read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    # 11 of the 12 items: the one without text is not published, with a warning.
    assert len(parsed.entries) == 11
    assert TITLE_ONLY not in [entry.title for entry in parsed.entries]
    assert f"{url}: {TITLE_ONLY[:60]!r} has no text after cleaning; not published" in caplog.text
    assert "stale" not in caplog.text
    assert errors(caplog) == []
    assert parsed.feed.title == "纽约时报中文网"

    [(request, response)] = httpserver.log
    assert request.path == "/feed.xml"
    assert request.headers["User-Agent"].startswith("feedx-convert/")
    assert "If-None-Match" not in request.headers  # nothing cached yet
    assert response.status_code == 200


# --- 2. a conditional GET answered with 304 -------------------------------------------------


def test_unchanged_feed_is_revalidated_and_taken_from_the_cache(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, str]] = []

    def conditional(request: Request) -> Response:
        seen.append(dict(request.headers))
        if (
            request.headers.get("If-None-Match") == ETAG
            and request.headers.get("If-Modified-Since") == LAST_MODIFIED
        ):
            return Response(b"", status=304, headers={"ETag": ETAG})
        return Response(
            FEED, content_type=RSS, headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
        )

    httpserver.expect_request("/feed.xml").respond_with_handler(conditional)
    url = httpserver.url_for("/feed.xml")
    config = network_config(tmp_path)
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"

    with caplog.at_level(logging.WARNING, logger="convert"):
        assert publish([url], first, config).written == [first]
        assert sorted(p.suffix for p in (tmp_path / "cache" / "http").iterdir()) == [
            ".body",
            ".json",
        ]
        outcome = publish([url], second, config)

    assert outcome.written == [second]
    assert outcome.failed == []
    assert errors(caplog) == []
    assert second.read_bytes() == first.read_bytes()
    assert len(feedparser.parse(second.read_bytes()).entries) == 11

    assert len(seen) == 2
    assert "If-None-Match" not in seen[0]
    assert "If-Modified-Since" not in seen[0]
    assert seen[1]["If-None-Match"] == ETAG
    assert seen[1]["If-Modified-Since"] == LAST_MODIFIED
    assert [response.status_code for _, response in httpserver.log] == [200, 304]

    # The downloader itself says where the bytes came from.
    with Downloader(config.download) as downloader:
        fetched = downloader.get(url, max_bytes=config.max_input_bytes, cache=True)
    assert fetched.from_cache
    assert fetched.content == FEED
    assert fetched.content_type == RSS
    assert len(seen) == 3


def test_not_modified_without_a_cached_copy_is_an_error_not_a_redirect(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 304 (no Location) to a request that had no validators is not followed."""
    httpserver.expect_request("/feed.xml").respond_with_data(b"", status=304)
    url = httpserver.url_for("/feed.xml")
    out = tmp_path / "out.xml"

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url], out, network_config(tmp_path))

    assert errors(caplog) == [f"error: {url}: HTTP 304"]
    assert outcome.failed == [url]
    assert len(httpserver.log) == 1


# --- 3. a missing feed next to a good file --------------------------------------------------


def test_missing_feed_is_reported_and_the_other_source_is_still_published(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/gone.xml").respond_with_data(b"not here", status=404)
    url = httpserver.url_for("/gone.xml")
    out = tmp_path / "out.xml"

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url, str(ARTICLE)], out, network_config(tmp_path, retries=2))

    assert errors(caplog) == [f"error: {url}: HTTP 404"]
    assert outcome.failed == [url]
    assert outcome.written == [out]
    assert len(httpserver.log) == 1  # a 404 is not retried
    parsed = feedparser.parse(out.read_bytes())
    assert parsed.bozo == 0
    assert [entry.link for entry in parsed.entries] == [
        "https://cn.nytimes.com/world/20240520/putin-xi-china-russia-military-ties/"
    ]
    assert not (tmp_path / "cache" / "http").exists()  # nothing cached from a failure


# --- 4-5. retries on 5xx ----------------------------------------------------------------------


def test_server_error_is_retried_then_the_feed_is_published(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(b"busy", status=500)
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(FEED, content_type=RSS)
    url = httpserver.url_for("/feed.xml")
    out = tmp_path / "out.xml"

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url], out, network_config(tmp_path, retries=2))

    assert errors(caplog) == []
    assert outcome.failed == []
    assert outcome.written == [out]
    assert len(feedparser.parse(out.read_bytes()).entries) == 11
    assert [response.status_code for _, response in httpserver.log] == [500, 200]
    httpserver.check_assertions()


def test_persistent_server_error_fails_after_the_retries(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(b"down", status=500)
    url = httpserver.url_for("/feed.xml")
    out = tmp_path / "out.xml"

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url], out, network_config(tmp_path, retries=1))

    assert errors(caplog) == [f"error: {url}: HTTP 500"]
    assert outcome.failed == [url]
    assert outcome.written == []
    assert not out.exists()
    assert len(httpserver.log) == 2


# --- 6. a server that does not answer in time ------------------------------------------------


def test_slow_feed_server_times_out(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(2)  # "sleeps" 2 s, cut short once the test is done
        return Response(FEED, content_type=RSS)

    httpserver.expect_request("/feed.xml").respond_with_handler(slow)
    url = httpserver.url_for("/feed.xml")
    out = tmp_path / "out.xml"
    started = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="convert"):
            outcome = publish([url], out, network_config(tmp_path, timeout=0.5, retries=0))
    finally:
        release.set()
    elapsed = time.monotonic() - started

    assert errors(caplog) == [f"error: {url}: timed out after 0.5 s"]
    assert outcome.failed == [url]
    assert outcome.written == []
    assert not out.exists()
    assert elapsed < 1.5


# --- 7. a feed over max_input_bytes -----------------------------------------------------------


def test_oversized_feed_is_refused(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = serve_feed(httpserver)
    out = tmp_path / "out.xml"
    config = dataclasses.replace(network_config(tmp_path), max_input_bytes=1000)

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url], out, config)

    assert errors(caplog) == [f"error: {url}: larger than the 1000-byte limit ({len(FEED)} bytes)"]
    assert outcome.failed == [url]
    assert not out.exists()
    assert not (tmp_path / "cache" / "http").exists()


# --- 8-9. redirects ---------------------------------------------------------------------------


def test_redirect_loop_fails(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    url = httpserver.url_for("/a")
    out = tmp_path / "out.xml"
    config = network_config(tmp_path)

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url], out, config)

    limit = config.download.max_redirects
    assert errors(caplog) == [f"error: {url}: more than {limit} redirects"]
    assert outcome.failed == [url]
    assert not out.exists()
    assert [request.path for request, _ in httpserver.log] == ["/a", "/b"] * 3


@pytest.fixture
def forbidden_listener() -> Iterator[socket.socket]:
    """A bare TCP listener on 127.0.0.2, outside the allowed 127.0.0.1/32."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.2", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener


def accepted(listener: socket.socket) -> int:
    """Connections waiting in the listener's backlog (each is closed)."""
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_redirect_to_a_loopback_address_outside_the_allowed_network_is_refused(
    httpserver: HTTPServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    forbidden_listener: socket.socket,
) -> None:
    port = forbidden_listener.getsockname()[1]
    target = f"http://127.0.0.2:{port}/feed.xml"
    httpserver.expect_request("/feed.xml").respond_with_data(
        "", status=302, headers={"Location": target}
    )
    url = httpserver.url_for("/feed.xml")
    out = tmp_path / "out.xml"

    with caplog.at_level(logging.WARNING, logger="convert"):
        outcome = publish([url], out, network_config(tmp_path, retries=2))

    [line] = errors(caplog)
    assert line.startswith(f"error: {url}: refused: 127.0.0.2 is 127.0.0.2, not a public address")
    assert outcome.failed == [url]
    assert not out.exists()
    assert len(httpserver.log) == 1  # a refusal is final, not retried
    time.sleep(0.05)  # a connection, had one been made, would be in the backlog by now
    assert accepted(forbidden_listener) == 0


def test_forbidden_listener_does_see_a_connection(forbidden_listener: socket.socket) -> None:
    """Positive control: the counting in the test above can see a connection."""
    with socket.create_connection(forbidden_listener.getsockname(), timeout=1):
        time.sleep(0.05)
        assert accepted(forbidden_listener) == 1


# --- 10. the command line, in process -------------------------------------------------------


def test_feed_command_fetches_over_http(
    httpserver: HTTPServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve_feed(httpserver)
    httpserver.expect_request("/gone.xml").respond_with_data(b"not here", status=404)
    gone = httpserver.url_for("/gone.xml")
    cfg = tmp_path / "network.yaml"
    cfg.write_text(
        "download:\n"
        '  allow_networks: ["127.0.0.1/32"]\n'
        f'  cache_dir: "{tmp_path / "cache"}"\n'
        "  retries: 0\n"
        "  timeout: 2\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.xml"

    assert main(["-c", str(cfg), "feed", url, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "error" not in err
    assert len(feedparser.parse(out.read_bytes()).entries) == 11

    missing = tmp_path / "missing.xml"
    assert main(["-c", str(cfg), "feed", gone, "-o", str(missing)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if line.startswith("error: ")] == [f"error: {gone}: HTTP 404"]
    assert lines == [f"error: {gone}: HTTP 404"]
    assert not missing.exists()
    assert [request.path for request, _ in httpserver.log] == ["/feed.xml", "/gone.xml"]
