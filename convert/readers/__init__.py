"""Readers: bytes in, Articles out. One table names them; content picks among them."""

from __future__ import annotations

from collections.abc import Callable

from convert.errors import ConvertError
from convert.readers.encoding import head_text
from convert.readers.feed import (
    looks_like_json_feed,
    looks_like_xml_feed,
    read_json_feed,
    read_xml_feed,
)
from convert.readers.feedx import looks_like_feedx, read_feedx
from convert.readers.html import HTML_ENDINGS, looks_like_html, read_html
from convert.readers.opml import looks_like_opml, read_opml
from convert.readers.options import ReadOptions
from convert.readers.result import Parsed, Read

Reader = Callable[[bytes, str, ReadOptions], Read]
"""Read the bytes of one input (named by a path or URL for messages)."""

READERS: dict[str, tuple[Reader, Callable[[str], bool]]] = {
    # name: (reader, test on the first kilobytes as text), tried in this order
    "feedx": (read_feedx, looks_like_feedx),
    "opml": (read_opml, looks_like_opml),
    "rss-atom": (read_xml_feed, looks_like_xml_feed),
    "json-feed": (read_json_feed, looks_like_json_feed),
    "html": (read_html, looks_like_html),
}
"""Every input format, by name."""

__all__ = [
    "READERS",
    "Parsed",
    "Read",
    "ReadOptions",
    "Reader",
    "is_input",
    "reader_named",
    "sniff_reader",
]


def reader_named(name: str) -> Reader:
    """The reader registered as `name`; an error lists the valid names."""
    try:
        return READERS[name][0]
    except KeyError:
        valid = ", ".join(READERS)
        raise ConvertError(name, f"unknown input format (valid: {valid})") from None


def sniff_reader(data: bytes, where: str) -> Reader:
    """The reader whose format the content has, else the one its name's ending says."""
    reader = _recognized_reader(data, where)
    if reader is None:
        raise ConvertError(
            where,
            "not a feedx article, feed, OPML list or HTML page "
            "(expected '<!--epoch-->' and '[title](url)', <rss>, <feed>, <opml> or HTML tags)",
        )
    return reader


def is_input(data: bytes, where: str) -> bool:
    """True when some reader takes these bytes (by content, or by the name's ending)."""
    return _recognized_reader(data, where) is not None


def _recognized_reader(data: bytes, where: str) -> Reader | None:
    head = head_text(data)
    for reader, recognizes in READERS.values():
        if recognizes(head):
            return reader
    if where.lower().endswith(HTML_ENDINGS):
        return read_html
    return None
