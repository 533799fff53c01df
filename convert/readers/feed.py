"""RSS 0.9x/1.0/2.0 and Atom through feedparser, and JSON Feed 1.1, into Articles.

feedparser only ever sees bytes we read and checked ourselves: no DOCTYPE
internal subset, no `<!ENTITY`, no character reference XML cannot carry, at most
MAX_TAGS tags, decoded as the feedx reader decodes, re-encoded as UTF-8 (its own
guess turns GB18030 into mojibake). Its sanitizer is off, so that feedx's `pudate`
survives; nh3 cleans later, as for every article. At most MAX_ITEMS items are read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import datetime
from typing import Any

from convert.errors import ConvertError
from convert.fragments import parse_fragment, text_of
from convert.model import Channel
from convert.readers.dates import feed_date
from convert.readers.encoding import decode
from convert.readers.extract import article_from_html, looks_like_feedx_html
from convert.readers.options import ReadOptions
from convert.readers.result import Parsed, Read
from convert.text import escape_url_characters, plain_text, remove_invalid_xml
from convert.urls import is_web_url

log = logging.getLogger(__name__)

# The root element, or a DOCTYPE naming it (a large internal subset can push the root
# itself past the first kilobytes; it is refused either way).
# The root element, also under a prefix of its own (`<r:rss xmlns:r=…>`, `<atom:feed>`).
_XML_FEED = re.compile(
    r"<(?:[A-Za-z_][\w.-]*:)?(rss|feed|RDF)[\s/>]|<!DOCTYPE\s+(rss|feed|rdf:RDF)\b", re.I
)
_ENTITY_TRICKS = re.compile(r"<!ENTITY|<!DOCTYPE[^>]*\[", re.I)
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
JSON_FEED_VERSION = "https://jsonfeed.org/version/"
MAX_ITEMS = 1_000
"""Items read from one feed; the rest are left out, with a warning."""
MAX_TAGS = 100_000
"""Tags outside CDATA in one XML feed: feedparser takes about 40 µs for each."""
_CDATA = re.compile(r"<!\[CDATA\[.*?(?:\]\]>|\Z)", re.S)
# The element that holds a feed's own metadata: RSS's and RDF's channel, Atom's feed.
_CHANNEL = re.compile(r"<(?:\w+:)?(?:channel|feed)[\s/>]", re.I)


def looks_like_xml_feed(head: str) -> bool:
    """True for RSS, RDF or Atom: the root element shows in the first kilobytes."""
    return bool(_XML_FEED.search(head)) and not head.lstrip().lower().startswith("<!doctype html")


def looks_like_json_feed(head: str) -> bool:
    """True for a JSON Feed: a JSON object naming the jsonfeed.org version."""
    return head.lstrip().startswith("{") and JSON_FEED_VERSION in head


def refuse_entity_declarations(text: str, where: str) -> None:
    """Entity declarations are how XML bombs and external entities start: refuse them."""
    if _ENTITY_TRICKS.search(text):
        raise ConvertError(where, "refused: the document declares entities (DOCTYPE subset)")


def read_xml_feed(data: bytes, where: str, options: ReadOptions) -> Read:
    """Read an RSS or Atom feed."""
    # `&#0;` and `&#xD800;` stop the strict parser and crash the lenient one: drop them.
    text = remove_invalid_xml(decode(data, where))
    refuse_entity_declarations(text, where)
    tags = _CDATA.sub("", text).count("<")
    if tags > MAX_TAGS:
        raise ConvertError(where, f"refused: {tags:,} tags, more than the {MAX_TAGS:,} of any feed")
    text = _XML_DECLARATION.sub('<?xml version="1.0" encoding="utf-8"?>', text, count=1)
    # Imported here: a run over article dumps alone never loads it (0.03 s of start-up).
    import feedparser  # noqa: PLC0415

    parsed = feedparser.parse(
        text.encode("utf-8"),
        sanitize_html=False,
        resolve_relative_uris=False,
        response_headers={"content-type": "application/xml; charset=utf-8"},
    )
    problem = parsed.get("bozo_exception")
    if isinstance(problem, feedparser.CharacterEncodingOverride):
        raise ConvertError(where, "the feed's declared encoding does not match its bytes")
    # A feed without items or title is still a feed when feedparser knows its kind and
    # it has its channel (a reader shows it, empty); without that, it is not one.
    empty = not parsed.entries and not parsed.feed.get("title")
    if empty and not (parsed.get("version") and _CHANNEL.search(text)):
        reason = f": {problem}" if problem else ""
        raise ConvertError(where, f"not a readable feed{reason}".replace("\n", " "))
    if problem:
        log.warning(
            "%s: not well-formed XML, read leniently: %s", where, str(problem).replace("\n", " ")
        )
    info = parsed.feed
    entries = _first_items(parsed.entries, where)
    channel = Channel(
        title=_plain(info.get("title", ""), info.get("title_detail")),
        link=_web_url(info.get("link", "")),
        description=_plain(info.get("subtitle", ""), info.get("subtitle_detail")),
        language=info.get("language", "") or "",
        updated=feed_date(info.get("updated", "")),
    )
    articles = []
    for number, entry in enumerate(entries, 1):
        content = entry.get("content") or []
        html = content[0].get("value", "") if content else entry.get("summary", "")
        summary = entry.get("summary", "") if content else ""
        article = _article(
            where=f"{where} item {number}",
            title=_plain(entry.get("title", ""), entry.get("title_detail")),
            url=_web_url(entry.get("link", "")) or _permalink_guid(entry),
            guid=_guid(str(entry.get("id", ""))),
            html=html or "",
            summary=plain_text(text_of(parse_fragment(summary))) if summary else "",
            date=feed_date(
                entry.get("published") or entry.get("updated") or "", f"{where} item {number}"
            ),
            author=entry.get("author", "") or "",
            tags=tuple(t.get("term", "") for t in entry.get("tags", []) if t.get("term")),
            options=options,
        )
        if article is not None:
            articles.append(article)
    return Read(items=tuple(articles), channel=channel)


def read_json_feed(data: bytes, where: str, options: ReadOptions) -> Read:
    """Read a JSON Feed (1.0 or 1.1)."""
    try:
        document = json.loads(decode(data, where))
    except json.JSONDecodeError as error:
        raise ConvertError(where, f"not valid JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("items", []), list):
        raise ConvertError(where, "not a JSON Feed: expected an object with an items list")
    channel = Channel(
        title=plain_text(str(document.get("title", ""))),
        link=_web_url(str(document.get("home_page_url", ""))),
        description=plain_text(str(document.get("description", ""))),
        language=str(document.get("language", "")),
        self_url=_web_url(str(document.get("feed_url", ""))),
    )
    articles = []
    for number, item in enumerate(_first_items(document.get("items", []), where), 1):
        if not isinstance(item, dict):
            log.warning("%s item %d: not an object; skipped", where, number)
            continue
        authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
        names = [str(a.get("name", "")) for a in authors if isinstance(a, dict)]
        html = item.get("content_html")
        if not html and item.get("content_text"):
            html = "".join(f"<p>{_escape(p)}</p>" for p in str(item["content_text"]).split("\n\n"))
        article = _article(
            where=f"{where} item {number}",
            title=plain_text(str(item.get("title", ""))),
            url=_web_url(str(item.get("url", ""))),
            guid=_guid(str(item.get("id", ""))),
            html=str(html or ""),
            summary=plain_text(str(item.get("summary", ""))),
            date=feed_date(
                str(item.get("date_published") or item.get("date_modified") or ""),
                f"{where} item {number}",
            ),
            author=", ".join(n for n in names if n),
            tags=tuple(str(t) for t in item.get("tags", []) if isinstance(t, str)),
            options=options,
        )
        if article is not None:
            articles.append(article)
    return Read(items=tuple(articles), channel=channel)


def _first_items(items: list[Any], where: str) -> list[Any]:
    """At most MAX_ITEMS items; a warning when there are none, or more."""
    if not items:
        log.warning("%s: the feed has no items", where)
    elif len(items) > MAX_ITEMS:
        log.warning(
            "%s: %d items beyond the first %d left out", where, len(items) - MAX_ITEMS, MAX_ITEMS
        )
    return items[:MAX_ITEMS]


def _article(
    *,
    where: str,
    title: str,
    url: str,
    html: str,
    summary: str,
    date: datetime | None,
    author: str,
    tags: tuple[str, ...],
    options: ReadOptions,
    guid: str = "",
) -> Parsed | None:
    """One item as an Article; None (with a warning) when it has neither title nor text."""
    if not title and not plain_text(text_of(parse_fragment(html))):
        log.warning("%s: no title and no content; skipped", where)
        return None
    # A feedx item's date is the mirror's capture time; its <time pudate> is the
    # publication. Any other feed's item date is the publication.
    feedx = looks_like_feedx_html(html)
    try:
        parsed = article_from_html(
            html,
            title=title,
            url=url,
            captured=date if feedx else None,
            where=where,
            options=options,
            allow_empty=True,
        )
    except ConvertError as error:
        log.warning("%s; skipped", error)
        return None
    article = parsed.article
    zone = options.sites.publication(article.source_host).zone
    changes: dict[str, Any] = {"tags": tags, "summary": summary, "guid": guid}
    if article.published is None and date is not None:
        changes["published"] = date.astimezone(zone)
    if not article.authors and author:
        changes["authors"] = tuple(a.strip() for a in author.split(",") if a.strip())
    return Parsed(dataclasses.replace(article, **changes), parsed.body)


def _plain(value: str, detail: Any) -> str:
    """A title or subtitle as plain text; feedparser says when it holds markup."""
    kind = (detail or {}).get("type", "text/plain")
    if kind in ("text/html", "application/xhtml+xml"):
        value = text_of(parse_fragment(value))
    return plain_text(value)


def _web_url(url: str) -> str:
    url = escape_url_characters(url)
    return url if is_web_url(url) else ""


# A URI of a scheme that names things (an Atom id must be a URI; other guids, and a
# `javascript:` or `data:` one, are not kept: the item gets an id of its own).
_URI = re.compile(r"^(?:https?|urn|tag):\S+$", re.I)


def _guid(value: str) -> str:
    """An entry's id, when it is a URI that may stand as a guid and an Atom id."""
    value = value.strip()
    return value if _URI.match(value) and len(value) <= 2048 else ""


def _permalink_guid(entry: Any) -> str:
    guid = str(entry.get("id", ""))
    return guid if entry.get("guidislink") and is_web_url(guid) else ""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
