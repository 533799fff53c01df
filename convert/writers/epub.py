"""EPUB 3 digest through ebooklib: cover, contents by day and source, one chapter per article.

Pages come from the Jinja2 templates in `templates/epub/`. Every file name in the
book is generated (counters, content hashes), never taken from a title or URL.
Pictures are embedded from what the media intake prepared; a picture it could not
fetch becomes a link to the original beside its caption. The zip is written by
`_ReproducibleZip`, in one pass with fixed timestamps, so that the same digest
gives the same bytes; pages are made, and pictures read from the cache, only as
the zip is written, one at a time.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import uuid
import zipfile
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import jinja2
from ebooklib import epub
from ebooklib.utils import parse_html_string, parse_string
from lxml import etree

from convert.media.picture import Picture
from convert.model import Article, Digest, Image
from convert.resources import resource_path
from convert.text import remove_invalid_xml
from convert.urls import is_web_url
from convert.workers import can_fork, worker_pool
from convert.writers.cover import render_cover
from convert.writers.templates import templates

_WEEKDAYS = {
    "zh": "一二三四五六日",
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
LABELS: dict[str, dict[str, str]] = {
    "zh-Hans": {
        "contents": "目录",
        "total": "共 {count} 篇",
        "original": "原文",
        "english": "英文版",
        "picture": "原图",
    },
    "zh-Hant": {
        "contents": "目錄",
        "total": "共 {count} 篇",
        "original": "原文",
        "english": "英文版",
        "picture": "原圖",
    },
    "en": {
        "contents": "Contents",
        "total": "{count} articles",
        "original": "Original",
        "english": "English",
        "picture": "Picture",
    },
}


@dataclass(frozen=True, slots=True)
class EpubOptions:
    """How the book is laid out."""

    vertical: bool = False
    """Vertical writing (`writing-mode: vertical-rl`) and a right-to-left spine."""

    font_path: Path | None = None
    """A CJK font for the cover; None draws only what the fallback font can."""

    jobs: int = 1
    """Worker processes that make the pages of a large book; 1: none, made here."""


def digest_identifier(name: str, label: str) -> str:
    """`urn:uuid:` from the digest's name and period: the same digest, the same book."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'feedx-convert:{name}:{label}')}"


def labels_for(language: str) -> dict[str, str]:
    """Words of the book's own furniture in its language (English when unknown)."""
    if language.startswith("zh"):
        return LABELS["zh-Hant" if language == "zh-Hant" else "zh-Hans"]
    return LABELS["en"]


def day_title(day: date, language: str) -> str:
    """`5月20日 星期一`, or `Monday 20 May 2024`."""
    if language.startswith("zh"):
        return f"{day.month}月{day.day}日 星期{_WEEKDAYS['zh'][day.weekday()]}"
    return f"{_WEEKDAYS['en'][day.weekday()]} {day.day} {day:%B %Y}"


def _time_text(moment: datetime, language: str) -> str:
    if language.startswith("zh"):
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"
    return f"{moment.day} {moment:%B %Y %H:%M}"


def _day_of(article: Article) -> date:
    moment = article.published or article.captured
    assert moment is not None, "the EPUB output keeps only dated articles in a digest"
    return moment.date()


@functools.cache
def _parsed(template: bytes | str) -> Any:
    """ebooklib's page template, parsed once: a copy of the tree is 5 times faster."""
    return parse_string(template)


@functools.cache
def _template(name: str) -> jinja2.Template:
    # Looked up once: `get_template` checks the file's modification time on every call.
    return templates().get_template(name)


def _figure_html(image: Image, pictures: Mapping[str, Picture], labels: dict[str, str]) -> str:
    """The lead picture as a figure: embedded, or a link to the original."""
    return _template("epub/figure.xhtml.j2").render(
        image=image, picture=pictures.get(image.url), labels=labels
    )


def _localize_pictures(
    root: Any, pictures: Mapping[str, Picture], labels: dict[str, str], local: frozenset[str]
) -> None:
    """Pictures under `root` pointed into the book; a missing one becomes a link, and
    links and pictures the book cannot hold (relative to a page it has not) go, their
    words kept.

    `local` are the `src` of the book's own pictures (`images/<name>`, as the lead
    figure has them already); every other `src` is a URL the article names.
    """
    for anchor in list(root.iter("a")):
        href = anchor.get("href") or ""
        if not (is_web_url(href) or href.startswith(("mailto:", "#"))):
            _unwrap(anchor)
    for img in list(root.iter("img")):
        url = img.get("src") or ""
        if url in local:
            continue
        picture = pictures.get(url)
        if picture is not None:
            img.set("src", f"images/{picture.name}")
            continue
        if not is_web_url(url):
            img.tail = (img.get("alt") or "") + (img.tail or "")
            _unwrap(img)
            continue
        link = img.makeelement("a", {"href": url, "class": "missing-picture"})
        link.text = labels["picture"]
        link.tail = img.tail
        img.getparent().replace(img, link)


def _unwrap(element: Any) -> None:
    """Take `element` out of the tree, its text, children and tail staying in place."""
    parent = element.getparent()
    previous = element.getprevious()
    text = element.text or ""
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    at = parent.index(element)
    children = list(element)
    for offset, child in enumerate(children):
        parent.insert(at + offset, child)
    tail = element.tail or ""
    if children:
        last = children[-1]
        last.tail = (last.tail or "") + tail
    elif previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)


@dataclass(frozen=True, slots=True)
class _Pictures:
    """What a chapter needs to point its pictures into the book."""

    by_url: Mapping[str, Picture]
    labels: dict[str, str]
    local: frozenset[str]
    """`images/<name>` of every picture in the book."""


class _Chapter(epub.EpubHtml):  # type: ignore[misc]  # ebooklib has no types
    """One article's page, made when the book's zip is written, its pictures pointed into
    the book as it is laid out.

    ebooklib parses every page's HTML to lay it out as XHTML; the pictures are set on
    that same tree, so that the article's body is parsed once, not twice. The page is
    rendered only then, so that it is made while the page before is compressed; in a
    large book, page workers make most pages ahead (`_page_workers`) and
    `get_content` takes them. `make_page` and `get_body_content` are ebooklib's
    `get_content` and `get_body_content` (0.20) with the pictures step added.
    """

    def __init__(self, number: int, article: Article, pictures: _Pictures) -> None:
        super().__init__(
            uid=f"a{number:04d}",
            file_name=f"a{number:04d}.xhtml",
            title=article.title,
            lang=article.language,
        )
        self.article = article
        self.pictures = pictures

    def page(self) -> str:
        """The article's page, as the template makes it (pictures still at their URLs)."""
        article, labels = self.article, self.pictures.labels
        published = article.published
        lead = article.lead_image
        return _template("epub/chapter.xhtml.j2").render(
            article=article,
            cjk=article.language.startswith("zh"),
            published=_time_text(published, article.language) if published else "",
            published_iso=published.isoformat() if published else "",
            lead=_figure_html(lead, self.pictures.by_url, labels) if lead else "",
            # What XML cannot carry would make the page unparseable (cleaning removed it).
            body=remove_invalid_xml(article.body),
            english=[k for k in article.links if k.rel == "alternate" and k.language == "en"],
            labels=labels,
        )

    def _parsed_body(self) -> Any | None:
        """The page's `<body>`, parsed as ebooklib parses it, its pictures in the book."""
        try:
            html_tree = parse_html_string(self.page())
        except Exception:  # as ebooklib: a page it cannot parse is left empty
            return None
        body = html_tree.find("body")
        if body is not None:
            pictures = self.pictures
            _localize_pictures(body, pictures.by_url, pictures.labels, pictures.local)
        return body

    made: Future[list[bytes]] | None = None
    """The pages of this chapter's batch, when page workers make them."""

    made_index = 0
    """This chapter's place in that batch."""

    supply: _PageSupply | None = None
    """The page workers' queue, told when a page is taken (to make the next batch)."""

    def get_content(self, default: bytes | None = None) -> bytes:
        made, self.made = self.made, None  # taken: the batch's bytes go with its last page
        if self.supply is not None:
            self.supply.taken(self)
        if made is not None:
            with contextlib.suppress(BrokenProcessPool):  # a killed worker: made here
                return made.result()[self.made_index]
        return self.make_page()

    def make_page(self) -> bytes:
        """The page's XHTML, laid out as ebooklib lays out a page."""
        tree = copy.deepcopy(_parsed(self.book.get_template(self._template_name)))
        tree_root = tree.getroot()
        language = self.lang or self.book.language
        tree_root.set("lang", language)
        tree_root.attrib[f"{{{epub.NAMESPACES['XML']}}}lang"] = language
        source = self._parsed_body()
        if source is None:
            return b""
        head = etree.SubElement(tree_root, "head")
        for meta in self.metas:
            etree.SubElement(head, "meta", meta)
        if self.title != "":
            etree.SubElement(head, "title").text = self.title
        for link in self.links:
            etree.SubElement(head, "link", link)
        body = etree.SubElement(tree_root, "body")
        if self.direction:
            body.set("dir", self.direction)
            tree_root.set("dir", self.direction)
        for child in source.getchildren():
            body.append(child)
        page = etree.tostring(tree, pretty_print=True, encoding="utf-8", xml_declaration=True)
        return bytes(page)

    def get_body_content(self) -> bytes:
        # Only ebooklib's page list asks (see `write_epub`).
        body = self._parsed_body()
        if body is None or len(body) == 0:
            return b""
        text = bytes(etree.tostring(body, pretty_print=True, encoding="utf-8"))
        if text.startswith(b"<body>"):
            return text[6 : text.rindex(b"</body>")]
        return text


def write_epub(digest: Digest, pictures: Mapping[str, Picture], options: EpubOptions) -> bytes:
    """The digest as EPUB 3 bytes."""
    if not digest.articles:
        raise ValueError("a digest needs at least one article")
    out = io.BytesIO()
    cover: Future[bytes] = Future()  # drawn once the page workers are started
    book = _book(digest, pictures, options, cover)
    # Page workers first: a process forked while a thread runs could inherit a lock
    # that thread holds. Then one thread besides this one: it draws the cover (Pillow),
    # then writes the zip's entries in order (reading pictures from the cache and
    # deflating pages, both mostly outside the GIL) while this thread makes the pages,
    # or takes them from the page workers.
    with (
        _page_workers(book, options.jobs),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="epub") as pool,
    ):
        pool.submit(_draw_cover, cover, digest, options.font_path)
        modified = digest.modified.astimezone(UTC).replace(tzinfo=None)
        # ebooklib's page list parses every chapter again to look for page breaks
        # (`epub:type` attributes), which only an article's body could bring (cleaning
        # removes them): not asked for when no body has the text.
        pages = any("epub:type" in article.body for article in digest.articles)
        settings = {"mtime": modified, "epub3_pages": pages}
        writer = _Writer(_ReproducibleZip(out, pool), book, settings)
        writer.process()
        writer.write()
    return out.getvalue()


def _draw_cover(cover: Future[bytes], digest: Digest, font_path: Path | None) -> None:
    try:
        cover.set_result(render_cover(digest, font_path))
    except BaseException as error:  # raised where the zip takes the cover
        cover.set_exception(error)


# From this many chapters on, worker processes make pages too, _PAGES_PER_TASK a task:
# a page (template, parse, layout) is most of what this writer does, and below this
# starting the workers costs more than it saves. Each worker is at most _TASKS_AHEAD
# tasks ahead of the zip, so that the pages waiting for it stay a few hundred KB.
_PAGE_WORKERS_FROM = 200
_PAGES_PER_TASK = 25
_TASKS_AHEAD = 3

# The chapters of the book being written: page workers are forked copies of this
# process, and find their chapters here instead of having them pickled over.
_forked_chapters: list[_Chapter] = []


class _PageSupply:
    """Batches of pages given to the page workers in order, a few ahead of the zip."""

    def __init__(self, workers: ProcessPoolExecutor, chapters: list[_Chapter], jobs: int):
        self.workers = workers
        self.chapters = chapters
        # The first batch is made here, while the workers start.
        self.next_first = _PAGES_PER_TASK
        for _ in range(_TASKS_AHEAD * jobs):  # the first task forks the workers
            self.give()

    def give(self) -> None:
        """The next batch to the workers (unless all are given, or the workers broke)."""
        first, end = self.next_first, self.next_first + _PAGES_PER_TASK
        if first >= len(self.chapters):
            return
        try:
            made = self.workers.submit(_make_pages, first, end)
        except BrokenProcessPool:
            return  # the rest are made here
        for index, chapter in enumerate(self.chapters[first:end]):
            chapter.made, chapter.made_index, chapter.supply = made, index, self
        self.next_first = end

    def taken(self, chapter: _Chapter) -> None:
        """`chapter`'s page is being taken: after the last of a batch, give one more."""
        if chapter.made_index == _PAGES_PER_TASK - 1:
            self.give()


@contextlib.contextmanager
def _page_workers(book: epub.EpubBook, jobs: int) -> Iterator[None]:
    """Worker processes making the pages of `book`'s chapters, a batch per task."""
    chapters = [item for item in book.items if isinstance(item, _Chapter)]
    if jobs <= 1 or len(chapters) < _PAGE_WORKERS_FROM or not can_fork():
        yield
        return
    chapters[0].make_page()  # the templates compiled once, before the fork
    _forked_chapters[:] = chapters
    with worker_pool(jobs, fork=True) as workers:
        try:
            _PageSupply(workers, chapters, jobs)
            yield
        finally:
            for chapter in chapters:
                chapter.made = chapter.supply = None
            _forked_chapters.clear()
            workers.shutdown(cancel_futures=True)  # after a failure, make no more


def _make_pages(first: int, end: int) -> list[bytes]:
    """In a page worker: the pages of chapters `first` up to `end`."""
    return [chapter.make_page() for chapter in _forked_chapters[first:end]]


def _book(
    digest: Digest, pictures: Mapping[str, Picture], options: EpubOptions, cover: Future[bytes]
) -> epub.EpubBook:
    """The book's items, metadata, contents and spine; pages and pictures are read later."""
    labels = labels_for(digest.language)
    book = epub.EpubBook()
    book.set_identifier(digest.identifier)
    book.set_title(f"{digest.name} · {digest.label}")
    book.set_language(digest.language)
    _add_people(book, digest.articles)
    book.add_metadata("DC", "date", digest.end.isoformat())
    book.add_metadata("DC", "publisher", digest.name)
    # The cover's bytes once drawn: `_ReproducibleZip` waits for them.
    book.set_cover("cover.jpg", cover, create_page=True)

    styles = [_stylesheet(book, "style.css")]
    if options.vertical:
        styles.append(_stylesheet(book, "vertical.css"))
        book.set_direction("rtl")
    for picture in sorted({p.name: p for p in pictures.values()}.values(), key=lambda p: p.name):
        book.add_item(_BookImage(picture))

    shared = _Pictures(pictures, labels, frozenset(f"images/{p.name}" for p in pictures.values()))
    chapters = [
        _chapter(book, _Chapter(number, article, shared), styles)
        for number, article in enumerate(digest.articles, 1)
    ]
    days = _outline(digest, chapters)
    contents = epub.EpubHtml(
        uid="contents", file_name="contents.xhtml", title=labels["contents"], lang=digest.language
    )
    contents.content = _template("epub/contents.xhtml.j2").render(
        digest=digest, days=days, labels=labels
    )
    for style in styles:
        contents.add_item(style)
    book.add_item(contents)
    # Sections open at their first article: a reader's TOC must follow the spine order.
    book.toc = [epub.Link("contents.xhtml", labels["contents"], "toc-contents")] + [
        (
            epub.Section(
                f"{day['title']} ({day['count']})", day["sources"][0]["chapters"][0].file_name
            ),
            [
                (
                    epub.Section(
                        f"{source['name']} ({len(source['chapters'])})",
                        source["chapters"][0].file_name,
                    ),
                    [epub.Link(c.file_name, c.title, c.id) for c in source["chapters"]],
                )
                for source in day["sources"]
            ],
        )
        for day in days
    ]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["cover", contents, *chapters]
    book.guide = [
        {"type": "cover", "href": "cover.xhtml", "title": "Cover"},
        {"type": "toc", "href": "contents.xhtml", "title": labels["contents"]},
    ]
    return book


def _stylesheet(book: epub.EpubBook, name: str) -> Any:
    style = epub.EpubItem(
        uid=name.replace(".", "-"),
        file_name=f"styles/{name}",
        media_type="text/css",
        content=(resource_path("templates") / "epub" / name).read_bytes(),
    )
    book.add_item(style)
    return style


def _chapter(book: epub.EpubBook, chapter: _Chapter, styles: list[Any]) -> _Chapter:
    for style in styles:
        chapter.add_item(style)
    book.add_item(chapter)
    return chapter


def _outline(digest: Digest, chapters: list[Any]) -> list[dict[str, Any]]:
    """Days, then sources, then chapters, in the digest's reading order."""
    pairs = list(zip(digest.articles, chapters, strict=True))
    days: list[dict[str, Any]] = []
    for d, (day, by_day) in enumerate(groupby(pairs, key=lambda p: _day_of(p[0])), 1):
        day_pairs = list(by_day)
        sources = [
            {"name": name, "anchor": f"d{d}s{s}", "chapters": [c for _a, c in group]}
            for s, (name, group) in enumerate(groupby(day_pairs, key=lambda p: p[0].source_name), 1)
        ]
        days.append(
            {
                "title": day_title(day, digest.language),
                "anchor": f"d{d}",
                "count": len(day_pairs),
                "sources": sources,
            }
        )
    return days


def _add_people(book: epub.EpubBook, articles: tuple[Article, ...]) -> None:
    """Authors as creators; translators and reporters as contributors with their roles."""
    authors = list(dict.fromkeys(name for a in articles for name in a.authors))
    for number, name in enumerate(authors, 1):
        book.add_author(name, role="aut", uid=f"creator{number}")
    roles = {"translator": "trl", "reporter": "ctb", "photographer": "pht", "editor": "edt"}
    people = dict.fromkeys(
        (c.name, roles.get(c.role, "ctb")) for a in articles for c in a.contributors
    )
    for number, (name, role) in enumerate(people, 1):
        uid = f"contributor{number}"
        book.add_metadata("DC", "contributor", name, {"id": uid})
        book.add_metadata(
            None,
            "meta",
            role,
            {"refines": f"#{uid}", "property": "role", "scheme": "marc:relators"},
        )


class _BookImage(epub.EpubImage):  # type: ignore[misc]  # ebooklib has no types
    """A picture whose bytes are read only when the book's zip is written, one at a time.

    `get_content` hands ebooklib's writer the `Picture` itself, not its bytes:
    `_ReproducibleZip` reads them in one of its threads.
    """

    def __init__(self, picture: Picture) -> None:
        super().__init__(
            uid=f"img-{picture.name.split('.')[0]}",
            file_name=f"images/{picture.name}",
            media_type=picture.media_type,
        )
        self.picture = picture

    def get_content(self, default: bytes | None = None) -> Picture:
        return self.picture


class _Writer(epub.EpubWriter):  # type: ignore[misc]
    """ebooklib's writer, writing each entry straight into our `_ReproducibleZip`:
    one pass, no second copy of the book to rewrite."""

    def __init__(self, out: _ReproducibleZip, book: epub.EpubBook, options: dict[str, Any]):
        super().__init__("", book, options)
        self.zip = out

    def write(self) -> None:
        # What ebooklib's `write` does, in its order, but into our zip.
        self.out = self.zip
        self.out.writestr("mimetype", "application/epub+zip")
        self._write_container()
        self._write_opf()
        self._write_items()
        self.out.close()


# Fixed zip entry time (the zip format's own epoch): rebuilds are byte-identical.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Pages made but not yet in the zip, in bytes, at most: the writer thread may fall
# behind, but not by the whole book. Pictures waiting count nothing (read when written).
_AHEAD_BYTES = 4_000_000
# Entries handed to the writer thread at a time: a task for each entry costs about as
# much as writing a small one.
_BATCH = 32


# What an entry is made of: text or bytes, a picture still in the cache, or the cover
# still being drawn.
_Data = bytes | str | Picture | Future[bytes]


def _bytes_of(data: _Data) -> bytes:
    """An entry's bytes: the cover once drawn, a picture read from the cache and checked."""
    if isinstance(data, Future):
        return data.result()  # the cover, submitted to the pool before any entry
    if isinstance(data, Picture):
        return data.data
    return data.encode("utf-8") if isinstance(data, str) else data


class _ReproducibleZip:
    """The book's zip (Python's zipfile), written in one pass with fixed entry times and
    permissions, so that the same digest gives the same bytes on any machine.

    `mimetype` comes first and is stored (the EPUB rule); pictures are stored too
    (compressed already: deflating them again costs time for a fraction of a percent);
    text is deflated. What ebooklib's writer calls is `writestr` and `close`. The
    entries are written by `pool`'s one thread, in order, a batch at a time, while the
    caller makes the next pages: reading pictures and deflating pages let go of the GIL.
    """

    def __init__(self, out: io.BytesIO, pool: ThreadPoolExecutor) -> None:
        self.zip = zipfile.ZipFile(out, "w")
        self.pool = pool
        self.batch: list[tuple[str, _Data]] = []
        self.batch_bytes = 0
        self.pending: deque[tuple[Future[None], int]] = deque()
        self.waiting = 0  # bytes of the pending batches

    def writestr(self, name: str, data: _Data, compress_type: int | None = None) -> None:
        self.batch.append((name, data))
        self.batch_bytes += len(data) if isinstance(data, bytes | str) else 0
        if len(self.batch) >= _BATCH:
            self._hand_over()

    def close(self) -> None:
        """Write what is pending, then the central directory."""
        self._hand_over()
        while self.pending:
            self._done()
        self.zip.close()

    def _hand_over(self) -> None:
        """The batch to the writer thread; wait while too much is waiting."""
        if self.batch:
            self.pending.append((self.pool.submit(self._put_all, self.batch), self.batch_bytes))
            self.waiting += self.batch_bytes
            self.batch, self.batch_bytes = [], 0
        while self.pending and (self.waiting > _AHEAD_BYTES or self.pending[0][0].done()):
            self._done()

    def _done(self) -> None:
        """Wait for the oldest batch (its error, if any, is raised here)."""
        written, size = self.pending.popleft()
        self.waiting -= size
        written.result()

    def _put_all(self, entries: list[tuple[str, _Data]]) -> None:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            stored = name == "mimetype" or name.startswith("EPUB/images/")
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            self.zip.writestr(info, _bytes_of(data), compresslevel=None if stored else 9)
