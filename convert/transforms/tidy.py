"""Tidy the sanitized body: no empty paragraphs, no stray breaks, CJK-aware white space."""

from __future__ import annotations

import dataclasses
import re

from lxml import etree
from lxml.html import HtmlElement

from convert.config import Rules
from convert.fragments import inner_html, parse_fragment
from convert.model import Article
from convert.text import CJK, CJK_PUNCTUATION

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
_AROUND_PUNCT = re.compile(f"(?<=[{CJK_PUNCTUATION}]){_WS}|{_WS}(?=[{CJK_PUNCTUATION}])")
_NEWLINE_IN_CJK = re.compile(f"(?<=[{CJK}])[ \t\r\f{_JOINT}]*\n[ \t\n\r\f{_JOINT}]*(?=[{CJK}])")
_RUN = re.compile(_WS)


def tidy_body(article: Article, rules: Rules) -> Article:
    """Remove empty blocks and trailing breaks; collapse white space as a reader sees it."""
    root = parse_fragment(article.body)
    _collapse_whitespace(root)
    _drop_edge_breaks(root)
    _drop_empty(root)
    return dataclasses.replace(article, body=inner_html(root).strip())


def _keep_joints(match: re.Match[str]) -> str:
    return _JOINT * match.group().count(_JOINT)


def _one_space(match: re.Match[str]) -> str:
    """A run becomes one space, placed where the first real space was."""
    run = match.group()
    first = len(run) - len(run.lstrip(_JOINT))
    return _JOINT * first + " " + _JOINT * (run.count(_JOINT) - first)


def _collapse_whitespace(root: HtmlElement) -> None:
    """HTML white-space collapsing, minus the spaces Chinese typography does not have."""
    slots: list[tuple[HtmlElement, str]] = []
    flows: list[list[tuple[HtmlElement, str]]] = [slots]
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if element.tag == "pre":
            if event == "start":
                flows.append(slots := [])
            else:
                flows.append(slots := [(element, "tail")])
            continue
        if any(a.tag == "pre" for a in element.iterancestors()):
            continue
        if element.tag in _BLOCKS or element.tag == "br":
            flows.append(slots := [])  # a block boundary ends the flow
        slots.append((element, "text" if event == "start" else "tail"))
    for flow in flows:
        joined = _JOINT.join(getattr(el, slot) or "" for el, slot in flow)
        if not joined.strip(_JOINT):
            continue
        joined = _NEWLINE_IN_CJK.sub(_keep_joints, joined)
        joined = _AROUND_PUNCT.sub(_keep_joints, joined)
        joined = _RUN.sub(_one_space, joined)
        for (element, slot), value in zip(flow, joined.split(_JOINT), strict=True):
            setattr(element, slot, value or None)


def _drop_edge_breaks(root: HtmlElement) -> None:
    """`<br>` at the start or end of a block (or of the article) shows as nothing but a gap."""
    for block in [root, *(el for el in root.iter() if el.tag in _BLOCKS)]:
        while len(block) and block[-1].tag == "br" and not (block[-1].tail or "").strip():
            block[-1].drop_tree()
        while len(block) and block[0].tag == "br" and not (block.text or "").strip():
            block[0].drop_tree()


def _drop_empty(root: HtmlElement) -> None:
    """Remove elements with no text and no picture, innermost first.

    An empty inline element keeps its white space as plain text, so that the
    words around it stay apart.
    """
    for element in reversed(list(root.iter())):
        if element is root or element.tag not in _EMPTY_REMOVABLE:
            continue
        if (element.text or "").strip() or len(element):
            continue
        if element.tag in _BLOCKS:
            element.drop_tree()
        else:
            element.drop_tag()
