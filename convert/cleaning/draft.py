"""The state the cleaning steps share: one article's fields and its body's one tree."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lxml.html import HtmlElement

from convert.fragments import inner_html, parse_fragment
from convert.model import Article


@dataclass(frozen=True, slots=True)
class Cleaned:
    """An article after cleaning, with the tree its body was serialized from."""

    article: Article
    """The cleaned article; `body` is the tree's HTML."""

    body: HtmlElement
    """The body as a tree, for whoever renders it next (look, do not change)."""


class Draft:
    """One article being cleaned: its fields, and its body as one parsed tree.

    The body is parsed once when cleaning starts (or taken over from the reader, which
    parsed it already) and serialized once when it ends (`finished`). A step that must
    work on the HTML as text (nh3, a site's regular expressions) asks for `text()`:
    the one place where the tree becomes text, and text a tree again at the next
    `tree()`. Steps change the tree in place and the fields with `dataclasses.replace`.
    """

    __slots__ = ("_text", "_tree", "article")

    def __init__(self, article: Article, body: HtmlElement | None = None) -> None:
        self.article = article
        """The article's fields as the steps left them; its `body` is the text it came with."""
        self._tree = body
        self._text = None if body is not None else article.body

    def tree(self) -> HtmlElement:
        """The body as a tree, parsed now if a text step came last."""
        if self._tree is None:
            self._tree = parse_fragment(self._text or "")
            self._text = None
        return self._tree

    def text(self) -> str:
        """The body as HTML text, serialized now if a tree step came last."""
        if self._text is None:
            self._text = inner_html(self.tree())
            self._tree = None
        return self._text

    def set_text(self, html: str) -> None:
        """Replace the body with `html` (a text step's result)."""
        self._text, self._tree = html, None

    def set_tree(self, root: HtmlElement) -> None:
        """Replace the body with the tree under `root` (a step that built a new one)."""
        self._tree, self._text = root, None

    def finished(self) -> Cleaned:
        """The cleaned article: the body serialized once, its tree kept beside it."""
        root = self.tree()
        return Cleaned(dataclasses.replace(self.article, body=inner_html(root)), root)
