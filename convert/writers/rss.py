"""RSS 2.0 and Atom 1.0 through feedgen."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from convert import __version__
from convert.identity import item_id
from convert.model import Article, Feed, item_date
from convert.urls import as_uri, is_web_url
from convert.writers.html import article_html
from convert.writers.summary import article_summary

DC_NS = "http://purl.org/dc/elements/1.1/"
MEDIA_NS = "http://search.yahoo.com/mrss/"


# feedgen's own `dc` and `media` extensions, written the same way with only what an
# item uses: each is made anew for every entry, and the DC one keeps fifteen fields and
# looks up each of them by name when the item is written (a fifth of feedgen's time).
class _DcFeed(BaseExtension):  # type: ignore[misc]
    """The channel's part of Dublin Core: the `dc` prefix only."""

    def extend_ns(self) -> dict[str, str]:
        return {"dc": DC_NS}


class _DcCreator(BaseEntryExtension):  # type: ignore[misc]
    """An item's `<dc:creator>`: every author in one line (RSS only)."""

    def __init__(self) -> None:
        self.creator: str | None = None  # None: no element; "" still writes one

    def extend_rss(self, item: etree._Element) -> etree._Element:
        if self.creator is not None:
            etree.SubElement(item, f"{{{DC_NS}}}creator").text = self.creator
        return item


class _MediaFeed(BaseExtension):  # type: ignore[misc]
    """The channel's part of Media RSS: the `media` prefix only."""

    def extend_ns(self) -> dict[str, str]:
        return {"media": MEDIA_NS}


class _MediaLead(BaseEntryExtension):  # type: ignore[misc]
    """An item's lead picture: one `<media:content>`, right under the item.

    Not in a `<media:group>` as feedgen's extension writes it: a group is for
    alternatives of one thing, and the W3C validator refuses a group of one.
    """

    def __init__(self) -> None:
        self.url = ""

    def extend_atom(self, item: etree._Element) -> etree._Element:
        if self.url:
            etree.SubElement(item, f"{{{MEDIA_NS}}}content", url=self.url, medium="image")
        return item

    extend_rss = extend_atom


# `<` before a letter, `/`, `!` or `?`, and `&` before a name or `#`: what a reader that
# takes a text field for HTML (RSS never says which it is) would read as a tag or a
# reference. A word joiner after it (U+2060, invisible) keeps the text as it reads.
_MARKUP_LIKE = re.compile(r"([<&])(?=[A-Za-z/!?#])")


def _text(text: str) -> str:
    """A plain-text field that reads the same whether taken as text or as HTML."""
    return _MARKUP_LIKE.sub("\\1\u2060", text) if ("<" in text or "&" in text) else text


def _generator(feed: Feed, *, atom: bool = False) -> FeedGenerator:
    """The feed in feedgen's terms; entries shaped for Atom when `atom`, else for RSS."""
    channel = feed.channel
    generator = FeedGenerator()
    generator.register_extension("dc", _DcFeed, _DcCreator, atom=False, rss=True)
    generator.register_extension("media", _MediaFeed, _MediaLead, atom=True, rss=True)
    generator.generator("feedx-convert", __version__)
    generator.title(_text(channel.title))
    if atom and not all(article.authors for article in feed.articles):
        # Atom needs an author for every entry: the feed's, for those that name none.
        generator.author(name=_text(channel.title))
    generator.description(_text(channel.description or channel.title))
    generator.id(as_uri(channel.self_url or channel.link))
    if channel.self_url:
        generator.link(href=as_uri(channel.self_url), rel="self")
    # Last: feedgen's RSS <link> is the last link given.
    generator.link(href=as_uri(channel.link), rel="alternate")
    if channel.language:
        generator.language(channel.language)
    # The channel's date (the newest item's), never the clock: the same input gives the
    # same bytes. feedgen would put the clock where none is set.
    dates = [moment for a in feed.articles if (moment := item_date(a)) is not None]
    updated = channel.updated or max(dates, default=None)
    if updated is None:
        raise ValueError("a feed of undated items needs its channel's `updated` date")
    generator.updated(updated)
    # Appended in the feed's order (newest first): feedgen's default, prepending, inserts
    # at the head of a list, which grows quadratic with the number of items.
    instants = _entry_instants(feed.articles, updated)
    for article, instant in zip(feed.articles, instants, strict=True):
        _add_entry(generator, article, instant, atom=atom)
    return generator


def _entry_instants(articles: tuple[Article, ...], feed_updated: datetime) -> list[datetime]:
    """Atom's `updated` for each entry, in feed order: its date, an undated one the
    feed's; each moved back by microseconds until no earlier entry has it.

    Atom needs an `updated` on every entry, and several entries of one instant read as
    a made-up date (the W3C validator's DuplicateUpdated); no reader shows the
    microseconds, and `published` (and RSS's pubDate) keeps the date as it was given.
    """
    taken: set[datetime] = set()
    instants = []
    for article in articles:
        moment = item_date(article) or feed_updated
        while moment in taken:
            moment -= timedelta(microseconds=1)
        taken.add(moment)
        instants.append(moment)
    return instants


def _add_entry(
    generator: FeedGenerator, article: Article, updated: datetime, *, atom: bool
) -> None:
    entry = generator.add_entry(order="append")
    # The guid is the Atom id too (`item_id`): once published, it never changes.
    # One link only: feedgen's Atom writer turns a second link or an enclosure into a
    # duplicate alternate link (feedgen issues 135 and 143).
    guid = item_id(article)
    if is_web_url(article.url):
        entry.link(href=as_uri(article.url), rel="alternate")
    entry.guid(as_uri(guid), permalink=is_web_url(guid))
    entry.title(_text(article.title))
    date = item_date(article)
    if date is not None:
        entry.pubDate(date)
        entry.published(date)
    entry.updated(updated)  # Atom only; an undated RSS item has no pubDate
    for name in article.authors:
        entry.author(name=_text(name))
    if article.authors:
        entry.dc.creator = _text(", ".join(article.authors))
    for tag in article.tags:
        entry.category(term=_text(tag))
    if atom:
        # Atom carries the HTML as escaped text and the summary as a summary (plain text);
        # an empty content is no content (the validator warns on a blank one).
        content = article_html(article)
        if not content.strip() and not is_web_url(article.url):
            # An entry with neither content nor a link is not Atom (RFC 4287 4.1.2): a
            # page that was only its heading says that heading.
            content = f"<p>{html.escape(article.title, quote=False)}</p>"
        if content.strip():
            entry.content(content, type="html")
        entry.summary(_text(article_summary(article)))
    else:
        # RSS readers take <description> for HTML: the plain-text summary is escaped, so
        # that words such as "<script>" in an article stay words.
        entry.description(html.escape(article_summary(article), quote=False))
        entry.content(article_html(article), type="CDATA")
    lead = article.lead_image
    if lead is not None and is_web_url(lead.url):
        entry.media.url = as_uri(lead.url)


def write_rss(feed: Feed) -> bytes:
    """The feed as RSS 2.0."""
    return bytes(_generator(feed).rss_str(pretty=True))


def write_atom(feed: Feed) -> bytes:
    """The feed as Atom 1.0."""
    return bytes(_generator(feed, atom=True).atom_str(pretty=True))
