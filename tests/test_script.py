"""`script:`: each reader's Chinese script, the other one converted with OpenCC.

Only what people read is converted (titles, text, captions, credits, names), never
addresses, markup or code; the edition already in the asked-for script wins; `keep`
changes nothing (the goldens are made with it).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import feedparser
import opencc
import pytest
from goldens import ROOT

from convert.cli import main
from convert.model import Article
from convert.script import in_script, script_of

HANT_EXAMPLE = ROOT / "examples" / "nyt-zh-hant.txt"
EXAMPLES = sorted(str(p) for p in (ROOT / "examples").glob("*.txt"))
T2S = opencc.OpenCC("t2s")


def book_of(tmp_path: Path, script: str, inputs: list[str], name: str) -> dict[str, bytes]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"epub:\n  script: {script}\ndownload:\n  retries: 0\n", "utf-8")
    book = tmp_path / f"{name}.epub"
    assert main(["-c", str(config), "epub", *inputs, "-o", str(book), "--week", "all"]) == 0
    with zipfile.ZipFile(book) as opened:
        return {n: opened.read(n) for n in opened.namelist()}


def hant_title() -> str:
    match = re.search(r"^\[(.+?)\]\(", HANT_EXAMPLE.read_text("utf-8"), re.M)
    assert match is not None
    return match.group(1)


def test_a_simplified_digest_converts_the_traditional_chapter_its_nav_and_cover(
    tmp_path: Path,
) -> None:
    """The examples' W21 book had a zh-Hant chapter among zh-Hans ones, and its title
    in the contents and on the cover."""
    title = hant_title()
    simplified = T2S.convert(title)
    assert simplified != title
    kept = book_of(tmp_path, "keep", EXAMPLES, "kept")
    book = book_of(tmp_path, "zh-Hans", EXAMPLES, "simplified")
    pages = {n: d.decode("utf-8") for n, d in book.items() if n.endswith(".xhtml")}
    assert any(title in d.decode("utf-8") for n, d in kept.items() if n.endswith(".xhtml"))
    assert not any(title in page for page in pages.values())
    (chapter,) = [n for n, page in pages.items() if f"<h1>{simplified}</h1>" in page]
    assert 'lang="zh-Hans"' in pages[chapter]
    assert simplified in pages["EPUB/nav.xhtml"] and simplified in pages["EPUB/contents.xhtml"]
    assert "<dc:language>zh-Hans</dc:language>" in book["EPUB/content.opf"].decode()
    # Its body is Simplified too, word for word what OpenCC makes of it.
    body = re.sub(r"<[^>]+>", "", pages[chapter])
    assert T2S.convert(body) == body
    # The cover: drawn from the converted headline, the same as a book of the chapter
    # written in Simplified from the start.
    alone = book_of(tmp_path, "zh-Hans", [str(HANT_EXAMPLE)], "alone")
    written = tmp_path / "written-simplified.txt"
    written.write_text(T2S.convert(HANT_EXAMPLE.read_text("utf-8")), "utf-8")
    from_start = book_of(tmp_path, "keep", [str(written)], "from-start")
    assert alone["EPUB/cover.jpg"] == from_start["EPUB/cover.jpg"]
    assert (
        alone["EPUB/cover.jpg"]
        != book_of(tmp_path, "keep", [str(HANT_EXAMPLE)], "hant")["EPUB/cover.jpg"]
    )


def test_keep_changes_nothing(tmp_path: Path) -> None:
    default = book_of(tmp_path, "keep", EXAMPLES, "keep")
    config = tmp_path / "plain.yaml"
    config.write_text("download:\n  retries: 0\n", "utf-8")
    book = tmp_path / "plain.epub"
    assert main(["-c", str(config), "epub", *EXAMPLES, "-o", str(book), "--week", "all"]) == 0
    with zipfile.ZipFile(book) as opened:
        assert {n: opened.read(n) for n in opened.namelist()} == default


def test_markdown_converts_words_never_addresses_markup_or_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '<html lang="zh-Hant"><head><title>臺灣軟體發展</title>'
        '<link rel="canonical" href="https://example.tw/軟體/"></head><body>'
        "<article><h1>臺灣軟體發展</h1><p>這個軟體的<a href='https://example.tw/發展' "
        "title='發展'>發展</a>很快。</p><p><code>print('繁體')</code>之後還有說明。</p>"
        "</article></body></html>",
        "utf-8",
    )
    capsys.readouterr()
    assert main(["markdown", str(page), "--script", "zh-Hans", "-o", "-"]) == 0
    text = capsys.readouterr().out
    assert "title: 台湾软体发展" in text  # zh-Hant without a region: t2s, no vocabulary
    assert "language: zh-Hans\nconverted_from: zh-Hant\n" in text
    # The address as written (in RFC 3986 form), the link's title attribute too.
    assert '这个软体的[发展](https://example.tw/%E7%99%BC%E5%B1%95 "發展")很快' in text
    assert "`print('繁體')`之后还有说明" in text  # code as written, the prose after it not


def test_the_edition_in_the_feeds_script_wins_unconverted(tmp_path: Path) -> None:
    def dump(path: str, title: str, text: str) -> str:
        name = tmp_path / f"{len(list(tmp_path.iterdir()))}.txt"
        name.write_text(
            f"<!--1716540598000-->\n[{title}](https://cn.nytimes.com/china/20240524/story/{path})"
            f'\n------\n\n<time pudate="2024-05-24 16:08:33">2024年5月24日</time><p>{text}</p>',
            "utf-8",
        )
        return str(name)

    editions = [
        dump(
            "", "简体版标题", "这是简体中文版本的报道正文，讲述了一个城市的变化和人们的生活。" * 3
        ),
        dump(
            "zh-hant/",
            "繁體版標題",
            "這是繁體中文版本的報導正文，講述了一個城市的變化和人們的生活。" * 3,
        ),
    ]
    for script, title in (("zh-Hant", "繁體版標題"), ("zh-Hans", "简体版标题")):
        out = tmp_path / f"{script}.xml"
        assert main(["feed", *editions, "-o", str(out), "--script", script]) == 0
        (entry,) = feedparser.parse(out.read_bytes()).entries
        assert entry.title == title  # its own words, not the other edition converted


@pytest.mark.parametrize(
    ("language", "script"),
    [
        ("zh-Hans", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-Hant", "zh-Hant"),
        ("zh-TW", "zh-Hant"),
        ("zh-Hant-HK", "zh-Hant"),
        ("zh_HK", "zh-Hant"),
        ("en", None),
        ("und", None),
        ("ja", None),
    ],
)
def test_the_script_of_a_language_tag(language: str, script: str | None) -> None:
    assert script_of(language) == script


def test_articles_in_other_languages_are_left_alone() -> None:
    article = Article(
        id="x",
        title="Cafe",
        url="",
        canonical_url="",
        language="ja",
        source_name="s",
        source_host="",
        body="<p>軟體</p>",
    )
    assert in_script(article, "zh-Hans") is article


def test_taiwan_vocabulary_where_opencc_has_it() -> None:
    article = Article(
        id="x",
        title="软件和鼠标",
        url="",
        canonical_url="",
        language="zh-Hans",
        source_name="s",
        source_host="",
        body="<p>软件</p>",
        authors=("张伟",),
    )
    taiwan = in_script(article, "zh-Hant-TW")
    assert (taiwan.title, taiwan.body, taiwan.authors) == ("軟體和滑鼠", "<p>軟體</p>", ("張偉",))
    assert (taiwan.language, taiwan.converted_from) == ("zh-Hant-TW", "zh-Hans")
    assert in_script(article, "zh-Hant").title == "軟件和鼠標"
