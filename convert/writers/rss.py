"""RSS 2.0 and Atom 1.0 through feedgen."""

from __future__ import annotations

import html
from datetime import datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from convert import __version__
from convert.identity import item_id
from convert.model import Article, Feed, item_date
from convert.urls import is_web_url
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


def _generator(feed: Feed, *, atom: bool = False) -> FeedGenerator:
    """The feed in feedgen's terms; entries shaped for Atom when `atom`, else for RSS."""
    channel = feed.channel
    generator = FeedGenerator()
    generator.register_extension("dc", _DcFeed, _DcCreator, atom=False, rss=True)
    generator.register_extension("media", _MediaFeed, _MediaLead, atom=True, rss=True)
    generator.generator("feedx-convert", __version__)
    generator.title(channel.title)
    if atom and not all(article.authors for article in feed.articles):
        # Atom needs an author for every entry: the feed's, for those that name none.
        generator.author(name=channel.title)
    generator.description(channel.description or channel.title)
    generator.id(channel.self_url or channel.link)
    if channel.self_url:
        generator.link(href=channel.self_url, rel="self")
    # Last: feedgen's RSS <link> is the last link given.
    generator.link(href=channel.link, rel="alternate")
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
    for article in feed.articles:
        _add_entry(generator, article, updated, atom=atom)
    return generator


def _add_entry(
    generator: FeedGenerator, article: Article, feed_updated: datetime, *, atom: bool
) -> None:
    entry = generator.add_entry(order="append")
    # The guid is the Atom id too (`item_id`): once published, it never changes.
    # One link only: feedgen's Atom writer turns a second link or an enclosure into a
    # duplicate alternate link (feedgen issues 135 and 143).
    guid = item_id(article)
    if is_web_url(article.url):
        entry.link(href=article.url, rel="alternate")
    entry.guid(guid, permalink=is_web_url(guid))
    entry.title(article.title)
    date = item_date(article)
    if date is not None:
        entry.pubDate(date)
        entry.published(date)
    # Atom needs an `updated` for every entry: an undated item was updated no later than
    # the feed (an RSS item just has no pubDate; no item is ever given a made-up date).
    entry.updated(date or feed_updated)
    for name in article.authors:
        entry.author(name=name)
    if article.authors:
        entry.dc.creator = ", ".join(article.authors)
    for tag in article.tags:
        entry.category(term=tag)
    if atom:
        # Atom carries the HTML as escaped text and the summary as a summary (plain text);
        # an empty content is no content (the validator warns on a blank one).
        content = article_html(article)
        if content.strip():
            entry.content(content, type="html")
        entry.summary(article_summary(article))
    else:
        # RSS readers take <description> for HTML: the plain-text summary is escaped, so
        # that words such as "<script>" in an article stay words.
        entry.description(html.escape(article_summary(article), quote=False))
        entry.content(article_html(article), type="CDATA")
    lead = article.lead_image
    if lead is not None and is_web_url(lead.url):
        entry.media.url = lead.url


def write_rss(feed: Feed) -> bytes:
    """The feed as RSS 2.0."""
    return bytes(_generator(feed).rss_str(pretty=True))


def write_atom(feed: Feed) -> bytes:
    """The feed as Atom 1.0."""
    return bytes(_generator(feed, atom=True).atom_str(pretty=True))
