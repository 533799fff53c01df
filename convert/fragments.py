"""Parsing and serializing HTML fragments with lxml, the same way everywhere."""

from __future__ import annotations

import lxml.html
from lxml.html import HtmlElement

from convert.text import remove_invalid_xml

# huge_tree lifts libxml2's silent limits (deep nesting, 10 MB text nodes); the input
# size is capped before parsing instead. Comments and processing instructions are
# never content. The HTML parser resolves no external entities and fetches nothing.
_PARSER = lxml.html.HTMLParser(
    huge_tree=True, remove_comments=True, remove_pis=True, no_network=True
)


def parse_fragment(html: str) -> HtmlElement:
    """The fragment's nodes inside one `<div>` container (empty input gives an empty div).

    Characters XML cannot carry (controls, `&#0;`, `&#xD800;`) are dropped first: lxml
    refuses them, and no output format could hold them.
    """
    html = remove_invalid_xml(html)
    if not html.strip():
        return lxml.html.fragment_fromstring("<div></div>", parser=_PARSER)
    return lxml.html.fragment_fromstring(html, create_parent="div", parser=_PARSER)


def inner_html(container: HtmlElement) -> str:
    """The HTML inside `container`, without the container's own tag."""
    parts = [container.text or ""]
    parts.extend(
        lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in container
    )
    return "".join(parts)


def text_of(element: HtmlElement) -> str:
    """All text inside `element`, as the document reads."""
    return "".join(element.itertext())
