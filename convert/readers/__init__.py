"""Readers: bytes in, Articles out. One table names them; content picks among them."""

from __future__ import annotations

from collections.abc import Callable

from convert.config import Config
from convert.errors import ConvertError
from convert.model import Article
from convert.readers.encoding import head_text
from convert.readers.feedx import looks_like_feedx, read_feedx

Reader = Callable[[bytes, str, Config], list[Article]]
"""Read the bytes of one input (named by a path or URL for messages) into articles."""

READERS: dict[str, tuple[Reader, Callable[[str], bool]]] = {
    "feedx": (read_feedx, looks_like_feedx),
}
"""Every input format: its reader and the test that recognizes its first bytes as text."""


def reader_named(name: str) -> Reader:
    """The reader registered as `name`; an error lists the valid names."""
    try:
        return READERS[name][0]
    except KeyError:
        valid = ", ".join(sorted(READERS))
        raise ConvertError(name, f"unknown input format (valid: {valid})") from None


def sniff_reader(data: bytes, where: str) -> Reader:
    """The reader whose format the content has."""
    head = head_text(data)
    for reader, recognizes in READERS.values():
        if recognizes(head):
            return reader
    raise ConvertError(
        where, "not a feedx article: expected '<!--epoch-->', '[title](url)' and '------'"
    )
