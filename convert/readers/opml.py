"""OPML: a list of feeds, each read in turn as a source of its own."""

from __future__ import annotations

import re

from lxml import etree

from convert.errors import ConvertError
from convert.readers.encoding import decode
from convert.readers.feed import refuse_entity_declarations
from convert.readers.options import ReadOptions
from convert.readers.result import Read
from convert.urls import is_web_url

_OPML = re.compile(r"<opml[\s>]", re.I)
# Entities stay unexpanded and nothing is fetched: the DTD is neither loaded nor used.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def looks_like_opml(head: str) -> bool:
    """True when the root element is `<opml>`."""
    return bool(_OPML.search(head))


def read_opml(data: bytes, where: str, options: ReadOptions) -> Read:
    """The feed URLs (`xmlUrl`) an OPML file lists, in order, each once."""
    text = decode(data, where)
    refuse_entity_declarations(text, where)
    try:
        root = etree.fromstring(re.sub(r"\A\s*<\?xml[^>]*\?>", "", text), parser=_PARSER)
    except etree.XMLSyntaxError as error:
        raise ConvertError(where, f"not well-formed OPML: {error}") from None
    urls = [str(o.get("xmlUrl", "")).strip() for o in root.iter("outline")]
    sources = tuple(dict.fromkeys(url for url in urls if is_web_url(url)))
    if not sources:
        raise ConvertError(where, "the OPML file lists no http(s) feed (xmlUrl)")
    return Read(sources=sources)
