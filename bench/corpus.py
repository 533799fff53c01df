"""The corpus of bench/run.py: N seed-shaped feedx dumps and a local picture server.

Each dump is the seed article (examples/nyt-putin-harbin.txt, the same file as
shared/samples/000_36505d7a1db77cb2.txt) with its own texts: the title, the lead
caption, every paragraph and every inline caption are replaced by distinct
Chinese text of the same length (from bench/epub_digest.py's generator), so a
dump is about 10.5 KB like the seed. The markup stays the seed's: `<address>`,
`<time pudate>`, the lead `<figure>` with `<cite>`, `<p><img><small>` inline
pictures, a link in the body, the footer credits and links, the feedx promo.
Pictures keep the seed's images.weserv.nl proxy shape, wrapping a URL on the
local server: `https://images.weserv.nl/?url=http://127.0.0.1:PORT/pics/NAME`,
so the proxy rewrite runs and the EPUB fetches from 127.0.0.1 only. Even
articles have 4 pictures (lead + 3 inline, as the seed), odd ones 3.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

from epub_digest import KINDS, article_paragraphs, draw_picture

BENCH = Path(__file__).resolve().parent
SEED = BENCH.parent / "examples" / "nyt-putin-harbin.txt"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # feedx stamps pudate in China time
PROXY = "https://images.weserv.nl/?url="
SEPARATOR = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.M)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')
_INLINE_PICTURE = re.compile(r"<p><img\b[^>]*><small\b[^>]*>[^<]*</small></p>")
_SENTENCE = re.compile(r"[^。]+。”?")
_NAME = re.compile(r"(\d{5})-(\d)\.(jpg|webp|png)")


def picture_names(number: int) -> list[str]:
    """File names of article `number`'s pictures, the lead one first (4 when even, else 3)."""
    return [f"{number:05d}-{i}.{KINDS[(number + i) % len(KINDS)]}" for i in range(4 - number % 2)]


def _sentences(number: int) -> Iterator[str]:
    """An endless stream of distinct sentences for article `number`."""
    salt = 0
    while True:
        for paragraph in article_paragraphs(number + 1_000_000 * salt, 12_000):
            yield from _SENTENCE.findall(paragraph)
        salt += 1


def _fill(stream: Iterator[str], length: int) -> str:
    """Whole sentences from `stream`, at least `length` characters."""
    text = ""
    while len(text) < length:
        text += next(stream)
    return text


def seed_dump(number: int, base_url: str, seed: str) -> str:
    """Article `number`: the seed's markup, its own texts, dates, URLs and pictures."""
    stamp_line, rest = seed.split("\n", 1)
    head, body = SEPARATOR.split(rest, maxsplit=1)
    body = body.lstrip()
    stream = _sentences(number)
    day = datetime(2024, 5, 14 + number % 7, number % 24, number % 60, tzinfo=SHANGHAI)
    captured_ms = int((day + timedelta(minutes=5 + number % 50)).timestamp() * 1000)
    slug = f"synthetic-{number:05d}"
    title = _fill(stream, 18).rstrip("。")
    url = f"https://cn.nytimes.com/world/{day:%Y%m%d}/{slug}/"
    # The text of the lead figure, the paragraphs and the inline captions is replaced;
    # names, dates, credits, link labels and the footer stay the seed's.
    start, end = body.index("<figure>"), body.index("</section>")

    def new_text(match: re.Match[str]) -> str:
        text = html.unescape(match.group(1))
        if len(text) < 8 or not _CJK.search(text):
            return match.group(0)
        return ">" + html.escape(_fill(stream, len(text)), quote=False) + "<"

    middle = re.sub(r">([^<]+)<", new_text, body[start:end])
    if number % 2:  # three pictures: drop the last inline one
        inline = list(_INLINE_PICTURE.finditer(middle))
        if inline:
            middle = middle[: inline[-1].start()] + middle[inline[-1].end() :]
    names = iter(picture_names(number))

    def new_src(match: re.Match[str]) -> str:
        return match.group(1) + f"{PROXY}{base_url}/pics/{next(names)}" + match.group(3)

    middle = _IMG_SRC.sub(new_src, middle)
    footer = body[end:].replace("putin-xi-china-russia", slug)
    top = re.sub(r'(pudate|datetime)="[^"]*"', rf'\1="{day:%Y-%m-%d %H:%M:%S}"', body[:start])
    top = re.sub(r">\d{4}年\d{1,2}月\d{1,2}日<", f">{day.year}年{day.month}月{day.day}日<", top)
    del stamp_line, head  # replaced by the article's own
    return f"<!--{captured_ms}-->\n[{title}]({url})\n------\n\n{top}{middle}{footer}"


def split_dump(text: str) -> tuple[str, str]:
    """(title, raw body HTML) of a feedx dump, the way a baseline sees it."""
    head, body = SEPARATOR.split(text, maxsplit=1)
    title = re.search(r"^\[(.*)\]\(", head, re.M)
    return (title.group(1) if title else ""), body.strip()


def write_corpus(folder: Path, count: int, base_url: str) -> list[str]:
    """Write `count` dumps as folder/NNNNN.txt and their bodies as folder/bodies/NNNNN.html.

    Returns the dump names, relative to `folder` (commands run there, to keep argv short).
    """
    seed = SEED.read_text("utf-8")
    (folder / "bodies").mkdir(parents=True, exist_ok=True)
    names = []
    for number in range(count):
        dump = seed_dump(number, base_url, seed)
        name = f"{number:05d}.txt"
        (folder / name).write_text(dump, "utf-8")
        (folder / "bodies" / f"{number:05d}.html").write_text(split_dump(dump)[1], "utf-8")
        names.append(name)
    return names


# --- the picture server ------------------------------------------------------------------


def _draw_to(folder: Path, width: int, name: str) -> None:
    match = _NAME.fullmatch(name)
    assert match is not None
    path = folder / name
    if not path.exists():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(draw_picture(name, match.group(3), width))
        tmp.replace(path)


class PictureServer:
    """Serves folder/pics/NAME on 127.0.0.1, drawing a picture on its first request."""

    def __init__(self, folder: Path, width: int) -> None:
        self.folder = folder
        self.width = width
        self.requests = 0
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                match = re.fullmatch(r"/pics/(\d{5}-\d\.(?:jpg|webp|png))", self.path)
                if match is None:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                name = match.group(1)
                with server._lock:
                    _draw_to(server.folder, server.width, name)
                data = (server.folder / name).read_bytes()
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def draw_all(self, names: list[str], jobs: int) -> None:
        """Draw every picture in `names` now (in `jobs` processes), not on request."""
        missing = [n for n in names if not (self.folder / n).exists()]
        if not missing:
            return
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(partial(_draw_to, self.folder, self.width), missing, chunksize=64))

    def __enter__(self) -> PictureServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
