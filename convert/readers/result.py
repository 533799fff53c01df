"""What a reader returns."""

from __future__ import annotations

from dataclasses import dataclass

from lxml.html import HtmlElement

from convert.model import Article, Channel


@dataclass(frozen=True, slots=True)
class Parsed:
    """One article as its reader made it, with its body's tree."""

    article: Article
    """The article, its body as HTML text."""

    body: HtmlElement
    """`article.body` as the reader's own tree: cleaning takes it over instead of
    parsing the text again."""

    only_its_title: bool = False
    """The body held nothing but the heading that became the title (a page that is one
    heading): the article is that title, not an empty one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Read:
    """Everything one input holds: articles, a feed's own metadata, further sources."""

    items: tuple[Parsed, ...] = ()
    """The articles, in the order the input gives them."""

    channel: Channel | None = None
    """The feed's metadata, when the input is a feed."""

    sources: tuple[str, ...] = ()
    """Other inputs this one names (an OPML list's feeds), to be read in turn."""

    @property
    def articles(self) -> tuple[Article, ...]:
        """The articles alone."""
        return tuple(item.article for item in self.items)
