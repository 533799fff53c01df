"""An article as one piece of HTML (lead figure, body, credits), for feeds and books."""

from __future__ import annotations

import functools

import jinja2

from convert.fragments import parse_fragment, text_of
from convert.model import Article
from convert.resources import resource_path
from convert.text import plain_text

SUMMARY_LENGTH = 200


@functools.cache
def templates() -> jinja2.Environment:
    """The Jinja2 environment over `templates/`, escaping HTML."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_path("templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
    )


def article_html(article: Article) -> str:
    """The article's full HTML: lead figure with caption and credit, body, credits."""
    return templates().get_template("feed/item.html.j2").render(article=article)


def article_summary(article: Article) -> str:
    """A short plain-text summary: the source's own, else the opening of the text."""
    if article.summary:
        return article.summary
    blocks = parse_fragment(article.body).iter("p", "li", "h2", "h3", "h4", "td")
    text = plain_text(" ".join(text_of(block) for block in blocks))
    if len(text) <= SUMMARY_LENGTH:
        return text or article.title
    return text[:SUMMARY_LENGTH].rstrip() + "…"
