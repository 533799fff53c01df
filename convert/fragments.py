"""Parsing and serializing HTML fragments with lxml, the same way everywhere."""

from __future__ import annotations

import re
from html import escape
from typing import cast

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

from convert.text import remove_invalid_xml

# huge_tree lifts libxml2's silent limit on 10 MB text nodes; the input size is capped
# before parsing instead. Even so libxml2 stops at about 2,000 nested elements and
# silently drops the rest of the document: see `parse_shallow`. Comments and processing
# instructions are never content. The HTML parser resolves no external entities and
# fetches nothing.
_PARSER = lxml.html.HTMLParser(
    huge_tree=True, remove_comments=True, remove_pis=True, no_network=True
)
# Every element is a plain HtmlElement (no form or input classes, which we never use):
# lxml.html's default lookup calls back into Python for each element touched.
_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(element=HtmlElement))


def parse_fragment(html: str) -> HtmlElement:
    """The fragment's nodes inside one `<div>` container (empty input gives an empty div).

    Characters XML cannot carry (controls, `&#0;`, `&#xD800;`) are dropped first: lxml
    refuses them, and no output format could hold them.
    """
    html = remove_invalid_xml(html)
    # As lxml.html.fragment_fromstring(create_parent="div"), but the container is made
    # by our parser: a container of lxml's default parser would bring its class lookup.
    root: HtmlElement = _PARSER.makeelement("div")
    if not html.strip():
        return root
    try:
        elements = lxml.html.fragments_fromstring(html, parser=_PARSER)
    except etree.ParserError:  # only markup that is no content (` <!DOCTYPE `)
        return root
    if elements and isinstance(elements[0], str):
        root.text = elements.pop(0)
    root.extend(elements)
    return root


def inner_html(container: HtmlElement) -> str:
    """The HTML inside `container`, without the container's own tag."""
    if container.tag == "div" and not container.attrib:
        # Our containers: one serialization (in C) of `<div>…</div>`, the tags cut off.
        # The container's tail is not part of it.
        html = etree.tostring(container, method="html", encoding="unicode", with_tail=False)
        return html[len("<div>") : -len("</div>")]
    # The text before the first child is text: escaped as lxml escapes every other text
    # (else `&lt;script&gt;` there would come out as a `<script>` tag).
    parts = [escape(container.text or "", quote=False)]
    parts.extend(
        lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in container
    )
    return "".join(parts)


# The text nodes under an element, joined in C: the text `"".join(element.itertext())`
# gives (comments and processing instructions left out by both), at a quarter of its
# cost on an article's body.
_ALL_TEXT = etree.XPath("string()", smart_strings=False)


def text_of(element: HtmlElement) -> str:
    """All text inside `element`, as the document reads."""
    return cast(str, _ALL_TEXT(element))


# --- nesting ------------------------------------------------------------------------------

MAX_DEPTH = 200
"""Elements nested deeper than this are unwrapped (their text stays): nh3 takes minutes
over 100,000 levels and markdownify recurses once per level."""

# From this depth on, libxml2 may have stopped early: cut the HTML text before parsing.
_PARSER_DEPTH = 1_000
VOID_ELEMENTS = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()
)
"""Elements that never have content or an end tag."""
# Elements whose end tag may be left out: they do not nest, so they do not count.
_OPTIONAL_END = frozenset("p li dt dd tr td th option optgroup thead tbody tfoot colgroup".split())
# Tags, and what must be skipped whole to find them: comments, CDATA, raw text, DOCTYPE.
# Quoted attribute values are bounded, so that an unclosed quote cannot make it quadratic.
_TOKEN = re.compile(
    r"""
      <!--.*?(?:-->|\Z)
    | <!\[CDATA\[.*?(?:\]\]>|\Z)
    | <(?P<raw>script|style|textarea|title|xmp|plaintext)\b
        (?:[^>"']|"[^"]{0,4096}"|'[^']{0,4096}')*>.*?(?:</(?P=raw)\s*>|\Z)
    | <[!?][^>]*>
    | </(?P<end>[A-Za-z][^\s/>]*)[^>]*>
    | <(?P<start>[A-Za-z][^\s/>]*)(?:[^>"']|"[^"]{0,4096}"|'[^']{0,4096}')*>
    """,
    re.S | re.X | re.I,
)


def depth_of(root: HtmlElement) -> int:
    """How deep the elements under `root` are nested (`root` alone is 1)."""
    depth = deepest = 0
    for event, _element in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def cut_deep_tags(html: str, max_depth: int = MAX_DEPTH) -> str:
    """`html` without the start and end tags of elements nested deeper than `max_depth`.

    Only tags are cut, never text, so that nothing is lost; for input that libxml2
    would stop parsing in.
    """
    stack: list[tuple[str, bool]] = []  # open elements: name, and whether it is kept
    pieces: list[str] = []
    position = 0
    for token in _TOKEN.finditer(html):
        start, end = token.group("start"), token.group("end")
        drop = False
        if start is not None:
            name = start.lower()
            if name in VOID_ELEMENTS or name in _OPTIONAL_END or token.group().endswith("/>"):
                continue
            kept = len(stack) < max_depth
            stack.append((name, kept))
            drop = not kept
        elif end is not None:
            name = end.lower()
            for index in range(len(stack) - 1, -1, -1):
                if stack[index][0] == name:
                    drop = not stack[index][1]
                    del stack[index:]
                    break
        if drop:
            pieces.append(html[position : token.start()])
            position = token.end()
    pieces.append(html[position:])
    return "".join(pieces)


def flatten_deep(root: HtmlElement, max_depth: int = MAX_DEPTH) -> int:
    """Unwrap the elements nested deeper than `max_depth` under `root`; how many were."""
    deep: list[HtmlElement] = []
    depth = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth > max_depth:
                deep.append(element)
        else:
            depth -= 1
    for element in deep:  # outermost first: each one's children move up to a kept parent
        element.drop_tag()
    return len(deep)


_COUNT_ELEMENTS = etree.XPath("count(.//*)")  # compiled once, not per article


def parse_shallow(html: str) -> tuple[HtmlElement, bool]:
    """`parse_fragment`, with nesting deeper than MAX_DEPTH flattened; True when it was."""
    root = parse_fragment(html)
    # Counted in C: a fragment of fewer elements than MAX_DEPTH cannot nest deeper.
    if cast(float, _COUNT_ELEMENTS(root)) < MAX_DEPTH:
        return root, False
    depth = depth_of(root)
    if depth <= MAX_DEPTH:
        return root, False
    if depth >= _PARSER_DEPTH:
        root = parse_fragment(cut_deep_tags(html))
    flatten_deep(root)
    return root, True


# --- comments -------------------------------------------------------------------------------

_COMMENT = re.compile(r"<!--.*?-->", re.S)


def open_comment(html: str) -> int:
    """Where a `<!--` that is never closed starts, or -1.

    An HTML parser takes everything after it for the comment: the rest of the article
    would vanish without a word.
    """
    position = 0
    while (start := html.find("<!--", position)) >= 0:
        match = _COMMENT.match(html, start)
        if match is None:
            return start
        position = match.end()
    return -1


def close_open_comment(html: str) -> tuple[str, bool]:
    """`html` with an unclosed `<!--` removed, so that the text after it is kept."""
    start = open_comment(html)
    if start < 0:
        return html, False
    return html[:start] + html[start + 4 :], True
