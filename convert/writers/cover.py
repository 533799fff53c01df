"""The digest's cover: masthead, period, dates and lead headlines, drawn with Pillow.

A CJK font is used when the machine has one (the Makefile installs
fonts-wqy-microhei); without one the cover keeps only what the fallback font can
draw (Latin text) instead of showing boxes.
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from convert.model import Digest

WIDTH, HEIGHT = 1600, 2400
MARGIN = 120
INK, PAPER, ACCENT = (20, 20, 20), (250, 248, 242), (150, 30, 30)
# Where Debian, Fedora, macOS and users keep fonts; names that carry CJK glyphs.
_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/System/Library/Fonts",
    "/Library/Fonts",
)
_CJK_NAMES = (
    "wqy-microhei",
    "wqy-zenhei",
    "notosanscjk",
    "notoserifcjk",
    "sourcehansans",
    "sourcehanserif",
    "droidsansfallback",
    "pingfang",
    "hiragino",
    "arphic",
    "ukai",
    "uming",
)
_HEADLINES = 6
# Unicode categories that are never drawn: see `_Fonts.drawable`.
_NOT_DRAWN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _candidates() -> Iterator[Path]:
    configured = os.environ.get("FEEDX_CJK_FONT")
    if configured:
        yield Path(configured)
    for folder in _FONT_DIRS:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            name = path.name.lower().replace("-", "").replace("_", "")
            if path.suffix.lower() in (".ttf", ".ttc", ".otf") and any(
                key.replace("-", "") in name for key in _CJK_NAMES
            ):
                yield path


def _drawn(font: ImageFont.FreeTypeFont, text: str) -> bytes:
    canvas = Image.new("L", (64, 64))
    ImageDraw.Draw(canvas).text((4, 4), text, font=font, fill=255)
    return canvas.tobytes()


def find_cjk_font() -> Path | None:
    """A font file that draws Chinese, or None ($FEEDX_CJK_FONT is tried first)."""
    for path in _candidates():
        try:
            font = ImageFont.truetype(str(path), 40)
        except OSError:
            continue
        # A font without the glyphs draws the same "missing" box for both characters.
        if _drawn(font, "中") != _drawn(font, "文"):
            return path
    return None


class _Fonts:
    """One typeface at the sizes the cover uses; `cjk` says whether it draws Chinese."""

    def __init__(self, path: Path | None) -> None:
        self.cjk = path is not None

        def at(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
            if path is not None:
                return ImageFont.truetype(str(path), size)
            return ImageFont.load_default(size)

        self.masthead, self.period, self.body, self.small = at(150), at(72), at(56), at(40)

    def drawable(self, text: str) -> str:
        """`text` as this font can draw it: all of it with CJK, else its ASCII part.

        Controls, format characters (bidi marks, a BOM), line and paragraph separators,
        surrogates and private or unassigned code points go either way: none is drawn,
        and raqm's layout fails on some (U+2029, U+0085).
        """
        text = "".join(ch for ch in text if unicodedata.category(ch) not in _NOT_DRAWN)
        if self.cjk:
            return text
        return "".join(ch for ch in text if ch.isascii()).strip()


def _wrap(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: int,
    max_lines: int,
) -> list[str]:
    """At most `max_lines` lines no wider than `width`; Chinese breaks anywhere, so by
    character. The rest of a long text is never measured."""
    lines: list[str] = []
    line = ""
    for char in text:
        try:
            wide = draw.textlength(line + char, font=font) > width
        except RuntimeError:  # a sequence the layout engine cannot shape: leave it out
            continue
        if wide and line:
            lines.append(line)
            if len(lines) == max_lines:
                return lines
            line = char.lstrip()
        else:
            line += char
    if line:
        lines.append(line)
    return lines


def render_cover(digest: Digest, font_path: Path | None) -> bytes:
    """The cover as a JPEG: masthead, period, date range, lead headlines, article count."""
    fonts = _Fonts(font_path)
    picture = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(picture)
    width = WIDTH - 2 * MARGIN
    y = MARGIN + 40
    masthead = fonts.drawable(digest.name) or "feedx digest"
    for line in _wrap(draw, masthead, fonts.masthead, width, 2):
        draw.text((MARGIN, y), line, font=fonts.masthead, fill=INK)
        y += 180
    draw.rectangle((MARGIN, y + 10, WIDTH - MARGIN, y + 22), fill=ACCENT)
    y += 70
    draw.text((MARGIN, y), digest.label, font=fonts.period, fill=ACCENT)
    y += 100
    dates = f"{digest.start.isoformat()} – {digest.end.isoformat()}"
    draw.text(
        (MARGIN, y),
        fonts.drawable(dates) if fonts.cjk else dates.replace("–", "-"),
        font=fonts.small,
        fill=INK,
    )
    y += 120
    for article in digest.articles[:_HEADLINES]:
        title = fonts.drawable(article.title)
        if not title:
            continue
        lines = _wrap(draw, title, fonts.body, width, 2)
        if y + 80 * len(lines) > HEIGHT - 260:
            break
        for line in lines:
            draw.text((MARGIN, y), line, font=fonts.body, fill=INK)
            y += 76
        y += 40
    count = f"{len(digest.articles)} articles" if not fonts.cjk else f"共 {len(digest.articles)} 篇"
    draw.text((MARGIN, HEIGHT - MARGIN - 60), count, font=fonts.small, fill=INK)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=88, optimize=True)
    return out.getvalue()
