"""Baseline A of bench/epub_digest.py: the same articles through raw ebooklib, nothing else.

    python bench/ebooklib_baseline.py CHAPTERS.json OUT.epub

CHAPTERS.json is a list of {"title", "html", "language"} (the archive's cleaned
article HTML, pictures removed). One EpubHtml chapter per article, a flat table
of contents, EPUB 3 nav and NCX; no cover, no stylesheet, no pictures, no
grouping by day or source, no zip rewrite. Imports only ebooklib, so that the
process's time and peak memory are ebooklib's own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ebooklib import epub


def build(chapters: list[dict[str, str]], out: Path) -> None:
    book = epub.EpubBook()
    book.set_identifier("urn:uuid:00000000-0000-4000-8000-000000000000")
    book.set_title("raw ebooklib baseline")
    book.set_language(chapters[0]["language"] if chapters else "zh-Hans")
    items = []
    for number, chapter in enumerate(chapters, 1):
        item = epub.EpubHtml(
            uid=f"c{number:04d}",
            file_name=f"c{number:04d}.xhtml",
            title=chapter["title"],
            lang=chapter["language"],
        )
        item.content = chapter["html"]
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(out), book, {"raise_exceptions": True})


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    chapters = json.loads(Path(argv[0]).read_text("utf-8"))
    build(chapters, Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
