"""JSON Feed 1.1, written from the model (no library needed for plain JSON)."""

from __future__ import annotations

import json
from typing import Any

from convert.identity import item_id
from convert.model import Article, Feed, item_date
from convert.urls import is_web_url
from convert.writers.html import article_html
from convert.writers.summary import article_summary

VERSION = "https://jsonfeed.org/version/1.1"


def _item(article: Article) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id(article)}
    if is_web_url(article.url):
        item["url"] = article.url
    item["title"] = article.title
    item["content_html"] = article_html(article)
    item["summary"] = article_summary(article)
    if article.lead_image is not None and is_web_url(article.lead_image.url):
        item["image"] = article.lead_image.url
    date = item_date(article)
    if date is not None:
        item["date_published"] = date.isoformat()
    if article.authors:
        item["authors"] = [{"name": name} for name in article.authors]
    if article.tags:
        item["tags"] = list(article.tags)
    if article.language and article.language != "und":
        item["language"] = article.language
    return item


def write_json_feed(feed: Feed) -> bytes:
    """The feed as JSON Feed 1.1."""
    channel = feed.channel
    document: dict[str, Any] = {"version": VERSION, "title": channel.title}
    if channel.link:
        document["home_page_url"] = channel.link
    if channel.self_url:
        document["feed_url"] = channel.self_url
    if channel.description:
        document["description"] = channel.description
    if channel.language:
        document["language"] = channel.language
    document["items"] = [_item(article) for article in feed.articles]
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
