"""An article as one piece of HTML (lead figure, body, credits), for feeds and books."""

from __future__ import annotations

import functools

import jinja2

from convert.model import Article
from convert.writers.templates import templates


@functools.cache
def _item_template() -> jinja2.Template:
    # Looked up once: `get_template` checks the file's modification time on every call.
    return templates().get_template("feed/item.html.j2")


def article_html(article: Article) -> str:
    """The article's full HTML: lead figure with caption and credit, body, credits."""
    return _item_template().render(article=article)
