"""Strip what the feedx mirror adds to every article: its promotion block and links."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, cast

from lxml import etree
from lxml.html import HtmlElement

from convert.cleaning.draft import Draft
from convert.cleaning.rules import CleanRules
from convert.config import Promo
from convert.fragments import text_of
from convert.urls import host_in, host_of

# Elements that carry no content of their own once the promotion is gone.
_SPACERS = frozenset({"br", "hr"})
_CONTAINERS = frozenset({"section", "article", "main", "div", "p", "blockquote", "figure"})
# Blocks a promotion may fill: the one holding a marker goes whole.
_BLOCKS = _CONTAINERS | frozenset(
    "aside center dl footer h1 h2 h3 h4 h5 h6 header li ol table ul".split()
)
# Blocks a mirror may add, one after the other (a div, then a 订阅指南 paragraph).
_MAX_BLOCKS = 8


def strip_feedx_promo(draft: Draft, rules: CleanRules) -> None:
    """Remove the `获取更多RSS` block, links to feedx domains and a leading `快讯` stamp."""
    promo = rules.promo
    root = draft.tree()
    _cut_promo_block(root, promo)
    _drop_promo_links(root, promo)
    _drop_leading_stamp(root, re.compile(promo.leading_stamp))
    _trim_trailing_spacers(root)


def strip_promo_from_channel(text: str, promo: Promo) -> str:
    """A feed's title or description without what the mirror added to it (` - feedx`)."""
    if not promo.in_channel or not text:
        return text
    return re.sub(promo.in_channel, "", text).strip() or text


def _is_promo_host(href: str, promo: Promo) -> bool:
    return host_in(host_of(href), promo.hosts)


def _cut_promo_block(root: HtmlElement, promo: Promo) -> None:
    """Delete every promotion block: each from its marker to the end of its block."""
    for _ in range(_MAX_BLOCKS):
        hits = _marker_texts(promo.markers)(root)
        if not hits or hits[0].getparent() is None or not _cut_one(root, hits[0], promo):
            return


def _cut_one(root: HtmlElement, hit: Any, promo: Promo) -> bool:
    """Delete the promotion that starts at the text `hit`; False when nothing changed."""
    element, slot = hit.getparent(), "text" if hit.is_text else "tail"
    value = str(hit)
    at = min(value.find(m) for m in promo.markers if m in value)
    if slot == "text" and element is not root:
        # `<div>获取更多RSS：<a>…</a></div>`, `<p><font>订阅指南</font>：…</p>`: the block
        # holding the marker is the promotion.
        block = element
        while block.tag not in _BLOCKS and block.getparent() is not root:
            block = block.getparent()
        if block.tag in _BLOCKS:
            following = list(block.itersiblings())
            block.drop_tree()
            _drop_leftovers(following, promo)
            return True
        # An inline element right in the body: the promotion runs to its end.
        element.text = value[:at]
        _drop_leftovers([*element, *element.itersiblings()], promo)
        return True
    # `<hr/>获取更多RSS：<a>…</a>`: the promotion runs to the end of the parent.
    parent = element if slot == "text" else element.getparent()
    setattr(element, slot, value[:at])
    start = element if slot == "tail" else None
    _drop_leftovers(list(parent) if start is None else list(start.itersiblings()), promo)
    return True


def _drop_leftovers(elements: list[HtmlElement], promo: Promo) -> None:
    """Drop the mirror's links, spacers and empty elements, up to the first real text."""
    for element in elements:
        if not _is_promo_leftover(element, promo):
            break
        element.drop_tree()


@functools.cache
def _marker_texts(markers: tuple[str, ...]) -> Callable[[HtmlElement], list[Any]]:
    """The texts under an element that hold a marker, in document order, found by XPath
    (in C, compiled once). The results are "smart" strings that know their element."""
    # Markers as XPath variables, not literals: a marker may hold any quote.
    tests = " or ".join(f"contains(., $m{n})" for n in range(len(markers))) or "false()"
    find = etree.XPath(f"descendant-or-self::text()[{tests}]")
    variables = {f"m{n}": marker for n, marker in enumerate(markers)}
    return lambda root: cast("list[Any]", find(root, **variables))


def _has_words(element: HtmlElement) -> bool:
    """True when some text inside `element` is more than white space (stops at the first)."""
    return any(piece.strip() for piece in element.itertext())


def _is_promo_leftover(element: HtmlElement, promo: Promo) -> bool:
    """A link to the mirror, a spacer, or an empty element, with no real text after it."""
    if (element.tail or "").strip():
        return False
    if element.tag in _SPACERS:
        return True
    if element.tag == "a" and _is_promo_host(element.get("href") or "", promo):
        return True
    return not _has_words(element) and next(element.iter("img"), None) is None


def _drop_promo_links(root: HtmlElement, promo: Promo) -> None:
    """Links to feedx domains go; words that were linked stay unless they are the URL."""
    for anchor in list(root.iter("a")):
        href = anchor.get("href") or ""
        if not _is_promo_host(href, promo):
            continue
        label = text_of(anchor).strip()
        if not label or _is_promo_host(label if "//" in label else "//" + label, promo):
            anchor.drop_tree()
        else:
            anchor.drop_tag()


def _drop_leading_stamp(root: HtmlElement, stamp: re.Pattern[str]) -> None:
    """Drop a first block that is only a `快讯 2024-05-23 14:05` stamp."""
    if stamp.match(root.text or "") and (root.text or "").strip():
        root.text = ""
        return
    for element in root.iter():
        if element is root:
            continue
        # A stamp is short: the opening of the text is enough (not a whole wrapper's).
        text = _opening(element, 200)
        if not text.strip() or any(child.tag in _CONTAINERS for child in element):
            continue  # empty, or a wrapper whose first block comes next
        if stamp.match(text) and next(element.iter("img"), None) is None:
            element.drop_tree()
        return


def _opening(element: HtmlElement, length: int) -> str:
    """The first `length` characters (or a few more) of the element's text."""
    pieces: list[str] = []
    size = 0
    for piece in element.itertext():
        pieces.append(piece)
        size += len(piece)
        if size >= length:
            break
    return "".join(pieces)


def _trim_trailing_spacers(root: HtmlElement) -> None:
    """Remove `<br>`, `<hr>` and empty elements left at the very end of the article, and
    the white space the promotion's links leave behind."""
    while len(root):
        last = root[-1]
        if (last.tail or "").strip() or not (
            last.tag in _SPACERS or (not _has_words(last) and next(last.iter("img"), None) is None)
        ):
            break
        last.drop_tree()
    if len(root) and root[-1].tail and not root[-1].tail.strip():
        root[-1].tail = None
