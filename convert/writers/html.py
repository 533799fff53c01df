"""An article as one piece of HTML (lead figure, body, credits), for feeds and books."""

from __future__ import annotations

import dataclasses
import functools
import re

import jinja2

from convert.fragments import inner_html, parse_fragment
from convert.model import Article
from convert.urls import absolute_url, is_relative_reference, is_web_url
from convert.writers.templates import templates


@functools.cache
def _item_template() -> jinja2.Template:
    # Looked up once: `get_template` checks the file's modification time on every call.
    return templates().get_template("feed/item.html.j2")


def article_html(article: Article) -> str:
    """The article's full HTML: lead figure with caption and credit, body, credits.

    A feed item stands apart from any page: an address relative to one (`#notes`, or
    what the body of an article read without an address of its own kept) is resolved
    against the article's address, and without one points nowhere, so such links lose
    their target and such pictures leave their words.
    """
    if _RELATIVE.search(article.body):
        article = dataclasses.replace(article, body=_web_addresses_only(article))
    return _item_template().render(article=article)


# An href or src that is not a web address (the sanitizer left only those and relative ones).
_RELATIVE = re.compile(r"""\b(?:href|src)="(?!https?://|mailto:)""", re.I)


def _web_addresses_only(article: Article) -> str:
    base = article.url if is_web_url(article.url) else ""
    root = parse_fragment(article.body)
    for anchor in list(root.iter("a")):
        href = _resolved(anchor.get("href") or "", base)
        if is_web_url(href) or href.startswith("mailto:"):
            anchor.set("href", href)
        else:
            anchor.drop_tag()
    for img in list(root.iter("img")):
        src = _resolved(img.get("src") or "", base)
        if is_web_url(src):
            img.set("src", src)
        else:
            img.tail = (img.get("alt") or "") + (img.tail or "")
            img.drop_tree()
    return inner_html(root)


def _resolved(address: str, base: str) -> str:
    return absolute_url(base, address) if base and is_relative_reference(address) else address
