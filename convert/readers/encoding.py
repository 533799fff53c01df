"""Bytes to text without silent mojibake: BOM, strict UTF-8, declared charset, GB18030."""

from __future__ import annotations

import codecs
import logging
import re

from convert.errors import ConvertError
from convert.text import remove_invalid_xml_chars

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


def _unicode_form(data: bytes) -> tuple[str, int] | None:
    """The Unicode form its first bytes show (a byte-order mark, or UTF-16's NULs), and
    how many bytes the mark takes; None when neither shows.

    Without a mark, UTF-16 text that starts with ASCII markup (`<?xml`, `<!--`, `[`)
    has a NUL in every other byte, which no 8-bit encoding has.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    sample = data[:32]
    if len(sample) == 32:
        even, odd = sample[0::2], sample[1::2]
        if not odd.strip(b"\x00") and b"\x00" not in even:
            return "utf-16-le", 0
        if not even.strip(b"\x00") and b"\x00" not in odd:
            return "utf-16-be", 0
    return None


def head_text(data: bytes, size: int = 8192) -> str:
    """The first bytes decoded leniently: enough to recognize a format, never content."""
    head = data[:size]
    form = _unicode_form(head)
    if form is not None:
        codec, skip = form
        return head[skip:].decode(codec, errors="ignore")
    return head.decode("utf-8", errors="ignore")


def decode(data: bytes, where: str) -> str:
    """Decode `data` from `where`, warning when only the GB18030 fallback fits.

    Order: a byte-order mark (or UTF-16's NULs); strict UTF-8; the declared charset;
    GB18030. GB18030 decodes almost any bytes, so it comes last and is reported. A
    file that is partly UTF-8 is read line by line (see `_decode_mixed`). Bytes that
    fit nothing are an error, never replaced characters. Controls that no output can
    carry (NUL, ESC, C1) are dropped.
    """
    return remove_invalid_xml_chars(_decode(data, where))


def _decode(data: bytes, where: str) -> str:
    form = _unicode_form(data)
    if form is not None:
        codec, skip = form
        try:
            return data[skip:].decode(codec)
        except UnicodeDecodeError as error:
            raise ConvertError(
                where, f"invalid {codec} after its byte-order mark (byte {error.start + skip})"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        first_bad = error.start
    declared = declared_charset(data)
    fallback = declared if declared and declared not in {"utf-8", "ascii"} else "gb18030"
    if _UTF8_CJK_RUN.search(data):
        return _decode_mixed(data, where, fallback)
    if fallback != "gb18030":
        try:
            return data.decode(fallback)
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


# Four CJK characters in a row as UTF-8: the file is, at least in part, UTF-8. GBK or
# Big5 text makes this byte pattern by chance about once in a billion positions.
_UTF8_CJK_RUN = re.compile(rb"(?:[\xe3-\xe9][\x80-\xbf]{2}){4}")


def _decode_mixed(data: bytes, where: str, fallback: str) -> str:
    """A file that is partly UTF-8, partly not: each line in the encoding it is in.

    A line that is valid UTF-8 is UTF-8; any other line is read in `fallback` (the
    declared charset, else GB18030), and those lines are named in a warning. A line
    that itself mixes UTF-8 with other bytes cannot be read without mojibake: error.
    """
    lines: list[str] = []
    other: list[int] = []
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        try:
            lines.append(line.decode("utf-8"))
            continue
        except UnicodeDecodeError as error:
            bad = error.start
        if _UTF8_CJK_RUN.search(line):
            raise ConvertError(
                where,
                f"line {number} mixes UTF-8 with bytes of another encoding (byte {bad} of "
                "the line); save the file in one encoding",
            )
        try:
            lines.append(line.decode(fallback))
        except UnicodeDecodeError:
            raise ConvertError(
                where, f"undecodable bytes on line {number}: neither UTF-8 nor {fallback}"
            ) from None
        other.append(number)
    log.warning(
        "%s: mixed encodings: %s not UTF-8, read as %s; the rest as UTF-8",
        where,
        _line_numbers(other),
        fallback.upper(),
    )
    return "".join(lines)


def _line_numbers(numbers: list[int]) -> str:
    """`line 7`, `lines 7-9, 12`: runs of consecutive numbers shortened."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    text = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    plural = len(numbers) > 1
    return f"{'lines' if plural else 'line'} {text} {'are' if plural else 'is'}"
