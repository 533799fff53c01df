"""EPUB 3 digest through ebooklib: cover, contents by day and source, one chapter per article.

Pages come from the Jinja2 templates in `templates/epub/`. Every file name in the
book is generated (counters, content hashes), never taken from a title or URL.
Pictures are embedded from what the pipeline fetched; a picture it could not
fetch becomes a link to the original beside its caption. The zip is rewritten
with fixed timestamps, so that the same digest gives the same bytes.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from ebooklib import epub

from convert.fragments import inner_html, parse_fragment
from convert.model import Article, Digest, Image
from convert.pictures import Picture
from convert.resources import resource_path
from convert.writers.cover import render_cover
from convert.writers.html import templates

# Fixed zip entry time (the zip format's own epoch): rebuilds are byte-identical.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
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
    assert moment is not None, "the pipeline keeps only dated articles in a digest"
    return moment.date()


def _figure_html(image: Image, pictures: Mapping[str, Picture], labels: dict[str, str]) -> str:
    """The lead picture as a figure: embedded, or a link to the original."""
    return (
        templates()
        .get_template("epub/figure.xhtml.j2")
        .render(image=image, picture=pictures.get(image.url), labels=labels)
    )


def _local_body(body: str, pictures: Mapping[str, Picture], labels: dict[str, str]) -> str:
    """The body with pictures pointing into the book; a missing one becomes a link."""
    root = parse_fragment(body)
    for img in list(root.iter("img")):
        url = img.get("src") or ""
        picture = pictures.get(url)
        if picture is not None:
            img.set("src", f"images/{picture.name}")
            continue
        link = img.makeelement("a", {"href": url, "class": "missing-picture"})
        link.text = labels["picture"]
        link.tail = img.tail
        img.getparent().replace(img, link)
    return inner_html(root)


def write_epub(digest: Digest, pictures: Mapping[str, Picture], options: EpubOptions) -> bytes:
    """The digest as EPUB 3 bytes."""
    if not digest.articles:
        raise ValueError("a digest needs at least one article")
    labels = labels_for(digest.language)
    book = epub.EpubBook()
    book.set_identifier(digest.identifier)
    book.set_title(f"{digest.name} · {digest.label}")
    book.set_language(digest.language)
    _add_people(book, digest.articles)
    book.add_metadata("DC", "date", digest.end.isoformat())
    book.add_metadata("DC", "publisher", digest.name)
    book.set_cover("cover.jpg", render_cover(digest, options.font_path), create_page=True)

    styles = [_stylesheet(book, "style.css")]
    if options.vertical:
        styles.append(_stylesheet(book, "vertical.css"))
        book.set_direction("rtl")
    for picture in sorted({p.name: p for p in pictures.values()}.values(), key=lambda p: p.name):
        book.add_item(
            epub.EpubImage(
                uid=f"img-{picture.name.split('.')[0]}",
                file_name=f"images/{picture.name}",
                media_type=picture.media_type,
                content=picture.data,
            )
        )

    chapters = [
        _chapter(book, number, article, pictures, labels, styles)
        for number, article in enumerate(digest.articles, 1)
    ]
    days = _outline(digest, chapters)
    contents = epub.EpubHtml(
        uid="contents", file_name="contents.xhtml", title=labels["contents"], lang=digest.language
    )
    contents.content = (
        templates()
        .get_template("epub/contents.xhtml.j2")
        .render(digest=digest, days=days, labels=labels)
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
    out = io.BytesIO()
    modified = digest.modified.astimezone(UTC).replace(tzinfo=None)
    epub.write_epub(out, book, {"mtime": modified, "raise_exceptions": True})
    return _reproducible(out.getvalue())


def _stylesheet(book: epub.EpubBook, name: str) -> Any:
    style = epub.EpubItem(
        uid=name.replace(".", "-"),
        file_name=f"styles/{name}",
        media_type="text/css",
        content=(resource_path("templates") / "epub" / name).read_bytes(),
    )
    book.add_item(style)
    return style


def _chapter(
    book: epub.EpubBook,
    number: int,
    article: Article,
    pictures: Mapping[str, Picture],
    labels: dict[str, str],
    styles: list[Any],
) -> Any:
    published = article.published
    chapter = epub.EpubHtml(
        uid=f"a{number:04d}",
        file_name=f"a{number:04d}.xhtml",
        title=article.title,
        lang=article.language,
    )
    chapter.content = (
        templates()
        .get_template("epub/chapter.xhtml.j2")
        .render(
            article=article,
            cjk=article.language.startswith("zh"),
            published=_time_text(published, article.language) if published else "",
            published_iso=published.isoformat() if published else "",
            lead=_figure_html(article.lead_image, pictures, labels) if article.lead_image else "",
            body=_local_body(article.body, pictures, labels),
            english=[k for k in article.links if k.rel == "alternate" and k.language == "en"],
            labels=labels,
        )
    )
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


def _reproducible(data: bytes) -> bytes:
    """The same zip with fixed entry times: `mimetype` first and stored, text deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            # mimetype must be stored; pictures are compressed already, deflating them
            # again costs time for a fraction of a percent.
            stored = entry.filename == "mimetype" or entry.filename.startswith("EPUB/images/")
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            target.writestr(info, source.read(entry.filename), compresslevel=None if stored else 9)
    return out.getvalue()
