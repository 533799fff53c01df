"""`feedx-convert check BOOK.epub`: what Send to Kindle rejects, found before mailing.

Our own books pass; books broken here on purpose, one way each, are each told by
their own line; the mail limit, by its own.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from goldens import EXAMPLES

from convert.cli import main

Change = Callable[[bytes], bytes]


@pytest.fixture(scope="module")
def our_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' digest, pictures left as links (no network here)."""
    folder = tmp_path_factory.mktemp("book")
    config = folder / "job.yaml"
    config.write_text("download:\n  retries: 0\n  timeout: 1\n", "utf-8")
    book = folder / "examples.epub"
    paths = [str(p) for p in EXAMPLES]
    assert main(["-c", str(config), "epub", *paths, "-o", str(book), "--week", "all"]) == 0
    return book


def broken(book: Path, out: Path, changes: dict[str, Change], drop: tuple[str, ...] = ()) -> Path:
    """A copy of `book` with some members changed (by name pattern) or left out."""
    with zipfile.ZipFile(book) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if any(re.fullmatch(pattern, info.filename) for pattern in drop):
                continue
            data = source.read(info)
            for pattern, change in changes.items():
                if re.fullmatch(pattern, info.filename):
                    data = change(data)
            target.writestr(info, data)
    return out


def check(book: Path, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main([*more, "check", str(book)])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def test_our_books_pass(our_book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = check(our_book, capsys)
    assert (code, lines) == (0, [f"{our_book}: ready for Send to Kindle"])


FIRST_PAGE = r"EPUB/a0001\.xhtml"


def _in_body(markup: bytes) -> Change:
    return lambda data: data.replace(b"</body>", markup + b"</body>", 1)


@pytest.mark.parametrize(
    ("name", "changes", "drop", "said"),
    [
        (
            "no-declaration",
            {FIRST_PAGE: lambda d: d.split(b"?>", 1)[1].lstrip()},
            (),
            "EPUB/a0001.xhtml: no XML declaration naming its encoding",
        ),
        (
            "dead-link",
            {FIRST_PAGE: _in_body(b'<p><a href="a0002.xhtml#nowhere">x</a></p>')},
            (),
            "EPUB/a0001.xhtml: a link to #nowhere in EPUB/a0002.xhtml, which has no such id",
        ),
        (
            "img-without-src",
            {FIRST_PAGE: _in_body(b"<p><img alt=''/></p>")},
            (),
            "EPUB/a0001.xhtml: an <img> without src",
        ),
        (
            "remote-img",
            {FIRST_PAGE: _in_body(b'<p><img src="https://example.org/x.jpg" alt=""/></p>')},
            (),
            "EPUB/a0001.xhtml: an <img> from the web (https://example.org/x.jpg)",
        ),
        (
            "language",
            {
                r"EPUB/content\.opf": lambda d: re.sub(
                    rb"<dc:language>[^<]*<", b"<dc:language>us<", d
                )
            },
            (),
            "dc:language 'us' is not a language Kindle converts",
        ),
        (
            "no-cover",
            {
                r"EPUB/content\.opf": lambda d: re.sub(
                    rb'<meta name="cover"[^>]*>(</meta>)?', b"", d.replace(b"cover-image", b"")
                )
            },
            (),
            'no cover (no manifest item marked cover-image, no <meta name="cover">)',
        ),
    ],
)
def test_each_problem_is_found_by_its_own_line(
    our_book: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    changes: dict[str, Change],
    drop: tuple[str, ...],
    said: str,
) -> None:
    book = broken(our_book, tmp_path / f"{name}.epub", changes, drop)
    code, lines = check(book, capsys)
    assert code == 1
    assert lines == [f"error: {book}: {said}"]


def test_all_problems_at_once_are_each_told(
    our_book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = broken(
        our_book,
        tmp_path / "all.epub",
        {
            FIRST_PAGE: lambda d: _in_body(b"<p><img/><a href='#gone'>x</a></p>")(
                d.split(b"?>", 1)[1]
            ),
            r"EPUB/content\.opf": lambda d: re.sub(rb"<dc:language>[^<]*<", b"<dc:language><", d),
        },
    )
    code, lines = check(book, capsys)
    assert code == 1
    assert sorted(lines) == sorted(
        f"error: {book}: {problem}"
        for problem in (
            "no dc:language (Kindle needs one, such as zh or en)",
            "EPUB/a0001.xhtml: no XML declaration naming its encoding",
            "EPUB/a0001.xhtml: an <img> without src",
            "EPUB/a0001.xhtml: a link to #gone in EPUB/a0001.xhtml, which has no such id",
        )
    )


def test_a_book_over_the_mail_limit_says_what_to_change(
    our_book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "small.yaml"
    config.write_text("kindle:\n  max_mb: 0.1\n", "utf-8")
    code, lines = check(our_book, capsys, "-c", str(config))
    size = our_book.stat().st_size / 1e6
    assert code == 1
    assert lines == [
        f"error: {our_book}: {size:.1f} MB, over the 0.1 MB a mailed book may weigh"
        " (lower epub.budget_mb)"
    ]


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_what_is_not_an_epub_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    book = tmp_path / "fake.epub"
    book.write_bytes(content)
    code, lines = check(book, capsys)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(f"error: {book}: not an EPUB")
