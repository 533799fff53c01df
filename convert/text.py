"""Plain-text rules shared by readers, cleaning and writers (CJK spacing, safe characters)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

# Characters that are written without spaces between them: Han (with extensions),
# kana, bopomofo, Hangul syllables and compatibility ideographs.
CJK_LETTERS = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
# Full-width punctuation: CJK symbols, full-width forms, vertical and small forms.
CJK_PUNCTUATION = "\u3000-\u303f\ufe10-\ufe1f\ufe30-\ufe6f\uff01-\uff60\uffe0-\uffee"
CJK = CJK_LETTERS + CJK_PUNCTUATION

# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF),
# and the controls it only discourages (DEL, C1: U+0085 breaks Pillow's text layout,
# U+009B is a terminal's CSI). nh3 keeps them all and lxml, feedgen, ebooklib then
# fail, so they go first; no text is ever written with them. U+FFFD too: it stands
# for bytes or a reference that were no character (the decoder said so), and tells a
# reader nothing but that.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffd\ufffe\uffff]")
# Explicit bidi embeddings, overrides and isolates. A one-line field has no paragraph
# to end them, so an override there reverses whatever is shown after it (a file list,
# a table of contents): `\u202egnp.exe` reads as `exe.png`.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# HTML's own white space, which collapses; U+3000 and NBSP are meaningful and stay.
_HTML_SPACE = " \t\n\r\f"
_SPACE_RUN = re.compile(f"[{_HTML_SPACE}]+")
# Line and paragraph separators end a line, which a one-line text has not: a space.
_SEPARATORS = re.compile("[\u2028\u2029]")
# Terminal-hostile characters: controls, bidi marks and overrides, line separators and
# lone surrogates (which a UTF-8 terminal stream cannot even encode), shown escaped.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def remove_invalid_xml_chars(text: str) -> str:
    """Drop the characters that XML 1.0 cannot carry, and the C1 and DEL controls."""
    return _XML_INVALID.sub("", text)


_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")


def _keep_valid_reference(match: re.Match[str]) -> str:
    hexa, decimal = match.groups()
    code = int(hexa, 16) if hexa else int(decimal)
    valid = (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0x10FFFF
    )
    return match.group() if valid and code not in (0xFFFE, 0xFFFF) else ""


def remove_invalid_xml(html: str) -> str:
    """HTML without characters XML cannot carry, written plainly or as `&#...;` references."""
    return _CHAR_REF.sub(_keep_valid_reference, remove_invalid_xml_chars(html))


# What plain_text changes: controls (white space among them), bidi marks, what XML
# forbids. Text without any is plain already (most captions, names and titles).
_NOT_PLAIN = re.compile(
    "[\x00-\x20\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffd\ufffe\uffff]"
)


def plain_text(text: str) -> str:
    """One line of clean text: XML-safe, no bidi overrides, white space collapsed, CJK tidied."""
    if not _NOT_PLAIN.search(text):
        return text.strip()  # str.strip also strips Unicode spaces (U+3000, NBSP)
    text = _SEPARATORS.sub(" ", _BIDI_CONTROLS.sub("", remove_invalid_xml_chars(text)))
    return tidy_cjk_spacing(_SPACE_RUN.sub(" ", text)).strip()


# A character that plain_text keeps and str.strip does not take away (`\s` is
# str.isspace's white space in a str pattern).
_VISIBLE = re.compile(
    "[^\\s\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffd\ufffe\uffff]"
)


def has_text(text: str) -> bool:
    """True when `plain_text(text)` would not be empty (without tidying all of it)."""
    return _VISIBLE.search(text) is not None


# A white-space run between two CJK characters, or touching full-width punctuation,
# is an artefact of line wrapping or of careless editing: Chinese puts no space there.
# The runs are found first and their neighbours checked after: a look-behind over a
# large character class at every position of the text costs ten times as much.
CJK_CHAR = re.compile(f"[{CJK}]")
CJK_PUNCTUATION_CHAR = re.compile(f"[{CJK_PUNCTUATION}]")
_SPACE_RUN_WITH_NEWLINE = re.compile(f"[{_HTML_SPACE.replace(chr(10), '')}]*\n[{_HTML_SPACE}]*")


def between(match: re.Match[str], char: re.Pattern[str]) -> bool:
    """True when the characters on both sides of `match` are of the class `char`."""
    text, start, end = match.string, match.start(), match.end()
    return (
        start > 0
        and end < len(text)
        and bool(char.match(text, start - 1))
        and bool(char.match(text, end))
    )


def touches(match: re.Match[str], char: re.Pattern[str]) -> bool:
    """True when the character before or after `match` is of the class `char`."""
    text, start, end = match.string, match.start(), match.end()
    return bool(char.match(text, end)) or (start > 0 and bool(char.match(text, start - 1)))


def tidy_cjk_spacing(text: str) -> str:
    """Remove white space that Chinese typography does not have.

    Spaces next to full-width punctuation go, and so does a line break between
    two CJK characters (it came from wrapping the source); a plain space between
    two ideographs is kept, since a source may separate names with it.
    """
    if "\n" in text:
        text = _SPACE_RUN_WITH_NEWLINE.sub(
            lambda m: "" if between(m, CJK_CHAR) else m.group(), text
        )
    return _SPACE_RUN.sub(lambda m: "" if touches(m, CJK_PUNCTUATION_CHAR) else m.group(), text)


def printable(text: str, *, keep_lines: bool = False) -> str:
    """`text` safe to show on a terminal: controls and bidi overrides escaped.

    With `keep_lines`, line breaks and tabs stay as they are (a whole document).
    """

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if keep_lines and char in "\n\t":
            return char
        return char.encode("unicode_escape").decode("ascii")

    return _UNPRINTABLE.sub(escape, text)


# What may not stand raw in a URL: controls, white space, `"`, `<`, `>` and `\`,
# the invisible bidi and line-separator marks that make a URL read as another one,
# and the noncharacters XML cannot carry. Percent-encoded as UTF-8, as a browser
# would send them.
_URL_UNSAFE = re.compile(
    r'[\x00-\x20"<>\\\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff'
    r"\ufffe\uffff]"
)


def escape_url_characters(url: str) -> str:
    """`url` without surrounding white space, what may not stand raw in it percent-encoded."""
    return _URL_UNSAFE.sub(lambda m: quote(m.group(), safe=""), url.strip())


def ascii_slug(text: str, max_length: int = 80) -> str:
    """Lower-case ASCII words joined by `-`, at most `max_length` characters."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:max_length].rstrip("-")
