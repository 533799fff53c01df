"""SSRF: hostile addresses never reach a socket, whatever door they come in by.

The cases run in a network namespace of their own (`unshare --net --mount`), where
only loopback exists: nothing can leave the machine, whatever the code under test
does. Inside, this file runs again as a driver (`python test_ssrf.py --driver DIR`):

- it brings `lo` up and puts the private addresses the cases aim at (10.0.0.1,
  169.254.169.254, fd00::1, ...) on it, so that a connection the guard failed to
  stop would succeed, and be counted;
- it listens on 0.0.0.0:8080 and [::]:8080 (every address of the namespace) and
  counts each connection by the address it reached;
- it bind-mounts its own /etc/hosts (names that resolve to loopback, metadata and
  private addresses), /etc/resolv.conf (a stub on 127.0.0.1:53 that answers
  NXDOMAIN and counts the queries) and /etc/nsswitch.conf, visible to it alone;
- it sends the hostile URLs in by every door: `Downloader.get`, pictures of a
  feedx article behind images.weserv.nl / i0.wp.com (`markdown --download-images`
  and `epub`), feed URLs (`feed`, `ingest`, an OPML list), and redirects from an
  allowed server into private space;
- then, as a positive control, it fetches each listening address with private
  addresses allowed, to show that the counters do count.

It prints what it saw as JSON; the tests below judge it. Without `unshare` (or the
right to use it) they are skipped; the address table at the end runs everywhere.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import read_request_head

from convert.net.policy import address_is_public

PORT = 8080  # every listener of the namespace; free there, whatever the host runs
REDIRECTOR_PORT = 8081  # the one allowed server (127.0.0.1/32), answering redirects
FIFO = "fifo"  # a named pipe in the work folder: reading it would hang the driver

# Put on `lo` inside the namespace, so that a connection to them would succeed.
EXTRA_ADDRESSES = (
    "10.0.0.1/32",
    "172.16.0.1/32",
    "192.168.0.1/32",
    "100.64.0.1/32",
    "169.254.169.254/32",
    "fd00::1/128",
    "fec0::1/128",
    "::127.0.0.1/128",
    "64:ff9b::7f00:1/128",
    "64:ff9b::a9fe:a9fe/128",
    "2002:7f00:1::/128",
)

# Fetched with private addresses allowed, after the hostile cases: each must be reached.
CONTROL_ADDRESSES = (
    "127.0.0.1",
    "127.0.0.2",
    "::1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.0.1",
    "100.64.0.1",
    "169.254.169.254",
    "fd00::1",
    "fec0::1",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
)

HOSTS = """\
127.0.0.1 localhost
::1 localhost ip6-localhost
127.0.0.1 127.0.0.1.nip.io loopback.test
169.254.169.254 metadata.google.internal
fd00::1 ula.test
10.0.0.1 intranet.test
"""

# How a refusal reads (ConvertError.reason), by the layer that refused.
GUARD = "guard"  # the connect-time guard: "refused: HOST is ADDR, not a public address"
RESOLVER = "resolver"  # no address for the name: "cannot resolve"
SCHEME = "scheme"  # before any I/O: "refused: X scheme, only http(s)"
PARSER = "parser"  # httpx will not parse it: "bad address"
NO_FILE = "no-file"  # a non-web feed source is a local path: "no such file"
DROPPED = "dropped"  # the image rewrite drops a proxy URL without a web origin

H = f":{PORT}"

# (a) Downloader.get, private addresses not allowed.
DIRECT: list[tuple[str, str, tuple[str, ...]]] = [
    ("loopback", f"http://127.0.0.1{H}/", (GUARD,)),
    ("loopback-127.0.0.2", f"http://127.0.0.2{H}/", (GUARD,)),
    ("https-loopback", f"https://127.0.0.1{H}/", (GUARD,)),
    ("decimal", f"http://2130706433{H}/", (GUARD,)),
    ("hex", f"http://0x7f000001{H}/", (GUARD,)),
    ("hex-dotted", f"http://0x7f.0.0.1{H}/", (GUARD,)),
    ("octal-dotted", f"http://0177.0.0.1{H}/", (PARSER,)),
    ("octal-single", f"http://017700000001{H}/", (GUARD,)),
    ("short-127.1", f"http://127.1{H}/", (GUARD,)),
    ("zero", f"http://0{H}/", (GUARD,)),
    ("unspecified", f"http://0.0.0.0{H}/", (GUARD,)),
    ("ipv6-loopback", f"http://[::1]{H}/", (GUARD,)),
    ("ipv6-unspecified", f"http://[::]{H}/", (GUARD,)),
    ("ipv4-mapped", f"http://[::ffff:127.0.0.1]{H}/", (GUARD,)),
    ("ipv4-mapped-hex", f"http://[::ffff:7f00:1]{H}/", (GUARD,)),
    ("ipv4-compatible", f"http://[::127.0.0.1]{H}/", (GUARD,)),
    ("ipv4-translated", f"http://[::ffff:0:7f00:1]{H}/", (GUARD,)),
    ("nat64-loopback", f"http://[64:ff9b::7f00:1]{H}/", (GUARD,)),
    ("nat64-metadata", f"http://[64:ff9b::a9fe:a9fe]{H}/", (GUARD,)),
    ("6to4-loopback", f"http://[2002:7f00:1::]{H}/", (GUARD,)),
    ("localhost", f"http://localhost{H}/", (GUARD,)),
    ("localhost-upper", f"http://LOCALHOST{H}/", (GUARD,)),
    ("localhost-dot", f"http://localhost.{H}/", (GUARD, RESOLVER)),
    ("userinfo", f"http://user@127.0.0.1{H}/", (GUARD,)),
    ("userinfo-password", f"http://user:secret@localhost{H}/", (GUARD,)),
    ("lookalike-userinfo", f"http://images.weserv.nl@127.0.0.1{H}/", (GUARD,)),
    ("lookalike-fragment", f"http://127.0.0.1{H}#@images.weserv.nl/", (GUARD,)),
    # httpx reads the host after the backslash: a public name, unknown here.
    ("lookalike-backslash", f"http://127.0.0.1{H}\\@example.com/", (RESOLVER,)),
    ("name-nip-io", f"http://127.0.0.1.nip.io{H}/", (GUARD,)),
    ("name-to-loopback", f"http://loopback.test{H}/", (GUARD,)),
    ("name-to-metadata", f"http://metadata.google.internal{H}/computeMetadata/v1/", (GUARD,)),
    ("name-to-ula", f"http://ula.test{H}/", (GUARD,)),
    ("name-unknown", f"http://unknown.invalid{H}/", (RESOLVER,)),
    ("metadata", f"http://169.254.169.254{H}/latest/meta-data/", (GUARD,)),
    ("metadata-port-80", "http://169.254.169.254/latest/meta-data/", (GUARD,)),
    ("cgnat", f"http://100.64.0.1{H}/", (GUARD,)),
    ("private-10", f"http://10.0.0.1{H}/", (GUARD,)),
    ("private-172", f"http://172.16.0.1{H}/", (GUARD,)),
    ("private-192", f"http://192.168.0.1{H}/", (GUARD,)),
    ("link-local-v6", f"http://[fe80::1]{H}/", (GUARD,)),
    ("link-local-v6-zone", f"http://[fe80::1%25lo]{H}/", (GUARD, RESOLVER, PARSER)),
    ("unique-local", f"http://[fd00::1]{H}/", (GUARD,)),
    ("site-local", f"http://[fec0::1]{H}/", (GUARD,)),
    ("fullwidth-digits", f"http://１２７.０.０.１{H}/", (PARSER, GUARD)),
    ("file", "file:///etc/passwd", (SCHEME,)),
    ("file-fifo", "file://{work}/" + FIFO, (SCHEME,)),
    ("ftp", f"ftp://127.0.0.1{H}/", (SCHEME,)),
    ("gopher", f"gopher://127.0.0.1{H}/_GET%20/", (SCHEME,)),
    ("dict", f"dict://127.0.0.1{H}/info", (SCHEME,)),
    ("ws", f"ws://127.0.0.1{H}/", (SCHEME,)),
    ("data", "data:text/plain,hello", (SCHEME,)),
    ("javascript", "javascript:alert(1)", (SCHEME,)),
    ("scheme-relative", f"//127.0.0.1{H}/", (SCHEME,)),
]

# (b) Pictures of a feedx article behind an image proxy: (id, proxy URL, origin or
# None when the rewrite drops it, kinds).
W = "https://images.weserv.nl/?url="


def _weserv(origin: str) -> str:
    return W + quote(origin, safe="") + "&w=800"


MIRRORED: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    ("loopback", _weserv(f"127.0.0.1{H}/x.jpg"), f"https://127.0.0.1{H}/x.jpg", (GUARD,)),
    (
        "ipv4-mapped",
        _weserv(f"http://[::ffff:127.0.0.1]{H}/m.jpg"),
        f"http://[::ffff:127.0.0.1]{H}/m.jpg",
        (GUARD,),
    ),
    ("decimal", _weserv(f"2130706433{H}/d.jpg"), f"https://2130706433{H}/d.jpg", (GUARD,)),
    ("hex", _weserv(f"0x7f000001{H}/h.jpg"), f"https://0x7f000001{H}/h.jpg", (GUARD,)),
    ("octal", _weserv(f"0177.0.0.1{H}/o.jpg"), f"https://0177.0.0.1{H}/o.jpg", (PARSER,)),
    ("short-127.1", _weserv(f"127.1{H}/s.jpg"), f"https://127.1{H}/s.jpg", (GUARD,)),
    ("ipv6-loopback", _weserv(f"[::1]{H}/6.jpg"), f"https://[::1]{H}/6.jpg", (GUARD,)),
    ("localhost", _weserv(f"localhost{H}/l.jpg"), f"https://localhost{H}/l.jpg", (GUARD,)),
    ("userinfo", _weserv(f"user@127.0.0.1{H}/u.jpg"), f"https://user@127.0.0.1{H}/u.jpg", (GUARD,)),
    (
        "name-nip-io",
        _weserv(f"127.0.0.1.nip.io{H}/n.jpg"),
        f"https://127.0.0.1.nip.io{H}/n.jpg",
        (GUARD,),
    ),
    (
        "metadata",
        _weserv("169.254.169.254/latest/meta-data/iam"),
        "https://169.254.169.254/latest/meta-data/iam",
        (GUARD,),
    ),
    ("cgnat", _weserv(f"100.64.0.1{H}/c.jpg"), f"https://100.64.0.1{H}/c.jpg", (GUARD,)),
    ("private-10", _weserv(f"10.0.0.1{H}/p.jpg"), f"https://10.0.0.1{H}/p.jpg", (GUARD,)),
    ("private-192", _weserv(f"192.168.0.1{H}/q.jpg"), f"https://192.168.0.1{H}/q.jpg", (GUARD,)),
    ("link-local-v6", _weserv(f"[fe80::1]{H}/f.jpg"), f"https://[fe80::1]{H}/f.jpg", (GUARD,)),
    ("unique-local", _weserv(f"[fd00::1]{H}/u6.jpg"), f"https://[fd00::1]{H}/u6.jpg", (GUARD,)),
    ("unspecified", _weserv(f"0.0.0.0{H}/z.jpg"), f"https://0.0.0.0{H}/z.jpg", (GUARD,)),
    (
        "nat64-metadata",
        _weserv("[64:ff9b::a9fe:a9fe]/latest/meta-data/"),
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        (GUARD,),
    ),
    (
        "weserv-ssl-prefix",
        _weserv(f"ssl:127.0.0.1{H}/t.jpg"),
        f"https://127.0.0.1{H}/t.jpg",
        (GUARD,),
    ),
    (
        "wp-path-metadata",
        "https://i0.wp.com/169.254.169.254/latest/user-data",
        "https://169.254.169.254/latest/user-data",
        (GUARD,),
    ),
    ("file", _weserv("file:///etc/passwd"), None, (DROPPED,)),
    ("ftp", _weserv(f"ftp://127.0.0.1{H}/x.jpg"), None, (DROPPED,)),
    ("gopher", _weserv(f"gopher://127.0.0.1{H}/_x"), None, (DROPPED,)),
    ("data", _weserv("data:image/png;base64,iVBORw0KGgo="), None, (DROPPED,)),
    ("javascript", _weserv("javascript:alert(1)"), None, (DROPPED,)),
]

# (c) Feed URLs given to `feed` and `ingest`.
FEED_URLS: list[tuple[str, str, tuple[str, ...]]] = [
    ("loopback", f"http://127.0.0.1{H}/feed.xml", (GUARD,)),
    ("decimal", f"http://2130706433{H}/feed.xml", (GUARD,)),
    ("hex", f"http://0x7f000001{H}/feed.xml", (GUARD,)),
    ("ipv4-mapped", f"http://[::ffff:127.0.0.1]{H}/feed.xml", (GUARD,)),
    ("ipv6-loopback", f"http://[::1]{H}/feed.xml", (GUARD,)),
    ("localhost", f"http://localhost{H}/feed.xml", (GUARD,)),
    ("userinfo", f"http://user:pw@127.0.0.1{H}/feed.xml", (GUARD,)),
    ("name-nip-io", f"http://127.0.0.1.nip.io{H}/feed.xml", (GUARD,)),
    ("metadata", f"http://169.254.169.254{H}/latest/meta-data/", (GUARD,)),
    ("cgnat", f"https://100.64.0.1{H}/feed.xml", (GUARD,)),
    ("private-10", f"http://10.0.0.1{H}/feed.xml", (GUARD,)),
    ("private-192", f"http://192.168.0.1{H}/feed.xml", (GUARD,)),
    ("link-local-v6", f"http://[fe80::1]{H}/feed.xml", (GUARD,)),
    ("unique-local", f"http://[fd00::1]{H}/feed.xml", (GUARD,)),
    ("unspecified", f"http://0.0.0.0{H}/feed.xml", (GUARD,)),
    ("nat64-loopback", f"http://[64:ff9b::7f00:1]{H}/feed.xml", (GUARD,)),
    # Not web URLs: read as local paths (a user's own command line), never fetched.
    ("file", "file:///etc/passwd", (NO_FILE,)),
    ("gopher", f"gopher://127.0.0.1{H}/_x", (NO_FILE,)),
]

# Redirects answered by the allowed server on 127.0.0.1:8081: (id, Location, kinds).
REDIRECTS: list[tuple[str, str, tuple[str, ...]]] = [
    ("to-127.0.0.2", f"http://127.0.0.2{H}/", (GUARD,)),
    ("to-ipv6-loopback", f"http://[::1]{H}/", (GUARD,)),
    ("to-ipv4-mapped-allowed-address", f"http://[::ffff:127.0.0.1]{H}/", (GUARD,)),
    ("to-decimal-127.0.0.2", f"http://2130706434{H}/", (GUARD,)),
    ("to-metadata", f"http://169.254.169.254{H}/latest/meta-data/", (GUARD,)),
    ("to-metadata-name", f"http://metadata.google.internal{H}/computeMetadata/v1/", (GUARD,)),
    ("to-private-10", f"http://10.0.0.1{H}/", (GUARD,)),
    ("to-cgnat-https", f"https://100.64.0.1{H}/", (GUARD,)),
    ("to-unique-local", f"http://[fd00::1]{H}/", (GUARD,)),
    ("to-scheme-relative", f"//127.0.0.2{H}/", (GUARD,)),
    ("to-file", "file:///etc/passwd", (SCHEME,)),
    ("to-gopher", f"gopher://127.0.0.1{H}/_x", (SCHEME,)),
    ("to-chain", "/r/to-metadata", (GUARD,)),  # two hops, then metadata
]

# Private feeds an OPML list on the allowed server names.
OPML_FEEDS = (
    f"http://127.0.0.2{H}/a.xml",
    f"http://169.254.169.254{H}/latest/meta-data/",
    f"http://[::1]{H}/b.xml",
)

_DNS_PORT = 53


# --- the driver, inside the namespace ------------------------------------------------------


class _Listeners:
    """TCP listeners that count each connection by the local address it reached."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []

    def listen(self, host: str, port: int, answer: Callable[[str], bytes]) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(64)
        self.sockets.append(sock)
        threading.Thread(target=self._accept, args=(sock, answer), daemon=True).start()

    def _accept(self, sock: socket.socket, answer: Callable[[str], bytes]) -> None:
        while True:
            try:
                conn, _peer = sock.accept()
            except OSError:
                return
            local, port = conn.getsockname()[:2]
            with self.lock:
                self.counts[f"{local} {port}"] += 1
            threading.Thread(target=self._answer, args=(conn, answer), daemon=True).start()

    @staticmethod
    def _answer(conn: socket.socket, answer: Callable[[str], bytes]) -> None:
        with conn:
            conn.settimeout(2)
            try:
                head = read_request_head(conn)
                if head is None:
                    return
                path = head.split(b" ", 2)[1].decode("latin-1")
                conn.sendall(answer(path))
            except (OSError, IndexError):
                return

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


def _ok(_path: str) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\nok"
    )


def _redirector(path: str) -> bytes:
    if path == "/list.opml":
        outlines = "".join(f'<outline text="x" xmlUrl="{url}"/>' for url in OPML_FEEDS)
        body = (
            '<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head>'
            f"<body>{outlines}</body></opml>"
        ).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/x-opml\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"Connection: close\r\n\r\n" + body
    if path == "/r/to-chain":
        location = "/r/to-chain-2"
    elif path == "/r/to-chain-2":
        location = "/r/to-metadata"
    else:
        location = {name: target for name, target, _ in REDIRECTS}.get(path[3:], "/")
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def _dns_stub(counter: collections.Counter[str]) -> None:
    """Answer every DNS query on 127.0.0.1:53 with NXDOMAIN, counting them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", _DNS_PORT))

    def serve() -> None:
        while True:
            query, peer = sock.recvfrom(4096)
            counter["queries"] += 1
            end = 12
            while end < len(query) and query[end] != 0:
                end += query[end] + 1
            question = query[12 : end + 5]
            flags = 0x8183 | (struct.unpack("!H", query[2:4])[0] & 0x0100)
            sock.sendto(query[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + question, peer)

    threading.Thread(target=serve, daemon=True).start()


def _lo_up() -> str:
    """Bring the namespace's loopback up: `ip`, else an ioctl."""
    if shutil.which("ip"):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return "ip"
    import fcntl  # noqa: PLC0415 - Linux only, and only here

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))
    return "ioctl"


def _setup(work: Path) -> dict[str, Any]:
    setup: dict[str, Any] = {"lo": _lo_up(), "added": [], "mounted": []}
    if shutil.which("ip"):
        for address in EXTRA_ADDRESSES:
            added = subprocess.run(
                ["ip", "addr", "add", address, "dev", "lo"], capture_output=True, check=False
            )
            if added.returncode == 0:
                setup["added"].append(address.split("/")[0])
    files = {
        "/etc/hosts": HOSTS,
        "/etc/resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        "/etc/nsswitch.conf": "hosts: files dns\n",
    }
    for target, text in files.items():
        private = work / Path(target).name
        private.write_text(text, encoding="utf-8")
        mounted = subprocess.run(
            ["mount", "--bind", str(private), target], capture_output=True, check=False
        )
        if mounted.returncode == 0:
            setup["mounted"].append(target)
    setup["interfaces"] = sorted(name for _index, name in socket.if_nameindex())
    setup["routes"] = Path("/proc/net/route").read_text(encoding="utf-8").splitlines()[1:]
    return setup


def _try_get(downloader: Any, url: str) -> dict[str, Any]:
    from convert.errors import ConvertError  # noqa: PLC0415 - the driver's own imports

    started = time.monotonic()
    result: dict[str, Any]
    try:
        fetched = downloader.get(url)
        result = {"fetched": fetched.content.decode("latin-1")[:100]}
    except ConvertError as error:
        result = {"where": error.where, "reason": error.reason, "line": str(error)}
    except Exception as error:  # a traceback is a bug: report it, do not stop
        result = {"crash": f"{type(error).__name__}: {error}"}
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def _cli(args: list[str]) -> dict[str, Any]:
    from convert.cli import main  # noqa: PLC0415

    err = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(err):
        try:
            code: int | str = main(args)
        except Exception as error:
            code = f"crash: {type(error).__name__}: {error}"
    return {
        "code": code,
        "lines": err.getvalue().splitlines(),
        "seconds": round(time.monotonic() - started, 3),
    }


def _article(work: Path) -> Path:
    pictures = "".join(f'<p><img src="{proxy}"></p>' for _, proxy, _, _ in MIRRORED)
    html = (
        '<address>A B</address><time pudate="2024-05-20 09:52:45">x</time>'
        f"<section><p>正文第一段。</p>{pictures}<p>正文第二段。</p></section>"
    )
    path = work / "article.txt"
    path.write_text(
        "<!--1716170821000-->\n[标题](https://cn.nytimes.com/world/20240520/ssrf/)\n"
        f"------\n\n{html}\n",
        encoding="utf-8",
    )
    return path


def _driver(work: Path) -> dict[str, Any]:
    from convert.config import load_config  # noqa: PLC0415
    from convert.net.client import Downloader  # noqa: PLC0415

    results: dict[str, Any] = {"setup": _setup(work)}
    os.mkfifo(work / FIFO)
    listeners = _Listeners()
    listeners.listen("0.0.0.0", PORT, _ok)
    listeners.listen("::", PORT, _ok)
    listeners.listen("127.0.0.1", REDIRECTOR_PORT, _redirector)
    dns: collections.Counter[str] = collections.Counter()
    _dns_stub(dns)

    base = load_config().download
    limits = dataclasses.replace(
        base,
        allow_private=False,
        allow_networks=(),
        timeout=2.0,
        deadline=5.0,
        retries=0,
        backoff=0.01,
        cache_dir=str(work / "cache"),
    )
    # (a) the downloader itself
    with Downloader(limits) as downloader:
        results["direct"] = {
            name: _try_get(downloader, url.format(work=work)) for name, url, _ in DIRECT
        }
    # (b) pictures of an article, by the two commands that fetch them
    config = work / "config.yaml"
    config.write_text(
        f'download:\n  retries: 0\n  timeout: 2\n  deadline: 5\n  cache_dir: "{work / "cache"}"\n',
        encoding="utf-8",
    )
    article = str(_article(work))
    common = ["-c", str(config)]
    results["markdown"] = _cli(
        [*common, "markdown", article, "-o", str(work / "md"), "--download-images"]
    )
    results["markdown"]["text"] = "".join(
        p.read_text(encoding="utf-8") for p in sorted((work / "md").glob("*.md"))
    )
    results["epub"] = _cli([*common, "epub", article, "-o", str(work / "digest.epub")])
    # (c) feed URLs
    feeds = [url for _, url, _ in FEED_URLS]
    results["feed"] = _cli([*common, "feed", *feeds, "-o", str(work / "feed.xml")])
    results["feed"]["written"] = (work / "feed.xml").exists()
    archive = work / "archive.sqlite"
    results["ingest"] = _cli([*common, "ingest", *feeds, "--archive", str(archive)])
    # Redirects and an OPML list from the one allowed server, 127.0.0.1/32.
    allowed = work / "allowed.yaml"
    allowed.write_text(
        config.read_text(encoding="utf-8") + '  allow_networks: ["127.0.0.1/32"]\n',
        encoding="utf-8",
    )
    redirector = f"http://127.0.0.1:{REDIRECTOR_PORT}"
    with Downloader(dataclasses.replace(limits, allow_networks=("127.0.0.1/32",))) as downloader:
        results["redirects"] = {
            name: _try_get(downloader, f"{redirector}/r/{name}") for name, _, _ in REDIRECTS
        }
    results["opml"] = _cli(
        ["-c", str(allowed), "feed", f"{redirector}/list.opml", "-o", str(work / "opml.xml")]
    )

    time.sleep(0.2)  # a connection, had one been made, is counted by now
    results["hostile_counts"] = listeners.snapshot()
    results["dns_queries"] = dns["queries"]

    # Positive control: the same listeners, with private addresses allowed.
    control: dict[str, Any] = {}
    with Downloader(dataclasses.replace(limits, allow_private=True)) as downloader:
        for address in CONTROL_ADDRESSES:
            host = f"[{address}]" if ":" in address else address
            before = sum(listeners.snapshot().values())
            fetched = _try_get(downloader, f"http://{host}:{PORT}/")
            time.sleep(0.05)
            fetched["counted"] = sum(listeners.snapshot().values()) - before
            control[address] = fetched
    results["control"] = control
    return results


# --- running the driver -----------------------------------------------------------------------


def _unshare_command() -> list[str] | None:
    """The `unshare` command line that works here, or None."""
    if sys.platform != "linux" or not shutil.which("unshare"):
        return None
    candidates = [["unshare", "--net", "--mount"]]
    if os.geteuid() != 0:
        candidates.append(["unshare", "--net", "--mount", "--map-root-user"])
    for command in candidates:
        try:
            probe = subprocess.run([*command, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return command
    return None


UNSHARE = _unshare_command()
needs_namespace = pytest.mark.skipif(
    UNSHARE is None,
    reason="`unshare --net --mount` is not available here (needs root or user namespaces); "
    "the SSRF cases only run in a network namespace with loopback alone",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the driver saw, run once for the whole module."""
    assert UNSHARE is not None
    work = tmp_path_factory.mktemp("ssrf")
    started = time.monotonic()
    done = subprocess.run(
        [*UNSHARE, sys.executable, __file__, "--driver", str(work)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, Any] = json.loads(done.stdout)
    results["elapsed"] = time.monotonic() - started
    results["work"] = str(work)
    return results


def assert_refused(result: dict[str, Any], url: str, kinds: tuple[str, ...]) -> None:
    """A ConvertError naming `url`, on one line, from one of the layers `kinds`."""
    assert "crash" not in result, result
    assert "fetched" not in result, result
    assert result["where"] == url
    assert "\n" not in result["line"]
    assert result["line"].startswith(f"{url}: ")
    assert any(_reads_as(result["reason"], kind) for kind in kinds), result["reason"]
    assert result["seconds"] < 10


def _reads_as(reason: str, kind: str) -> bool:
    if kind == GUARD:
        return reason.startswith("refused:") and "not a public address" in reason
    if kind == RESOLVER:
        return reason.startswith("cannot resolve ")
    if kind == SCHEME:
        return reason.startswith("refused:") and "scheme, only http(s)" in reason
    if kind == PARSER:
        return reason.startswith("bad address ")
    if kind == NO_FILE:
        return reason == "no such file"
    raise AssertionError(kind)


def line_about(lines: list[str], level: str, url: str) -> str:
    """The one `level: url: ...` line among `lines`."""
    found = [line for line in lines if line.startswith(f"{level}: {url}: ")]
    assert len(found) == 1, (url, lines)
    return found[0]


# --- the namespace itself -----------------------------------------------------------------


@needs_namespace
def test_the_namespace_has_only_loopback(run: dict[str, Any]) -> None:
    setup = run["setup"]
    assert setup["interfaces"] == ["lo"]
    # Every route is on lo: nothing can leave.
    assert all(line.split()[0] == "lo" for line in setup["routes"]), setup["routes"]
    assert sorted(setup["mounted"]) == ["/etc/hosts", "/etc/nsswitch.conf", "/etc/resolv.conf"]
    assert run["elapsed"] < 60


@needs_namespace
def test_no_hostile_request_reached_a_listener(run: dict[str, Any]) -> None:
    counts = dict(run["hostile_counts"])
    redirector = counts.pop(f"127.0.0.1 {REDIRECTOR_PORT}", 0)
    assert counts == {}  # not one connection on port 8080, at any address
    # The allowed server saw the redirects (one per hop) and the OPML request, no more.
    assert redirector == len(REDIRECTS) + 2 + 1


@needs_namespace
@pytest.mark.parametrize("address", CONTROL_ADDRESSES)
def test_the_listeners_do_count(run: dict[str, Any], address: str) -> None:
    """Positive control: with private addresses allowed, each address is reached once."""
    if address not in ("127.0.0.1", "127.0.0.2", "::1") and address not in run["setup"]["added"]:
        pytest.skip(f"{address} could not be put on lo (no `ip` here)")
    result = run["control"][address]
    assert result.get("fetched") == "ok", result
    assert result["counted"] == 1


@needs_namespace
def test_names_are_looked_up_only_on_loopback(run: dict[str, Any]) -> None:
    """Names not in the private hosts file went to the stub on 127.0.0.1:53, and failed."""
    assert run["dns_queries"] >= 1


# --- (a) the downloader ---------------------------------------------------------------------


@needs_namespace
@pytest.mark.parametrize(("name", "url", "kinds"), DIRECT, ids=[case[0] for case in DIRECT])
def test_downloader_refuses(
    run: dict[str, Any], name: str, url: str, kinds: tuple[str, ...]
) -> None:
    assert_refused(run["direct"][name], url.format(work=run["work"]), kinds)


# --- (b) mirrored pictures of an article ------------------------------------------------------


@needs_namespace
@pytest.mark.parametrize(
    ("name", "proxy", "origin", "kinds"), MIRRORED, ids=[case[0] for case in MIRRORED]
)
@pytest.mark.parametrize("command", ["markdown", "epub"])
def test_mirrored_picture_is_refused(
    run: dict[str, Any],
    command: str,
    name: str,
    proxy: str,
    origin: str | None,
    kinds: tuple[str, ...],
) -> None:
    result = run[command]
    assert not str(result["code"]).startswith("crash"), result
    lines = result["lines"]
    if origin is None:
        article = "https://cn.nytimes.com/world/20240520/ssrf/"
        found = [x for x in lines if x.endswith(proxy)]
        assert len(found) == 1, (proxy, lines)
        assert found[0].startswith(f"warning: {article}: dropped a picture whose proxy URL")
        return
    # Markdown reports a failed picture as an error (the file keeps its address);
    # the EPUB leaves it out with a warning.
    level = "error" if command == "markdown" else "warning"
    line = line_about(lines, level, origin)
    reason = line.removeprefix(f"{level}: {origin}: ").split(" (picture of ")[0]
    assert any(_reads_as(reason, kind) for kind in kinds), line


@needs_namespace
@pytest.mark.parametrize("command", ["markdown", "epub"])
def test_commands_report_every_picture_and_still_finish(run: dict[str, Any], command: str) -> None:
    result = run[command]
    expected = 1 if command == "markdown" else 0  # markdown: failed downloads exit 1
    assert result["code"] == expected, result
    assert result["seconds"] < 30
    assert all(line.startswith(("error: ", "warning: ")) for line in result["lines"])
    if command == "markdown":
        assert "正文第二段" in result["text"]


@needs_namespace
@pytest.mark.xfail(
    reason="cleaning/images.py keeps a picture whose origin is a non-public address, so "
    "every subscriber's reader would fetch it (recommended: drop it like a non-web origin)",
    strict=False,
)
def test_republished_markdown_embeds_no_private_picture(run: dict[str, Any]) -> None:
    text = run["markdown"]["text"]
    assert not [origin for _, _, origin, _ in MIRRORED if origin and origin in text]


# --- (c) feed URLs ------------------------------------------------------------------------


@needs_namespace
@pytest.mark.parametrize(("name", "url", "kinds"), FEED_URLS, ids=[c[0] for c in FEED_URLS])
@pytest.mark.parametrize("command", ["feed", "ingest"])
def test_feed_url_is_refused(
    run: dict[str, Any], command: str, name: str, url: str, kinds: tuple[str, ...]
) -> None:
    line = line_about(run[command]["lines"], "error", url)
    reason = line.removeprefix(f"error: {url}: ")
    assert any(_reads_as(reason, kind) for kind in kinds), line


@needs_namespace
@pytest.mark.parametrize("command", ["feed", "ingest"])
def test_feed_commands_fail_with_one_line_per_url(run: dict[str, Any], command: str) -> None:
    result = run[command]
    assert result["code"] == 1
    assert len(result["lines"]) == len(FEED_URLS)
    assert result["seconds"] < 30
    if command == "feed":
        assert result["written"] is False


@needs_namespace
def test_private_feeds_listed_in_a_fetched_opml_are_refused(run: dict[str, Any]) -> None:
    result = run["opml"]
    assert result["code"] == 1
    for url in OPML_FEEDS:
        line = line_about(result["lines"], "error", url)
        assert _reads_as(line.removeprefix(f"error: {url}: "), GUARD), line


# --- redirects from an allowed server -----------------------------------------------------


@needs_namespace
@pytest.mark.parametrize(("name", "target", "kinds"), REDIRECTS, ids=[c[0] for c in REDIRECTS])
def test_redirect_into_private_space_is_refused(
    run: dict[str, Any], name: str, target: str, kinds: tuple[str, ...]
) -> None:
    url = f"http://127.0.0.1:{REDIRECTOR_PORT}/r/{name}"
    assert_refused(run["redirects"][name], url, kinds)


# --- the address table (no namespace needed) ------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1",  # site-local: global to Python 3.11.7
        "::127.0.0.1",  # IPv4-compatible loopback: global to Python 3.11.7
        "::7f00:1",
        "::ffff:0:7f00:1",  # IPv4-translated
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::7f00:1",  # local-use NAT64
        "5f00::1",  # SRv6
        "3fff::1",  # documentation (2024)
        "192.88.99.1",  # 6to4 relay anycast
        "2002:6440:1::",  # 6to4 of 100.64.0.1
    ],
)
def test_address_is_not_public(address: str) -> None:
    assert address_is_public(address) is False


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::", "1.1.1.1"])
def test_translated_public_address_is_public(address: str) -> None:
    assert address_is_public(address) is True


# --- entry point of the driver --------------------------------------------------------------


def _main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "--driver":
        print("usage: test_ssrf.py --driver WORK_DIR", file=sys.stderr)
        return 2
    results = _driver(Path(argv[2]))
    json.dump(results, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
