"""Any HTML file, from a saved article page to a bare fragment, as one Article.

Metadata comes from Open Graph and `article:` meta tags, `<title>` and `<time>`;
the body from `<article>`, else `<main>`, else `<body>`. The body then goes
through the same extraction as feedx's HTML, so a saved feedx page keeps its
byline, pudate, figures and credits.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import PurePath
from typing import Any

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
from convert.readers.extract import article_from_html
from convert.readers.options import ReadOptions
from convert.readers.result import Parsed, Read
from convert.text import escape_url_characters, plain_text
from convert.urls import is_web_url

log = logging.getLogger(__name__)

_HTML = re.compile(
    r"<(!doctype\s+html|html|head|body|article|main|p|div|section|h[1-6])[\s>]", re.I
)
_PARSER = lxml.html.HTMLParser(
    huge_tree=True, remove_comments=True, remove_pis=True, no_network=True
)
# Page furniture that is never the article, dropped when the body is all we have.
_FURNITURE = ("nav", "header", "aside", "script", "style", "noscript", "form")


def looks_like_html(head: str) -> bool:
    """True when the text has an HTML tag in its first kilobytes."""
    return bool(_HTML.search(head))


def read_html(data: bytes, where: str, options: ReadOptions) -> Read:
    """Read one HTML page or fragment."""
    text = re.sub(r"\A\s*<\?xml[^>]*\?>", "", decode(data, where))
    text, unclosed = close_open_comment(text)
    if unclosed:
        log.warning("%s: unclosed comment ('<!--' without '-->'); the text after it is kept", where)
    document = _parse(text, where)
    if depth_of(document) > MAX_DEPTH + 10:
        # libxml2 stops at about 2,000 levels, dropping the rest: cut the tags first.
        document = _parse(cut_deep_tags(text), where)
        log.warning("%s: nesting deeper than %d levels flattened (no text lost)", where, MAX_DEPTH)
    meta = _meta(document)
    candidates = (meta.get("og:url", ""), _canonical(document))
    url = next((u for u in map(escape_url_characters, candidates) if is_web_url(u)), "")
    title = plain_text(meta.get("og:title", "") or _first_text(document, "title", "h1", "h2"))
    if not title:
        title = PurePath(where).stem
        log.warning("%s: no title in the page; using the file name", where)
    body = _body(document)
    for heading in list(body.iter("h1")):
        if plain_text(text_of(heading)) == title:
            heading.drop_tree()  # the writers show the title themselves
    parsed = article_from_html(
        inner_html(body), title=title, url=url, captured=None, where=where, options=options
    )
    article = parsed.article
    site = options.sites.publication(article.source_host)
    changes: dict[str, Any] = {}
    published = meta.get("article:published_time", "")
    if article.published is None and published:
        changes["published"] = local_time(published, site.zone, where, "article:published_time")
    author = meta.get("article:author", "") or meta.get("author", "")
    if not article.authors and author and not is_web_url(author):
        changes["authors"] = (plain_text(author),)
    if meta.get("og:description") or meta.get("description"):
        changes["summary"] = plain_text(meta.get("og:description") or meta.get("description", ""))
    if meta.get("og:site_name") and not options.sites.rules(article.source_host).name:
        changes["source_name"] = plain_text(meta["og:site_name"])
    if article.lead_image is None and is_web_url(meta.get("og:image", "")):
        lead = Image(url=meta["og:image"], caption=plain_text(meta.get("og:image:alt", "")))
        if all(image.url != lead.url for image in article.images):
            changes["lead_image"] = lead
            changes["images"] = (lead, *article.images)
    tags = tuple(plain_text(t) for t in meta.get("article:tag", "").split("\x1f") if t.strip())
    if tags:
        changes["tags"] = tags
    return Read(items=(Parsed(dataclasses.replace(article, **changes), parsed.body),))


def _parse(text: str, where: str) -> HtmlElement:
    try:
        return lxml.html.document_fromstring(text, parser=_PARSER)
    except (lxml.etree.ParserError, ValueError) as error:
        raise ConvertError(where, f"not readable HTML: {error}") from None


def _meta(document: HtmlElement) -> dict[str, str]:
    """`<meta property|name=... content=...>`, lower-case keys; repeated tags joined by US."""
    found: dict[str, str] = {}
    for element in document.iter("meta"):
        key = (element.get("property") or element.get("name") or "").strip().lower()
        value = (element.get("content") or "").strip()
        if key and value:
            found[key] = f"{found[key]}\x1f{value}" if key in found else value
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
