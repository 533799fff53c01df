"""A feed item's summary: the source's own, else the opening of the article's text."""

from __future__ import annotations

from lxml.html import HtmlElement

from convert.fragments import parse_fragment, text_of
from convert.model import Article
from convert.text import plain_text

SUMMARY_LENGTH = 200

# The summary's text is cleaned a prefix at a time (see `article_summary`): first the
# raw text's first this many characters, then twice as many, and so on.
_FIRST_PREFIX = 2 * SUMMARY_LENGTH
# How many characters past SUMMARY_LENGTH a prefix's clean text must reach before it is
# taken for the whole text's. `plain_text` only deletes characters, collapses white space
# and drops spaces by their two neighbours, so only its last character can differ from
# the whole text's; the margin also covers a rule that looked a little further.
_PREFIX_MARGIN = 64

_BLOCKS = ("p", "li", "h2", "h3", "h4", "td")
"""The elements whose text makes a summary, in document order (nested ones repeat)."""


def article_summary(article: Article, body: HtmlElement | None = None) -> str:
    """A short plain-text summary: the source's own, else the opening of the text.

    `body` is the article's body as a tree when the caller has it (cleaning's), so that
    it is not parsed again.
    """
    if article.summary:
        return article.summary
    # Only the opening is needed: the blocks' text is gathered and cleaned until the
    # clean text is safely longer than the summary, not for the whole article (cleaning
    # all of it was most of a feed item's cost).
    texts: list[str] = []
    size = 0  # of the text gathered so far, separators included
    check_at = _FIRST_PREFIX
    root = body if body is not None else parse_fragment(article.body)
    for block in root.iter(*_BLOCKS):
        texts.append(text_of(block))
        size += len(texts[-1]) + 1
        if size < check_at:
            continue
        raw = " ".join(texts)
        while check_at <= size:
            # Any prefix of the raw text will do, even one that cuts a block: a long
            # first paragraph is not cleaned whole either.
            opening = plain_text(raw[:check_at])
            if len(opening) > SUMMARY_LENGTH + _PREFIX_MARGIN:
                return _cut(opening)
            check_at *= 2  # doubling keeps the checks linear in the text's length
    text = plain_text(" ".join(texts))
    if len(text) <= SUMMARY_LENGTH:
        return text or article.title
    return _cut(text)


def _cut(text: str) -> str:
    """The first SUMMARY_LENGTH characters of `text` (longer than that), with an ellipsis."""
    return text[:SUMMARY_LENGTH].rstrip() + "…"
