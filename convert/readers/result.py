"""What a reader returns."""

from __future__ import annotations

from dataclasses import dataclass

from convert.model import Article, Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class Read:
    """Everything one input holds: articles, a feed's own metadata, further sources."""

    articles: tuple[Article, ...] = ()
    """The articles, in the order the input gives them."""

    channel: Channel | None = None
    """The feed's metadata, when the input is a feed."""

    sources: tuple[str, ...] = ()
    """Other inputs this one names (an OPML list's feeds), to be read in turn."""
