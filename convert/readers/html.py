"""Any HTML file, from a saved article page to a bare fragment, as one Article.

Metadata comes from Open Graph and `article:` meta tags, `<title>` and `<time>`. The
body of a whole page is its main content as trafilatura finds it (furniture gone),
unless the page has feedx's shape or its site has rules of its own; else, and for a
fragment, `<article>`, else `<main>`, else `<body>`. The body then goes through the
same extraction as feedx's HTML, so a saved feedx page keeps its byline, pudate,
figures and credits. A server's error page is no article.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import PurePath
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml.html import HtmlElement

from convert.errors import ConvertError
from convert.fragments import (
    MAX_DEPTH,
    close_open_comment,
    cut_deep_tags,
    depth_of,
    inner_html,
    text_of,
)
from convert.model import Image
from convert.readers.dates import local_time
from convert.readers.encoding import decode
from convert.readers.extract import article_from_html, looks_like_feedx_html
from convert.readers.options import ReadOptions
from convert.readers.result import Parsed, Read
from convert.text import escape_url_characters, has_text, plain_text
from convert.urls import host_of, is_web_url

log = logging.getLogger(__name__)

# The tags an HTML document or fragment starts with: a file beginning with `<a href=…>`,
# a list, a table or a picture is HTML too. Only its start counts: a Markdown or text
# file that mentions `<h2>` further on is not HTML (a `.html` name still makes it so).
_HTML = re.compile(
    r"\A\ufeff?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*"
    r"<(!doctype\s+html|html|head|body|article|main|p|div|section|h[1-6]|a|abbr|b|big"
    r"|blockquote|br|center|cite|code|dd|del|dfn|dl|dt|em|figure|font|hr|i|img|ins|kbd"
    r"|li|mark|ol|pre|q|s|samp|small|span|strike|strong|sub|sup|table|tbody|td|th"
    r"|thead|tr|tt|u|ul|var|meta|title|link|style|script|header|nav|aside|footer)[\s/>]",
    re.I | re.S,
)
# What makes a file a whole page, not a fragment of one.
_WHOLE_PAGE = re.compile(r"<(!doctype\s+html|html|head|body)[\s>]", re.I)
_PARSER = lxml.html.HTMLParser(
    huge_tree=True, remove_comments=True, remove_pis=True, no_network=True
)
# Page furniture that is never the article, dropped when the body is all we have.
_FURNITURE = ("nav", "header", "aside", "script", "style", "noscript", "form")


def looks_like_html(head: str) -> bool:
    """True when the text begins with an HTML tag (after comments and declarations)."""
    return bool(_HTML.match(head))


HTML_ENDINGS = (".html", ".htm", ".xhtml")
"""File endings that make a file HTML whatever it holds (plain text is a paragraph then)."""


def read_html(data: bytes, where: str, options: ReadOptions) -> Read:
    """Read one HTML page or fragment (an error page is no article: nothing is read)."""
    text = re.sub(r"\A\s*<\?xml[^>]*\?>", "", decode(data, where))
    text, unclosed = close_open_comment(text)
    if unclosed:
        log.warning("%s: unclosed comment ('<!--' without '-->'); the text after it is kept", where)
    document = _parse(text, where)
    if depth_of(document) > MAX_DEPTH + 10:
        # libxml2 stops at about 2,000 levels, dropping the rest: cut the tags first.
        text = cut_deep_tags(text)
        document = _parse(text, where)
        log.warning("%s: nesting deeper than %d levels flattened (no text lost)", where, MAX_DEPTH)
    metas = _meta(document)
    meta = {key: values[0] for key, values in metas.items()}  # the first of each
    candidates = (meta.get("og:url", ""), _canonical(document))
    url = next((u for u in map(escape_url_characters, candidates) if is_web_url(u)), "")
    base = _base(document, url)
    if base:
        # Relative links and pictures resolved against <base> or the page's own address;
        # without either they are kept as written.
        document.make_links_absolute(base, resolve_base_href=False, handle_failures="ignore")
    for element in list(document.iter("base")):  # decided: no later step may use it
        element.drop_tree()
    title = plain_text(meta.get("og:title", "") or _first_text(document, "title", "h1", "h2"))
    if _is_error_page(document, title):
        _say_error_page(where, title)
        return Read()
    if not title:
        title = PurePath(where).stem
        log.warning("%s: no title in the page; using the file name", where)
    lead, body, only_its_title = _content(document, text, url, title, options)
    parsed = article_from_html(
        inner_html(body),
        title=title,
        url=url,
        captured=None,
        where=where,
        options=options,
        allow_empty=True,  # a page of furniture alone is left out later, with a warning
    )
    article = parsed.article
    site = options.sites.publication(article.source_host)
    changes: dict[str, Any] = {}
    published = meta.get("article:published_time", "") or _time_in(document)
    if article.published is None and published:
        changes["published"] = local_time(published, site.zone, where, "article:published_time")
    authors = tuple(
        plain_text(a)
        for a in metas.get("article:author") or metas.get("author") or ()
        if not is_web_url(a)  # a profile page's address, not a name
    )
    if not article.authors and authors:
        changes["authors"] = authors
    if meta.get("og:description") or meta.get("description"):
        changes["summary"] = plain_text(meta.get("og:description") or meta.get("description", ""))
    if meta.get("og:site_name") and not options.sites.rules(article.source_host).name:
        changes["source_name"] = plain_text(meta["og:site_name"])
    if article.lead_image is None:
        og_image = meta.get("og:image", "")
        if lead is None and is_web_url(og_image):
            lead = Image(url=og_image, caption=plain_text(meta.get("og:image:alt", "")))
        if lead is not None and not any(_same_picture(i.url, lead.url) for i in article.images):
            changes["lead_image"] = lead
            changes["images"] = (lead, *article.images)
    tags = tuple(plain_text(t) for t in metas.get("article:tag", ()))
    if tags:
        changes["tags"] = tags
    article = dataclasses.replace(article, **changes)
    return Read(items=(Parsed(article, parsed.body, only_its_title),))


def _content(
    document: HtmlElement, text: str, url: str, title: str, options: ReadOptions
) -> tuple[Image | None, HtmlElement, bool]:
    """The lead picture (a figure before the text), the body holding the article, and
    whether that body was nothing but the heading that gives the title.

    A whole page that is neither feedx's shape nor a site with rules of its own goes
    to trafilatura, which finds the main content among the page's furniture; a
    fragment, a feedx page, or a page trafilatura finds nothing in keeps its own
    `<article>`, `<main>` or `<body>`.
    """
    own = _body(document)
    rules = options.sites.rules(host_of(url))
    whole_page = bool(_WHOLE_PAGE.search(text[:4096]))
    if not whole_page or looks_like_feedx_html(text) or rules.keep_only or rules.remove:
        return None, own, _drop_title_heading(own, title)
    lead = _lead_figure(own)
    # The page as read here (links resolved, <base> gone), not the text as it came.
    main = _main_content(lxml.html.tostring(document, encoding="unicode"), url)
    if main is None:
        return None, own, _drop_title_heading(own, title)
    if lead is not None:
        for img in list(main.iter("img")):  # the hero again, without its caption
            if _same_picture(img.get("src") or "", lead.url):
                img.drop_tree()
    only_its_title = _drop_title_heading(main, title)
    _drop_leading_furniture(main)
    return lead, main, only_its_title


# trafilatura's own MIN_EXTRACTED_SIZE.
_MAIN_CONTENT_CHARS = 250


def _main_content(text: str, url: str) -> HtmlElement | None:
    """The page's main content as trafilatura extracts it, or None when it finds none."""
    import trafilatura  # noqa: PLC0415 - half a second to import; pages only

    try:
        extracted = _extract(trafilatura, text, url)
    except Exception as error:  # its own bugs on odd markup (a KeyError on `rend`, …)
        log.info(
            "main content not found (%s: %s); the page is read as it is",
            type(error).__name__,
            error,
        )
        return None
    if not extracted:
        return None
    body = _parse(extracted, "trafilatura").find("body")
    # Below this, trafilatura falls back to all of the page's text (menus included):
    # a short page is better read as it is.
    if body is None or len(plain_text(text_of(body))) < _MAIN_CONTENT_CHARS:
        return None
    return body


def _extract(trafilatura: Any, text: str, url: str) -> str | None:
    """trafilatura's main content of the page, as HTML."""
    extracted = trafilatura.extract(
        text,
        url=url or None,
        output_format="html",
        include_images=True,
        include_links=True,
        include_tables=True,
        include_comments=False,
        include_formatting=True,
        deduplicate=False,
    )
    return extracted if isinstance(extracted, str) else None


def _lead_figure(body: HtmlElement) -> Image | None:
    """The first `<figure>` before any paragraph of text, with its caption and credit."""
    for element in body.iter("figure", "p"):
        if element.tag == "p":
            if _is_text(element):
                return None
            continue
        img = next(element.iter("img"), None)
        src = (img.get("src") or "").strip() if img is not None else ""
        if not is_web_url(src):
            return None
        caption, credit = "", ""
        figcaption = next(element.iter("figcaption"), None)
        if figcaption is not None:
            credits = [
                el
                for el in figcaption.iter()
                if el.tag == "cite" or "credit" in (el.get("class") or "").lower()
            ]
            credit = plain_text(" ".join(text_of(el) for el in credits))
            for el in credits:
                el.drop_tree()
            caption = plain_text(text_of(figcaption))
        alt = plain_text(img.get("alt") or "") if img is not None else ""
        return Image(url=src, caption=caption, credit=credit, alt=alt)
    return None


def _is_text(paragraph: HtmlElement) -> bool:
    """A paragraph of the article's text: not empty, not only links, not a byline."""
    words = plain_text(text_of(paragraph))
    linked = plain_text(" ".join(text_of(a) for a in paragraph.iter("a")))
    byline = bool(_BYLINE.match(words)) and len(words.split()) <= 6
    return bool(words) and words != linked and not byline


def _drop_title_heading(body: HtmlElement, title: str) -> bool:
    """The writers show the title themselves: the heading that gives it, before the text,
    goes (a later heading of the same words is the article's own). True when that
    heading was all the body held."""
    for element in body.iter("h1", "h2", "p"):
        if element.tag == "p":
            if _is_text(element):
                return False
            continue
        if plain_text(text_of(element)) == title:
            element.drop_tree()
            return not has_text(text_of(body)) and next(body.iter("img"), None) is None
    return False


# A byline the page prints before the text, when its author is in the metadata.
_BYLINE = re.compile(r"^\s*(by|von|par|por|文|作者)\b", re.I)


def _drop_leading_furniture(body: HtmlElement) -> None:
    """What stands before the first paragraph of text and is only links (a section's
    name), or a byline: the page's, not the article's."""
    for element in list(body):
        words = plain_text(text_of(element))
        if element.tag in ("p", "div", "ul") and words and not _is_text(element):
            element.drop_tree()
            continue
        if words or next(element.iter("img"), None) is not None:
            return


# Error pages: a status as their title (`403 Forbidden`, `404 Not Found`) or a server's.
_ERROR_TITLE = re.compile(
    r"^\s*(\d{3}\b|(page\s+)?not\s+found\b|forbidden\b|access\s+denied\b|bad\s+gateway\b"
    r"|service\s+(temporarily\s+)?unavailable\b|internal\s+server\s+error\b|nginx\b|"
    r"attention\s+required|just\s+a\s+moment)",
    re.I,
)


def _say_error_page(where: str, title: str) -> None:
    """A saved error page is a warning; one a server sent under a 200 an error."""
    if is_web_url(where):
        # The server has failed this source (a feed or an article was asked for): an
        # error, so that the run says so and its exit code too.
        raise ConvertError(where, f"the server sent an error page ({title[:60]!r})")
    log.warning("%s: an error page (%r), not an article; not published", where, title[:60])


def _is_error_page(document: HtmlElement, title: str) -> bool:
    """A server's error page: its title says so, and it has next to no text."""
    body = document.find("body")
    words = len(text_of(body).split()) if body is not None else 0
    return bool(_ERROR_TITLE.match(title)) and words < 60


def _base(document: HtmlElement, url: str) -> str:
    """What relative addresses are relative to: the page's own address, or its `<base>`
    when that is on the page's own site (a base elsewhere would send the page's links
    to another site); '' for a page that does not say where it lives."""
    if not url:
        return ""
    for element in document.iter("base"):
        href = escape_url_characters(element.get("href") or "")
        resolved = urljoin(url, href) if href else ""
        if is_web_url(resolved) and _same_site(host_of(resolved), host_of(url)):
            return resolved
    return url


def _same_site(one: str, other: str) -> bool:
    """The same host, `www.` aside, or one host under the other (`example.com` and
    `news.example.com`); two hosts side by side under a domain are two sites."""
    one, other = one.removeprefix("www."), other.removeprefix("www.")
    return one == other or one.endswith(f".{other}") or other.endswith(f".{one}")


def _time_in(document: HtmlElement) -> str:
    """The first `<time datetime>` of the page (its own publication, when it has one)."""
    for element in document.iter("time"):
        value = (element.get("datetime") or "").strip()
        if value:
            return value
    return ""


# Sizes a CDN puts in a picture's name: `hero-1600.jpg` and `hero-1200.jpg` are one.
_SIZE_TOKEN = re.compile(
    r"[-_.@](\d{2,4}(w|px|x\d{2,4})?|\d?x|master\d*|large|medium|small|thumb\w*)$", re.I
)


def _same_picture(one: str, other: str) -> bool:
    """True when two addresses are one picture at other sizes (the same path but for the
    query and a size in the file name)."""
    if one == other:
        return True

    def key(url: str) -> str:
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        folder, _, name = parts.path.rpartition("/")
        stem = name.rsplit(".", 1)[0]
        while (trimmed := _SIZE_TOKEN.sub("", stem)) != stem:
            stem = trimmed
        return f"{parts.netloc.lower()}{folder}/{stem}"

    return key(one) == key(other)


def _parse(text: str, where: str) -> HtmlElement:
    try:
        return lxml.html.document_fromstring(text, parser=_PARSER)
    except (lxml.etree.ParserError, ValueError) as error:
        raise ConvertError(where, f"not readable HTML: {error}") from None


def _meta(document: HtmlElement) -> dict[str, tuple[str, ...]]:
    """`<meta property|name=... content=...>`: every value of each (lower-case) key, in
    the page's order (a page may name several authors, tags or pictures)."""
    found: dict[str, tuple[str, ...]] = {}
    for element in document.iter("meta"):
        key = (element.get("property") or element.get("name") or "").strip().lower()
        value = (element.get("content") or "").strip()
        if key and value:
            found[key] = (*found.get(key, ()), value)
    return found


def _canonical(document: HtmlElement) -> str:
    for link in document.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split():
            return (link.get("href") or "").strip()
    return ""


def _first_text(document: HtmlElement, *tags: str) -> str:
    for tag in tags:
        for element in document.iter(tag):
            text = text_of(element).strip()
            if text:
                return text
    return ""


def _body(document: HtmlElement) -> HtmlElement:
    """`<article>`, else `<main>`, else `<body>` without its furniture."""
    for tag in ("article", "main"):
        found = next(document.iter(tag), None)
        if found is not None:
            return found
    body = document.find("body")
    if body is None:  # a head alone, or a frameset: no article (the head is no body)
        return lxml.html.Element("body")
    for element in list(body.iter(*_FURNITURE)):
        element.drop_tree()
    return body
