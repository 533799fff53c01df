"""Bytes to text without silent mojibake: BOM, strict UTF-8, declared charset, GB18030."""

from __future__ import annotations

import codecs
import logging
import re

from convert.errors import ConvertError

log = logging.getLogger(__name__)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# <meta charset="gbk">, <meta ... content="text/html; charset=gbk">, <?xml encoding="gbk"?>
_DECLARED = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.I)


def declared_charset(data: bytes) -> str | None:
    """The charset the document declares in its first kilobytes, if Python knows it."""
    match = _DECLARED.search(data[:4096])
    if not match:
        return None
    name = match.group(1).decode("ascii").lower()
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def head_text(data: bytes, size: int = 8192) -> str:
    """The first bytes decoded leniently: enough to recognize a format, never content."""
    head = data[:size]
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="ignore")
    return head.decode("utf-8", errors="ignore")


def decode(data: bytes, where: str) -> str:
    """Decode `data` from `where`, warning when only the GB18030 fallback fits.

    Order: a byte-order mark; strict UTF-8; the declared charset; GB18030. GB18030
    decodes almost any bytes, so it comes last and is reported. Bytes that fit none
    are an error, never replaced characters.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as error:
                raise ConvertError(
                    where,
                    f"invalid {codec} after its byte-order mark (byte {error.start + len(bom)})",
                ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        first_bad = error.start
    declared = declared_charset(data)
    if declared and declared not in {"utf-8", "ascii"}:
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as error:
        raise ConvertError(
            where,
            f"undecodable bytes: neither UTF-8 (byte {first_bad}) nor GB18030 (byte {error.start})",
        ) from None
    log.warning("%s: not valid UTF-8 (byte %d); read as GB18030", where, first_bad)
    return text
