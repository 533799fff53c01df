"""Tidy the sanitized body: no empty paragraphs, no stray breaks, CJK-aware white space."""

from __future__ import annotations

import re

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

from convert.cleaning.draft import Draft
from convert.cleaning.rules import CleanRules
from convert.text import CJK_CHAR, CJK_PUNCTUATION_CHAR, between, touches

_BLOCKS = frozenset(
    """
    blockquote caption dd div dl dt figcaption figure h1 h2 h3 h4 h5 h6 hr li ol p pre
    section table tbody td tfoot th thead tr ul
    """.split()
)
_EMPTY_REMOVABLE = frozenset(
    """
    a b blockquote div em figcaption h1 h2 h3 h4 h5 h6 i li p section small span strong
    """.split()
)

# Text slots are joined with NUL (removed from input by the sanitizer) so that white
# space can be judged across inline tags, then split back into place.
_JOINT = "\x00"
_WS = f"[ \t\n\r\f{_JOINT}]*[ \t\n\r\f][ \t\n\r\f{_JOINT}]*"
# Runs are found first and their neighbours checked after (see convert.text).
_NEWLINE_RUN = re.compile(f"[ \t\r\f{_JOINT}]*\n[ \t\n\r\f{_JOINT}]*")
_RUN = re.compile(_WS)
_SPACE = re.compile("[ \t\n\r\f]")


def tidy_body(draft: Draft, rules: CleanRules) -> None:
    """Remove empty blocks and trailing breaks; collapse white space as a reader sees it."""
    root = draft.tree()
    _collapse_whitespace(root)
    _drop_edge_breaks(root)
    _drop_empty(root)
    _wrap_stray_items(root)
    _strip_edges(root)


def _wrap_stray_items(root: HtmlElement) -> None:
    """Put each `<li>` outside a list into one (`<ul>`, with its neighbouring items).

    A stray item after text would be written as `中- …` in Markdown: no list, and its
    indented lines (a code block's) would then be read as raw HTML.
    """
    made: list[HtmlElement] = []  # the lists made here, held so that `is` holds
    for item in list(root.iter("li")):
        parent = item.getparent()
        if parent is None or parent.tag in ("ul", "ol"):
            continue
        before = item.getprevious()
        joins = before is not None and not (before.tail or "").strip()
        if joins and any(before is wrapper for wrapper in made[-1:]):
            wrapper = before  # the item before was stray too: the same list
        else:
            wrapper = lxml.html.Element("ul")
            item.addprevious(wrapper)
            made.append(wrapper)
        # The text after the item stays after the list (and ends it).
        wrapper.tail, item.tail = item.tail, None
        wrapper.append(item)


def _strip_edges(root: HtmlElement) -> None:
    """White space at the very start and end of the body goes (as `str.strip` would)."""
    root.text = (root.text or "").lstrip() or None
    if len(root):
        root[-1].tail = (root[-1].tail or "").rstrip() or None
    elif root.text:
        root.text = root.text.rstrip()


def _keep_joints(match: re.Match[str]) -> str:
    return _JOINT * match.group().count(_JOINT)


def _newline_in_cjk(match: re.Match[str]) -> str:
    """A line break between two CJK characters goes (it came from wrapping the source)."""
    return _keep_joints(match) if between(match, CJK_CHAR) else match.group()


def _around_punctuation(match: re.Match[str]) -> str:
    """White space touching full-width punctuation goes."""
    return _keep_joints(match) if touches(match, CJK_PUNCTUATION_CHAR) else match.group()


def _one_space(match: re.Match[str]) -> str:
    """A run becomes one space, placed where the first real space was."""
    run = match.group()
    first = len(run) - len(run.lstrip(_JOINT))
    return _JOINT * first + " " + _JOINT * (run.count(_JOINT) - first)


def _collapse_whitespace(root: HtmlElement) -> None:
    """HTML white-space collapsing, minus the spaces Chinese typography does not have."""
    spaced: list[list[tuple[HtmlElement, str]]] = []  # the flows that hold white space
    slots: list[tuple[HtmlElement, str]] = []
    has_space = False
    in_pre = 0  # how many <pre> are open: their white space is kept as it is
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag
        if tag == "pre":
            in_pre += 1 if event == "start" else -1
            if in_pre:
                continue
            # The text after a <pre> starts a flow.
            if has_space:
                spaced.append(slots)
            slots, has_space = [], False
        elif in_pre:
            continue
        elif tag in _BLOCKS or tag == "br":  # a block boundary ends the flow
            if has_space:
                spaced.append(slots)
            slots, has_space = [], False
        if event == "start" and tag != "pre":
            slots.append((element, "text"))
            value = element.text
        else:
            slots.append((element, "tail"))
            value = element.tail
        # Most flows (a Chinese paragraph) have no white space: nothing to collapse.
        if value and not has_space and _SPACE.search(value):
            has_space = True
    if has_space:
        spaced.append(slots)
    for flow in spaced:
        values = [getattr(el, slot) or "" for el, slot in flow]
        joined = _JOINT.join(values)
        if "\n" in joined:
            joined = _NEWLINE_RUN.sub(_newline_in_cjk, joined)
        joined = _RUN.sub(_around_punctuation, joined)
        joined = _RUN.sub(_one_space, joined)
        for (element, slot), old, value in zip(flow, values, joined.split(_JOINT), strict=True):
            if value != old:
                setattr(element, slot, value or None)


def _drop_edge_breaks(root: HtmlElement) -> None:
    """`<br>` at the start or end of a block (or of the article) shows as nothing but a gap."""
    # Only a block with a <br> of its own has any to drop (few do); in document order.
    parents = (br.getparent() for br in root.iter("br"))
    blocks = {id(p): p for p in parents if p is not None and (p is root or p.tag in _BLOCKS)}
    for block in blocks.values():
        while len(block) and block[-1].tag == "br" and not (block[-1].tail or "").strip():
            block[-1].drop_tree()
        while len(block) and block[0].tag == "br" and not (block.text or "").strip():
            block[0].drop_tree()


def _drop_empty(root: HtmlElement) -> None:
    """Remove elements with no text and no picture, innermost first.

    An empty inline element keeps its white space as plain text, so that the
    words around it stay apart.
    """
    for element in reversed(list(root.iter(*_EMPTY_REMOVABLE))):  # the tags picked in C
        if element is root:
            continue
        if (element.text or "").strip() or len(element):
            continue
        if element.tag in _BLOCKS:
            element.drop_tree()
        else:
            element.drop_tag()
