"""The downloader and picture downloads, against servers on loopback only.

No request here ever leaves the machine: every server listens on a loopback
address, and the only host name used is `localhost`. Refusals are tested with
loopback addresses while `allow_private` is false, and a counting listener on
the target address shows that no connection arrived.
"""

from __future__ import annotations

import dataclasses
import io
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import PIL.Image
import pytest
from conftest import accepted, read_request_head, run_command
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from convert import __version__
from convert.config import Config, Download, MarkdownTarget, load_config
from convert.errors import ConvertError
from convert.net.client import Downloader
from convert.net.fetched import Fetched
from convert.net.policy import address_is_public
from convert.report import OutputReport

# --- helpers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[HTTPServer]:
    """A threaded server: werkzeug then speaks HTTP/1.1, so bodies of unknown size are chunked."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def chunked_server(threaded_server: HTTPServer) -> HTTPServer:
    threaded_server.clear()
    return threaded_server


def limits(**changes: object) -> Download:
    """The shipped download limits, changed; a short timeout keeps failures fast."""
    # No retries unless a test asks: retrying is tested on its own, and costs time.
    base = dataclasses.replace(load_config().download, timeout=5.0, retries=0, backoff=0.01)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def fetch(url: str, **changes: object) -> Fetched:
    with Downloader(limits(**changes)) as downloader:
        return downloader.get(url)


def refusal(url: str, **changes: object) -> ConvertError:
    """The ConvertError that `get(url)` raises."""
    with Downloader(limits(**changes)) as downloader, pytest.raises(ConvertError) as caught:
        downloader.get(url)
    assert caught.value.where == url
    return caught.value


_OK_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


class CountingListener:
    """A TCP listener on one address that counts the connections it gets.

    Each connection gets `response` (raw bytes) after the request head, so a
    positive control (allow_private=True) can show that the count does move.
    """

    def __init__(self, host: str, response: bytes = _OK_RESPONSE) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.response = response
        self.connections = 0
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/", scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def _serve(self) -> None:
        for conn in accepted(self._sock, self._stop):
            self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            self.connections += 1
            conn.settimeout(2)
            try:
                head = read_request_head(conn)
                if head is None:
                    return
                conn.sendall(self.response)
            except OSError:
                return

    def close(self) -> int:
        """Stop; count any connection still waiting in the backlog too."""
        if self._stop.is_set():
            return self.connections
        self._stop.set()
        self._thread.join()
        self._sock.setblocking(False)
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                break
            conn.close()
            self.connections += 1
        self._sock.close()
        return self.connections


@pytest.fixture
def listen() -> Iterator[Callable[..., CountingListener]]:
    opened: list[CountingListener] = []

    def make(host: str, response: bytes = _OK_RESPONSE) -> CountingListener:
        listener = CountingListener(host, response)
        opened.append(listener)
        return listener

    yield make
    for listener in opened:
        listener.close()


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def tiny_picture(kind: str) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (4, 3), (200, 30, 30)).save(buffer, format=kind)
    return buffer.getvalue()


# --- 1. allowed downloads ---------------------------------------------------------------


def test_download_returns_content_type_and_final_url(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/file.txt").respond_with_data(
        b"hello, world", content_type="Text/Plain; charset=UTF-8"
    )
    url = httpserver.url_for("/file.txt")
    assert url.startswith("http://127.0.0.1:")

    fetched = fetch(url, allow_private=True)

    assert fetched.content == b"hello, world"
    assert fetched.content_type == "text/plain"  # lower-case, without parameters
    assert fetched.url == url
    assert len(httpserver.log) == 1


def test_user_agent_names_the_tool_and_its_version(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ua").respond_with_data(b"ok")

    fetch(httpserver.url_for("/ua"), allow_private=True)

    (request, _response), *_ = httpserver.log
    agent = request.headers["User-Agent"]
    assert agent.startswith(f"feedx-convert/{__version__} ")
    assert __version__ in agent


def test_body_exactly_at_the_size_cap_is_accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/exact").respond_with_data(b"x" * 1000)

    fetched = fetch(httpserver.url_for("/exact"), allow_private=True, max_bytes=1000)

    assert fetched.content == b"x" * 1000


# --- 2. refusal of non-public addresses ---------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_server_is_refused_when_private_is_not_allowed(
    httpserver: HTTPServer, host: str
) -> None:
    httpserver.expect_request("/secret").respond_with_data(b"secret")
    url = f"http://{host}:{httpserver.port}/secret"

    error = refusal(url, allow_private=False)

    assert error.reason.startswith("refused:")
    assert "not a public address" in error.reason
    assert "127.0.0.1" in error.reason  # names the address the host resolved to
    assert httpserver.log == []


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        pytest.param(
            "::1",
            marks=pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback"),
        ),
    ],
)
def test_refused_address_gets_no_connection(
    listen: Callable[..., CountingListener], host: str
) -> None:
    listener = listen(host)

    error = refusal(listener.url("/x"), allow_private=False)

    assert error.reason.startswith("refused:")
    assert "not a public address" in error.reason
    assert listener.close() == 0


def test_localhost_name_is_refused_with_no_connection(
    listen: Callable[..., CountingListener],
) -> None:
    listener = listen("127.0.0.1")
    url = f"http://localhost:{listener.port}/x"

    error = refusal(url, allow_private=False)

    assert "not a public address" in error.reason
    assert listener.close() == 0


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.2",
        pytest.param(
            "::1",
            marks=pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback"),
        ),
    ],
)
def test_counting_listener_does_count_when_allowed(
    listen: Callable[..., CountingListener], host: str
) -> None:
    """Positive control for the zero counts above: the same listener, allowed, is reached."""
    listener = listen(host)

    fetched = fetch(listener.url("/x"), allow_private=True)

    assert fetched.content == b"ok"
    assert listener.close() == 1


# --- 3. redirects -------------------------------------------------------------------------


def test_redirect_chain_within_the_limit_is_followed(httpserver: HTTPServer) -> None:
    final = httpserver.url_for("/final")
    httpserver.expect_request("/one").respond_with_data(
        "",
        status=302,
        headers={"Location": "/two"},  # relative
    )
    httpserver.expect_request("/two").respond_with_data(
        "",
        status=301,
        headers={"Location": final},  # absolute
    )
    httpserver.expect_request("/final").respond_with_data(b"arrived", content_type="text/plain")

    fetched = fetch(httpserver.url_for("/one"), allow_private=True, max_redirects=2)

    assert fetched.content == b"arrived"
    assert fetched.url == final
    assert [request.path for request, _ in httpserver.log] == ["/one", "/two", "/final"]


def test_more_redirects_than_allowed_is_an_error(httpserver: HTTPServer) -> None:
    for number in range(3):
        httpserver.expect_request(f"/r{number}").respond_with_data(
            "", status=307, headers={"Location": f"/r{number + 1}"}
        )
    httpserver.expect_request("/r3").respond_with_data(b"too far")
    url = httpserver.url_for("/r0")

    error = refusal(url, allow_private=True, max_redirects=2)

    assert error.reason == "more than 2 redirects"
    assert [request.path for request, _ in httpserver.log] == ["/r0", "/r1", "/r2"]


def test_redirect_loop_ends(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )

    error = refusal(httpserver.url_for("/loop"), allow_private=True, max_redirects=3)

    assert error.reason == "more than 3 redirects"
    assert len(httpserver.log) == 4


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "ftp://127.0.0.1/pub/", "gopher://127.0.0.1:70/_x"]
)
def test_redirect_to_a_non_http_scheme_is_refused(httpserver: HTTPServer, target: str) -> None:
    httpserver.expect_request("/jump").respond_with_data(
        "", status=302, headers={"Location": target}
    )

    error = refusal(httpserver.url_for("/jump"), allow_private=True)

    assert error.reason.startswith("refused:")
    assert "scheme" in error.reason
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    "location",
    [
        b"http://[broken/",
        b"http://127.0.0.1:abc/",
        b"http://999.1.1.1/",
        b"http://\x00x/",
        b"http://a..b/",
    ],
)
def test_malformed_redirect_target_is_a_convert_error(
    listen: Callable[..., CountingListener], location: bytes
) -> None:
    """A server's broken Location header is the server's fault, reported as a ConvertError,
    and not retried as if it were temporary (it was, three times, for a bad port)."""
    listener = listen(
        "127.0.0.1",
        b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n",
    )
    url = listener.url("/jump")

    error = refusal(url, allow_private=True, retries=2)

    assert error.reason.startswith(("bad address", "download failed: "))
    assert listener.close() == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/x.png", "http://[::1/x.png"])
def test_malformed_url_is_a_convert_error(url: str) -> None:
    error = refusal(url, allow_private=False)

    assert "bad address" in error.reason


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",  # CGNAT
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fe80::1%eth0",  # with a zone
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "224.0.0.1",  # multicast
        "ff02::1",
    ],
)
def test_address_is_not_public(address: str) -> None:
    assert address_is_public(address) is False


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_address_is_public(address: str) -> None:
    assert address_is_public(address) is True


# --- 4. schemes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_url",
    [
        lambda port: "file:///etc/passwd",
        lambda port: f"ftp://127.0.0.1:{port}/",
        lambda port: f"gopher://127.0.0.1:{port}/_GET%20/",
        lambda port: "javascript:alert(1)",
        lambda port: "data:text/plain,hello",
        lambda port: f"//127.0.0.1:{port}/no-scheme",
    ],
    ids=["file", "ftp", "gopher", "javascript", "data", "scheme-relative"],
)
def test_non_http_scheme_is_refused_without_a_connection(
    listen: Callable[..., CountingListener], make_url: Callable[[int], str]
) -> None:
    listener = listen("127.0.0.1")
    url = make_url(listener.port)

    # Even with private addresses allowed: the scheme alone decides.
    error = refusal(url, allow_private=True)

    assert error.reason.startswith("refused:")
    assert "only http(s)" in error.reason
    assert listener.close() == 0


# --- 5. size cap --------------------------------------------------------------------------


def test_declared_length_over_the_cap_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 2000)

    error = refusal(httpserver.url_for("/big"), allow_private=True, max_bytes=1000)

    assert error.reason == "larger than the 1000-byte limit (2000 bytes)"


def _streaming_handler(chunks: int) -> Callable[[Request], Response]:
    """A body made by a generator, so werkzeug sends no Content-Length."""

    def handler(_request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for _ in range(chunks):
                yield b"y" * 1024

        return Response(body(), content_type="application/octet-stream")

    return handler


@pytest.mark.parametrize("server_kind", ["close-delimited", "chunked"])
def test_streamed_body_over_the_cap_is_an_error(
    httpserver: HTTPServer, chunked_server: HTTPServer, server_kind: str
) -> None:
    server = chunked_server if server_kind == "chunked" else httpserver
    server.expect_request("/stream").respond_with_handler(_streaming_handler(64))
    url = server.url_for("/stream")

    # The server declares no length: the cap must be enforced while reading.
    probe = httpx.get(url, trust_env=False)
    assert probe.status_code == 200
    assert "content-length" not in probe.headers
    if server_kind == "chunked":
        assert probe.headers.get("transfer-encoding") == "chunked"
    assert len(probe.content) == 64 * 1024

    error = refusal(url, allow_private=True, max_bytes=10_000)

    assert error.reason == "larger than the 10000-byte limit"


def test_streamed_body_under_the_cap_is_accepted(chunked_server: HTTPServer) -> None:
    chunked_server.expect_request("/small").respond_with_handler(_streaming_handler(3))

    fetched = fetch(chunked_server.url_for("/small"), allow_private=True, max_bytes=10_000)

    assert fetched.content == b"y" * 3 * 1024


# --- 6. timeout ---------------------------------------------------------------------------


def test_slow_server_times_out(chunked_server: HTTPServer) -> None:
    release = threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(2)  # "sleeps" 2 s, cut short once the test is done
        return Response(b"late")

    chunked_server.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    try:
        error = refusal(chunked_server.url_for("/slow"), allow_private=True, timeout=0.5)
    finally:
        release.set()
    elapsed = time.monotonic() - started

    assert "timed out" in error.reason
    assert "0.5 s" in error.reason
    assert elapsed < 1.5


# --- 7. HTTP errors -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_status_names_the_status(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/gone").respond_with_data(b"nope", status=status)

    error = refusal(httpserver.url_for("/gone"), allow_private=True)

    assert error.reason == f"HTTP {status}"
    assert str(status) in str(error)


# --- 8. pictures of an article, end to end ------------------------------------------------


def write_article(folder: Path, base: str, *, second_picture: str = "a.png") -> Path:
    html = (
        "<address>A B</address>"
        '<time pudate="2024-05-20 09:52:45">x</time>'
        f'<figure><img src="{base}/lead.jpg" width="10" height="10">'
        "<figcaption>说明 <cite>Credit</cite></figcaption></figure>"
        "<section><p>正文第一段。</p>"
        f'<p><img src="{base}/{second_picture}"><small>图二说明</small></p>'
        "<p>正文第二段。</p></section>"
    )
    text = (
        "<!--1716170821000-->\n"
        "[标题](https://cn.nytimes.com/world/20240520/test-article/)\n"
        "------\n"
        "\n"
        f"{html}\n"
    )
    path = folder / "article.txt"
    path.write_text(text, encoding="utf-8")
    return path


def config_with(allow_private: bool, cache: Path) -> Config:
    config = load_config()
    download = dataclasses.replace(
        config.download,
        allow_private=allow_private,
        timeout=5.0,
        retries=0,
        cache_dir=str(cache),
    )
    return dataclasses.replace(config, download=download)


def markdown_to_folder(source: Path, out: Path, config: Config) -> OutputReport:
    """`feedx-convert markdown SOURCE -o OUT --download-images`."""
    target = MarkdownTarget(folder=str(out), download_images=True)
    (report,) = run_command(config, [str(source)], "markdown", target).outputs
    return report


def only_markdown(out: Path) -> str:
    (markdown,) = out.glob("*.md")
    return markdown.read_text(encoding="utf-8")


def linked_assets(markdown: str) -> list[str]:
    return re.findall(r"assets/[^\s)\"']+", markdown)


def test_pictures_are_downloaded_and_linked_relatively(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    jpeg, png = tiny_picture("JPEG"), tiny_picture("PNG")
    httpserver.expect_request("/lead.jpg").respond_with_data(jpeg, content_type="image/jpeg")
    httpserver.expect_request("/a.png").respond_with_data(png, content_type="image/png")
    base = f"http://127.0.0.1:{httpserver.port}"
    source = write_article(tmp_path, base)
    out = tmp_path / "out"

    outcome = markdown_to_folder(source, out, config_with(True, tmp_path / "cache"))

    assert outcome.failed == []
    assets = sorted((out / "assets").iterdir())
    assert sorted(p.suffix for p in assets) == [".jpg", ".png"]
    assert {p.read_bytes() for p in assets} == {jpeg, png}
    assert set(assets) <= set(outcome.written)
    markdown = only_markdown(out)
    links = linked_assets(markdown)
    assert {link.rsplit(".", 1)[1] for link in links} == {"jpg", "png"}
    for link in links:
        assert (out / link).is_file(), link
    assert f"](assets/{next(p.name for p in assets if p.suffix == '.png')})" in markdown
    assert base not in markdown  # every picture is local now
    assert "正文第一段" in markdown
    assert "正文第二段" in markdown
    assert sorted(request.path for request, _ in httpserver.log) == ["/a.png", "/lead.jpg"]


def test_a_picture_that_is_not_an_image_is_reported_and_keeps_its_address(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/lead.jpg").respond_with_data(
        tiny_picture("JPEG"), content_type="image/jpeg"
    )
    httpserver.expect_request("/page.png").respond_with_data(
        "<html><body>not a picture</body></html>", content_type="text/html"
    )
    base = f"http://127.0.0.1:{httpserver.port}"
    source = write_article(tmp_path, base, second_picture="page.png")
    out = tmp_path / "out"

    outcome = markdown_to_folder(source, out, config_with(True, tmp_path / "cache"))

    assert outcome.failed == [f"{base}/page.png"]
    assert [p.suffix for p in (out / "assets").iterdir()] == [".jpg"]
    markdown = only_markdown(out)
    assert f"]({base}/page.png)" in markdown  # the web address is kept
    for link in linked_assets(markdown):
        assert (out / link).is_file(), link
    assert any(link.endswith(".jpg") for link in linked_assets(markdown))


def test_refused_pictures_keep_their_addresses_and_nothing_is_requested(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/lead.jpg").respond_with_data(tiny_picture("JPEG"))
    httpserver.expect_request("/a.png").respond_with_data(tiny_picture("PNG"))
    base = f"http://127.0.0.1:{httpserver.port}"
    source = write_article(tmp_path, base)
    out = tmp_path / "out"

    outcome = markdown_to_folder(source, out, config_with(False, tmp_path / "cache"))

    assert sorted(outcome.failed) == [f"{base}/a.png", f"{base}/lead.jpg"]
    assert len(outcome.written) == 1
    assert outcome.written[0].suffix == ".md"
    markdown = only_markdown(out)
    assert f"{base}/lead.jpg" in markdown
    assert f"]({base}/a.png)" in markdown
    assert linked_assets(markdown) == []
    assert not (out / "assets").exists()
    assert httpserver.log == []


def test_a_malformed_picture_address_does_not_stop_the_run(tmp_path: Path) -> None:
    """`http://host:abc/` is no web address: the sanitizer drops it, the text stays."""
    source = write_article(tmp_path, "http://127.0.0.1:abc")
    out = tmp_path / "out"

    outcome = markdown_to_folder(source, out, config_with(False, tmp_path / "cache"))

    assert outcome.failed == []
    markdown = only_markdown(out)
    assert "正文第一段" in markdown
    assert "127.0.0.1:abc" not in markdown


# --- Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_a_busy_server_is_asked_again_after_the_time_it_gives(
    httpserver: HTTPServer, status: int, form: str
) -> None:
    # An HTTP date has whole seconds: 1 to 2 s from now.
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
    wait = "1" if form == "seconds" else date
    httpserver.expect_ordered_request("/feed.xml").respond_with_data(
        "busy", status=status, headers={"Retry-After": wait}
    )
    httpserver.expect_ordered_request("/feed.xml").respond_with_data("<rss/>")
    started = time.monotonic()
    fetched = fetch(httpserver.url_for("/feed.xml"), allow_private=True, retries=1, backoff=0.01)
    assert fetched.content == b"<rss/>"
    assert time.monotonic() - started >= 0.9  # it waited as asked, not the 0.01 s backoff
    assert len(httpserver.log) == 2


def test_a_retry_after_beyond_the_cap_skips_the_item_at_once(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        "busy", status=429, headers={"Retry-After": "3600"}
    )
    started = time.monotonic()
    error = refusal(httpserver.url_for("/feed.xml"), allow_private=True, retries=2)
    assert time.monotonic() - started < 1
    assert error.reason == (
        "HTTP 429, retry after 3600 s: longer than download.retry_after_max (30 s)"
    )
    assert len(httpserver.log) == 1
