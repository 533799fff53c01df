"""RSS 2.0 and Atom 1.0 through feedgen."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from feedgen.feed import FeedGenerator

from convert import __version__
from convert.model import Article, Feed
from convert.urls import is_web_url
from convert.writers.html import article_html, article_summary

# A fixed date for an article with none, so that output stays reproducible.
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


def item_date(article: Article) -> datetime:
    """The date an item is filed under: publication, else capture."""
    return article.published or article.captured or UNDATED


def item_id(article: Article) -> str:
    """The item's permanent identifier: its URL, else a URN of its content hash."""
    return article.url if is_web_url(article.url) else f"urn:feedx-convert:{article.id}"


def _generator(feed: Feed) -> FeedGenerator:
    channel = feed.channel
    generator = FeedGenerator()
    generator.load_extension("dc", atom=False, rss=True)
    generator.load_extension("media", atom=True, rss=True)
    generator.generator("feedx-convert", __version__)
    generator.title(channel.title)
    generator.description(channel.description or channel.title)
    generator.id(channel.self_url or channel.link)
    if channel.self_url:
        generator.link(href=channel.self_url, rel="self")
    # Last: feedgen's RSS <link> is the last link given.
    generator.link(href=channel.link, rel="alternate")
    if channel.language:
        generator.language(channel.language)
    # The newest item's date, not the clock: the same input gives the same bytes.
    newest = max((item_date(a) for a in feed.articles), default=channel.updated or UNDATED)
    generator.lastBuildDate(newest)
    generator.updated(newest)
    # feedgen prepends entries; adding oldest first leaves them newest first.
    for article in reversed(feed.articles):
        _add_entry(generator, article)
    return generator


def _add_entry(generator: FeedGenerator, article: Article) -> None:
    entry = generator.add_entry()
    entry.id(item_id(article))
    entry.title(article.title)
    # One link only: feedgen's Atom writer turns a second link or an enclosure into a
    # duplicate alternate link (feedgen issues 135 and 143).
    if is_web_url(article.url):
        entry.link(href=article.url, rel="alternate")
        entry.guid(article.url, permalink=True)
    else:
        entry.guid(item_id(article), permalink=False)
    date = item_date(article)
    entry.pubDate(date)
    entry.published(date)
    entry.updated(date)
    for name in article.authors:
        entry.author(name=name)
    if article.authors:
        entry.dc.dc_creator(", ".join(article.authors))
    for tag in article.tags:
        entry.category(term=tag)
    # RSS readers take <description> for HTML: the plain-text summary is escaped, so that
    # words such as "<script>" in an article stay words.
    entry.description(html.escape(article_summary(article), quote=False))
    entry.content(article_html(article), type="CDATA")
    lead = article.lead_image
    if lead is not None and is_web_url(lead.url):
        entry.media.content(url=lead.url, medium="image")


def write_rss(feed: Feed) -> bytes:
    """The feed as RSS 2.0."""
    return bytes(_generator(feed).rss_str(pretty=True))


def write_atom(feed: Feed) -> bytes:
    """The feed as Atom 1.0."""
    generator = _generator(feed)
    for entry in generator.entry():
        # Atom carries the HTML as escaped text and the summary as a summary (plain text).
        entry.content(entry.content()["content"], type="html")
        entry.summary(html.unescape(entry.description()))
    return bytes(generator.atom_str(pretty=True))
