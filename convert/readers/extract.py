"""feedx-shaped HTML into an Article: byline, pudate, figures, body, footer credits.

feedx's article HTML (in a dump, in a feed item, in a saved page) has `<address>` for
the author, `<time pudate>` (or `<time datetime>`) for the publication, `<figure>` and
`<p><img><small>` pictures, and a `<footer>` of credits and the English-version link.
HTML of another shape comes through as its body.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, tzinfo

import lxml.html
from lxml.html import HtmlElement

from convert.errors import ConvertError
from convert.fragments import MAX_DEPTH, close_open_comment, inner_html, parse_shallow, text_of
from convert.identity import text_id
from convert.model import Article, Contributor, Image, Link
from convert.readers.dates import local_time
from convert.readers.language import detect_language
from convert.readers.options import ReadOptions
from convert.readers.result import Parsed
from convert.text import escape_url_characters, has_text, plain_text
from convert.urls import host_of, is_web_url

log = logging.getLogger(__name__)


def looks_like_feedx_html(html: str) -> bool:
    """True when HTML has feedx's article shape (its pudate stamp or its promotion)."""
    return "pudate=" in html or "获取更多RSS" in html or "獲取更多RSS" in html


def article_from_html(
    html: str,
    *,
    title: str,
    url: str,
    captured: datetime | None,
    where: str,
    options: ReadOptions,
    allow_empty: bool = False,
) -> Parsed:
    """Build an Article from feedx-shaped HTML: byline, pudate, figures, body, footer.

    HTML of another shape comes through as its body. An article with no text and no
    picture is an error unless `allow_empty` (a feed item may be its title alone).
    """
    url = escape_url_characters(url)
    if url and not is_web_url(url):
        raise ConvertError(where, f"the article URL is not an http(s) address: {url[:80]!r}")
    if not url:
        log.warning("%s: the article has no URL", where)
    host = host_of(url)
    site = options.sites.publication(host)
    html, unclosed = close_open_comment(html)
    if unclosed:
        log.warning("%s: unclosed comment ('<!--' without '-->'); the text after it is kept", where)
    root, flattened = parse_shallow(html)
    if flattened:
        log.warning("%s: nesting deeper than %d levels flattened (no text lost)", where, MAX_DEPTH)

    _resolve_lazy_images(root)
    authors = _take_authors(root)
    published = _take_published(root, site.zone, where)
    lead_image = _take_lead_figure(root)
    footer = _take_footer(root)
    images = _normalize_body_figures(root)

    body = inner_html(root)
    raw_text = text_of(root)
    if not has_text(raw_text) and not images and not lead_image and not allow_empty:
        raise ConvertError(where, "the article body has no text")
    title = plain_text(title)
    if not title:
        # A picture alone has no words: then the address, so that no title is empty.
        body_text = plain_text(raw_text)
        title = body_text[:40] or url or "untitled"
        instead = "its first words" if body_text else "its address" if url else "'untitled'"
        log.warning("%s: the article has no title; using %s", where, instead)

    if published and captured and published - captured > timedelta(minutes=10):
        log.warning(
            "%s: published %s is after the capture time %s; is the time zone of %s right? "
            "(config: sites.%s.timezone)",
            where,
            published.isoformat(),
            captured.isoformat(),
            host or "this site",
            host,
        )
    translator, contributors, credits, links = footer
    identity = options.identity
    canonical = identity.canonical_url(url) if url else ""
    article = Article(
        # Without an address, the text identifies the article (tidied: white space alone
        # does not make another article).
        id=identity.article_id(canonical) if canonical else text_id(title + plain_text(raw_text)),
        title=title,
        url=url,
        canonical_url=canonical,
        language=site.language or detect_language(url, title + raw_text),
        source_name=site.name,
        source_host=host,
        body=body,
        authors=authors,
        translator=translator,
        contributors=contributors,
        published=published,
        captured=captured,
        lead_image=lead_image,
        images=((lead_image,) if lead_image else ()) + images,
        credits=credits,
        links=links,
    )
    return Parsed(article, root)


# --- byline and date ------------------------------------------------------------------

_AUTHOR_SPLIT = re.compile(r"\s*(?:[,，、/]|\band\b|&)\s*")


def _take_authors(root: HtmlElement) -> tuple[str, ...]:
    authors: list[str] = []
    for address in root.iter("address"):
        for name in _AUTHOR_SPLIT.split(plain_text(text_of(address))):
            if name and name not in authors:
                authors.append(name)
    for address in list(root.iter("address")):
        address.drop_tree()
    return tuple(authors)


def _take_published(root: HtmlElement, zone: tzinfo, where: str) -> datetime | None:
    published = None
    for time in list(root.iter("time")):
        raw = (time.get("pudate") or time.get("datetime") or "").strip()
        if published is None and raw:
            published = local_time(raw, zone, where)
        time.drop_tree()
    return published


# --- pictures -------------------------------------------------------------------------

# Where lazy-loading pages keep a picture's real address while `src` holds a placeholder.
_LAZY_SOURCES = (
    "data-src",
    "data-original",
    "data-lazy-src",
    "data-actualsrc",
    "data-hi-res-src",
    "data-url",
)
_LAZY_SRCSETS = ("data-srcset", "srcset")
# A `src` that is only there until the real picture is loaded.
_PLACEHOLDER = re.compile(
    r"^\s*(data:|about:|$)"
    r"|(^|/)(blank|spacer|lazy|lazyload|loading|placeholder|transparent|pixel|grey|gray|1x1)"
    r"\.(gif|png|svg|jpe?g|webp)(\?.*)?$",
    re.I,
)


def _resolve_lazy_images(root: HtmlElement) -> None:
    """Every lazy picture at its real address, once; placeholders and copies gone.

    A lazy `<img>` keeps its address in `data-src` (or `data-original`, …) or in a
    srcset, its largest candidate taken; its `<noscript>` copy (for pages without
    scripts) gives the address when nothing else does, and goes either way. An `<img>`
    with only a placeholder left is no picture.
    """
    for noscript in list(root.iter("noscript")):
        copy = next(noscript.iter("img"), None)
        before = noscript.getprevious()
        lazy = before if before is not None and before.tag == "img" else None
        if copy is not None and lazy is not None and not _real_source(lazy):
            lazy.set("data-src", (copy.get("src") or "").strip())
        noscript.drop_tree()
    for img in list(root.iter("img")):
        real = _real_source(img)
        if real:
            img.set("src", real)
        elif _PLACEHOLDER.search(img.get("src") or ""):
            # No picture: what it stood for stays as text.
            img.tail = (img.get("alt") or "") + (img.tail or "")
            img.drop_tree()
            continue
        for name in (*_LAZY_SOURCES, *_LAZY_SRCSETS):
            img.attrib.pop(name, None)


def _real_source(img: HtmlElement) -> str:
    """The address a lazy `<img>` loads, or '' when its `src` is the picture itself."""
    for name in _LAZY_SOURCES:
        value = (img.get(name) or "").strip()
        if value and not _PLACEHOLDER.search(value):
            return value
    if not _PLACEHOLDER.search(img.get("src") or ""):
        return ""
    for name in _LAZY_SRCSETS:
        largest = _largest_candidate(img.get(name) or "")
        if largest:
            return largest
    return ""


_CANDIDATE = re.compile(r"^\s*(\S+?)(?:\s+(\d+(?:\.\d+)?)[wx])?\s*$")


def _largest_candidate(srcset: str) -> str:
    """The address of a srcset's widest (or densest) candidate."""
    best, best_size = "", -1.0
    for candidate in srcset.split(","):
        match = _CANDIDATE.match(candidate)
        if match is None or _PLACEHOLDER.search(match.group(1)):
            continue
        size = float(match.group(2) or 1)
        if size > best_size:
            best, best_size = match.group(1), size
    return best


def _int_attribute(element: HtmlElement, name: str) -> int | None:
    value = (element.get(name) or "").strip()
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else None


def _image_from(img: HtmlElement, caption: str, credit: str) -> Image:
    return Image(
        url=(img.get("src") or "").strip(),
        caption=caption,
        credit=credit,
        alt=plain_text(img.get("alt") or ""),
        width=_int_attribute(img, "width"),
        height=_int_attribute(img, "height"),
    )


def _figure_parts(figure: HtmlElement) -> tuple[HtmlElement | None, str, str]:
    """The figure's img, its caption text and its `<cite>` credit."""
    img = next(figure.iter("img"), None)
    caption, credit = "", ""
    figcaption = next(figure.iter("figcaption"), None)
    if figcaption is not None:
        cites = list(figcaption.iter("cite"))
        credit = plain_text(" ".join(text_of(cite) for cite in cites))
        for cite in cites:
            cite.drop_tree()
        caption = plain_text(text_of(figcaption))
    return img, caption, credit


def _take_lead_figure(root: HtmlElement) -> Image | None:
    """The first `<figure>` before any paragraph of text is the lead picture."""
    for element in root.iter():
        if element.tag == "figure":
            img, caption, credit = _figure_parts(element)
            if img is None or not img.get("src"):
                return None
            image = _image_from(img, caption, credit)
            element.drop_tree()
            return image
        if element.tag == "p" and has_text(text_of(element)):
            return None
    return None


def _is_picture_paragraph(p: HtmlElement) -> bool:
    """`<p><img><small>caption</small></p>`: a picture with its caption, nothing else."""
    imgs = list(p.iter("img"))
    if len(imgs) != 1 or not (imgs[0].get("src") or "").strip():
        return False  # an <img> without src is no picture
    others = [el for el in p if el.tag not in ("img", "small", "br")]
    loose_text = (p.text or "") + "".join(el.tail or "" for el in p)
    return not others and not loose_text.strip()


def _normalize_body_figures(root: HtmlElement) -> tuple[Image, ...]:
    """Turn `<p><img><small>` into figures and collect every picture in reading order."""
    images: list[Image] = []
    for element in list(root.iter("p", "figure", "img")):
        if element.tag == "p" and next(element.iter("img"), None) is None:
            continue  # most paragraphs: text alone
        if not any(ancestor is root for ancestor in element.iterancestors()):
            continue  # inside a paragraph or figure replaced earlier in this loop
        if element.tag == "p" and _is_picture_paragraph(element):
            img = next(element.iter("img"))
            caption = plain_text(" ".join(text_of(s) for s in element.iter("small")))
            image = _image_from(img, caption, "")
        elif element.tag == "figure":
            if next(element.iter("img"), None) is None:
                # A figure of something else (a quote, a table, code): its content stays.
                element.drop_tag()
                continue
            img, caption, credit = _figure_parts(element)
            if img is None or not img.get("src"):
                element.drop_tree()  # a picture with nowhere to show it from
                continue
            image = _image_from(img, caption, credit)
        elif element.tag == "img" and element.get("src"):
            images.append(_image_from(element, plain_text(element.get("alt") or ""), ""))
            continue
        else:
            continue
        images.append(image)
        element.getparent().replace(element, _figure_element(image, element.tail))
    return tuple(images)


def _figure_element(image: Image, tail: str | None) -> HtmlElement:
    """`<figure><img><figcaption>caption <cite>credit</cite></figcaption></figure>`."""
    figure = lxml.html.Element("figure")
    img = lxml.html.Element("img", src=image.url, alt=image.alt or image.caption)
    if image.width and image.height:
        img.set("width", str(image.width))
        img.set("height", str(image.height))
    figure.append(img)
    if image.caption or image.credit:
        figcaption = lxml.html.Element("figcaption")
        figcaption.text = image.caption
        if image.credit:
            if image.caption:
                figcaption.text += " "
            cite = lxml.html.Element("cite")
            cite.text = image.credit
            figcaption.append(cite)
        figure.append(figcaption)
    figure.tail = tail
    return figure


# --- footer credits -------------------------------------------------------------------

_REPORTERS = re.compile(
    r"^(?P<names>.+?)\s*(?:对本文有报道贡献|對本文有報道貢獻|对本文亦有贡献|對本文亦有貢獻|"
    r"参与了报道|參與了報道|协助报道|協助報導)"
)
_TRANSLATOR = re.compile(r"^(?:翻译|翻譯)\s*[:：]\s*(?P<name>.+?)\s*$")
_NAME_SPLIT = re.compile(r"\s*(?:[,，、]|和|與|与|及|\band\b)\s*")
_ENGLISH_EDITION = re.compile(r"英文版|English", re.I)


def _take_footer(
    root: HtmlElement,
) -> tuple[str, tuple[Contributor, ...], tuple[str, ...], tuple[Link, ...]]:
    """Credits from `<footer>`: translator, contributors, credit lines and links."""
    translator = ""
    contributors: list[Contributor] = []
    credits: list[str] = []
    links: list[Link] = []
    for footer in list(root.iter("footer")):
        lines = list(footer.iter("p")) or [footer]
        for line in lines:
            for anchor in list(line.iter("a")):
                href = (anchor.get("href") or "").strip()
                label = plain_text(text_of(anchor))
                if is_web_url(href):
                    if _ENGLISH_EDITION.search(label):
                        links.append(Link(url=href, rel="alternate", title=label, language="en"))
                    else:
                        links.append(
                            Link(
                                url=href, rel="author" if "/by/" in href else "related", title=label
                            )
                        )
                anchor.drop_tree()
            text = plain_text(text_of(line))
            if not text:
                continue
            credits.append(text)
            if match := _REPORTERS.match(text):
                contributors.extend(
                    Contributor(name=name, role="reporter")
                    for name in _NAME_SPLIT.split(match.group("names"))
                    if name
                )
            elif match := _TRANSLATOR.match(text):
                translator = match.group("name")
                contributors.append(Contributor(name=translator, role="translator"))
        footer.drop_tree()
    return translator, tuple(contributors), tuple(credits), tuple(links)
