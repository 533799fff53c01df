"""Feeds: every written feed parses back clean, round-trips, merges and dedupes."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest
from conftest import read_source, run_command
from goldens import EXAMPLES, FEED_EXAMPLES, NOW, ROOT, feed_goldens, feed_outputs

from convert.cli import main
from convert.config import Config, FeedTarget, load_config
from convert.errors import ConvertError
from convert.fsutil import folder_lock
from convert.plan import settings_of
from convert.readers import sniff_reader
from convert.readers.feed import read_xml_feed

ALL_INPUTS = [str(p.relative_to(ROOT)) for p in [*FEED_EXAMPLES, *EXAMPLES]]
FORMATS = ("rss", "atom", "json")
TRACES = ("获取更多RSS", "feedx.", "utm_source=feedx", "images.weserv.nl", "wsrv.nl", ".wp.com")


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def publish(
    out: Path,
    fmt: str,
    sources: list[str] = ALL_INPUTS,
    config: Config | None = None,
) -> bytes:
    target = FeedTarget(path=str(out), format=fmt, self_url=f"https://example.org/{out.name}")
    report = run_command(config or load_config(), sources, "feed", target, now=NOW)
    (output,) = report.outputs
    assert output.written + output.unchanged == [out]
    return out.read_bytes()


def items_of(data: bytes, fmt: str) -> list[dict[str, object]]:
    """The items as feedparser (or json) reads them back; bozo must be 0."""
    if fmt == "json":
        return list(json.loads(data)["items"])
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return list(parsed.entries)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_example_publishes_a_clean_feed(tmp_path: Path, fmt: str) -> None:
    data = publish(tmp_path / f"feed.{fmt}", fmt)
    items = items_of(data, fmt)
    assert len(items) == 11 + len(EXAMPLES)  # every item with text, and every dump
    for item in items:
        assert item.get("title")
        link = str(item.get("link") or item.get("url"))
        assert link.startswith("https://")
        if fmt == "rss":
            assert item.get("id") == link  # the guid
            assert re.search(r"[+-]\d{4}$", str(item["published"]))  # pubDate with a zone
        elif fmt == "atom":
            assert re.search(r"[+-]\d\d:\d\d$", str(item["published"]))
        else:
            assert re.search(r"[+-]\d\d:\d\d$", str(item["date_published"]))
    text = data.decode("utf-8")
    for trace in TRACES:
        assert trace not in text
    for url in re.findall(r'(?:src|href)="([^"]+)"|(?:src|href)=&quot;(.+?)&quot;', text):
        assert "".join(url).startswith(("https://", "http://"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_reading_our_own_feed_and_writing_it_again_changes_nothing(
    tmp_path: Path, fmt: str
) -> None:
    first = publish(tmp_path / f"a.{fmt}", fmt)
    again = publish(tmp_path / f"b.{fmt}", fmt, sources=[str(tmp_path / f"a.{fmt}")])
    assert again.replace(b"b." + fmt.encode(), b"a." + fmt.encode()) == first


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_same_input_twice_gives_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"feed.{fmt}"
    first = publish(out, fmt)
    assert publish(out, fmt) == first  # merged with itself: nothing changes


@pytest.mark.parametrize("example", FEED_EXAMPLES, ids=lambda p: p.stem)
def test_feed_golden_files(example: Path, tmp_path: Path) -> None:
    outputs = feed_outputs(example, tmp_path)
    for kind, path in feed_goldens(example).items():
        assert outputs[kind] == path.read_bytes(), f"{path.name} differs: run make golden"


def test_feed_example_reads_dates_zones_and_editions(config: Config) -> None:
    read = read_source("examples/feedx-nytimes.xml", config)
    assert read.channel is not None
    assert read.channel.title == "纽约时报中文网"
    articles = read.articles
    assert len(articles) == 11
    first = articles[0]
    # feedx: the item's pubDate is the capture, the HTML's pudate the publication.
    assert first.published is not None and first.captured is not None
    assert first.published.isoformat() == "2024-05-26T10:55:03+08:00"
    assert first.captured.isoformat() == "2024-05-26T11:42:18+08:00"
    assert {a.language for a in articles} == {"zh-Hans", "zh-Hant"}
    assert all("获取更多RSS" not in a.body for a in articles)


def test_a_broken_item_gets_one_warning_and_the_rest_publish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        data = publish(tmp_path / "f.xml", "rss", sources=["examples/feedx-nytimes.xml"])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "examples/feedx-nytimes.xml: '大堡礁再现大规模白化，科学家警告珊瑚恢复窗口正在缩小' "
        "has no text after cleaning; not published"
    ]
    assert len(items_of(data, "rss")) == 11


def test_copies_of_one_article_are_one_item(tmp_path: Path) -> None:
    seed = (ROOT / "examples" / "nyt-putin-harbin.txt").read_text("utf-8")
    url = "https://cn.nytimes.com/world/20240520/putin-xi-china-russia-military-ties/"
    tracked = "https://M.CN.NYTIMES.COM/world/20240520/putin-xi-china-russia-military-ties/"
    copy = tmp_path / "copy.txt"
    copy.write_text(seed.replace(url, tracked + "?utm_source=feedx&smid=tw#comments"), "utf-8")
    data = publish(tmp_path / "f.xml", "rss", sources=["examples/nyt-putin-harbin.txt", str(copy)])
    items = items_of(data, "rss")
    assert len(items) == 1


def test_merging_keeps_older_items_up_to_max_items(tmp_path: Path) -> None:
    out = tmp_path / "feed.xml"
    publish(out, "rss")  # everything
    data = publish(out, "rss", sources=["examples/nyt-putin-harbin.txt"])  # one source only
    assert len(items_of(data, "rss")) == 11 + len(EXAMPLES)
    small = dataclasses.replace(
        load_config(), feed=dataclasses.replace(load_config().feed, max_items=5)
    )
    data = publish(out, "rss", sources=["examples/nyt-putin-harbin.txt"], config=small)
    items = items_of(data, "rss")
    assert len(items) == 5
    dates = [i["published_parsed"] for i in items]
    assert dates == sorted(dates, reverse=True)


def test_stale_source_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = FeedTarget(path=str(tmp_path / "f.xml"), self_url="https://e.org/f.xml")
    later = NOW.replace(year=2025)
    with caplog.at_level(logging.WARNING):
        run_command(load_config(), ["examples/feedx-nytimes.xml"], "feed", target, now=later)
    assert "stale source: the newest item is 365 days old" in caplog.text


FEED_WITHOUT_CHANNEL_FIELDS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel>
<item><description>&lt;p&gt;An item with no link and no title.&lt;/p&gt;</description></item>
<item><title>Only a title</title></item>
<item></item>
</channel></rss>"""


def test_missing_fields_get_fallbacks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "bare.xml"
    source.write_bytes(FEED_WITHOUT_CHANNEL_FIELDS)
    with caplog.at_level(logging.WARNING):
        data = publish(tmp_path / "out.xml", "rss", sources=[str(source)])
    assert "item 3: no title and no content; skipped" in caplog.text
    assert "'Only a title' has no text after cleaning; not published" in caplog.text
    items = items_of(data, "rss")
    assert len(items) == 1
    guids = [str(i["id"]) for i in items]
    assert all(g.startswith("urn:feedx-convert:") for g in guids)
    again = publish(tmp_path / "out2.xml", "rss", sources=[str(source)])
    assert [str(i["id"]) for i in items_of(again, "rss")] == guids  # stable
    assert feedparser.parse(data).feed.title == "bare"


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "y">]><rss><channel></channel></rss>',
        b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "x" [<!ENTITY % p SYSTEM "file:///etc/passwd">]>'
        b"<rss/>",
        '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE rss [<!ENTITY x "y">]><rss/>'.encode(
            "utf-16"
        ),
    ],
    ids=["internal-subset", "parameter-entity", "utf-16"],
)
def test_entity_declarations_are_refused(config: Config, data: bytes) -> None:
    with pytest.raises(ConvertError, match="declares entities"):
        sniff_reader(data, "evil.xml")(data, "evil.xml", settings_of(config).reading)


def test_gb18030_feed_declared_utf8_is_redecoded(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>中文频道</title>'
        "<link>https://a.org/</link><item><title>标题一</title><link>https://a.org/1</link>"
        "<description>&lt;p&gt;正文内容&lt;/p&gt;</description></item></channel></rss>"
    )
    with caplog.at_level(logging.WARNING):
        read = read_xml_feed(text.encode("gb18030"), "gbk.xml", settings_of(config).reading)
    assert read.channel is not None and read.channel.title == "中文频道"
    assert read.articles[0].title == "标题一"
    assert "GB18030" in caplog.text


def test_json_feed_and_opml_and_html_are_read(tmp_path: Path, config: Config) -> None:
    json_feed = tmp_path / "f.json"
    json_feed.write_text(
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "J",
                "home_page_url": "https://j.example/",
                "items": [
                    {
                        "id": "1",
                        "url": "https://j.example/1",
                        "title": "One",
                        "content_html": "<p>Hello <script>x()</script>world</p>",
                        "date_published": "2024-05-20T09:00:00+08:00",
                        "authors": [{"name": "Ann"}],
                        "tags": ["t"],
                    }
                ],
            }
        ),
        "utf-8",
    )
    (article,) = read_source(str(json_feed), config).articles
    assert (article.title, article.authors, article.tags) == ("One", ("Ann",), ("t",))
    assert article.body == "<p>Hello world</p>"
    assert article.published is not None
    assert article.published.isoformat() == "2024-05-20T09:00:00+08:00"

    opml = tmp_path / "list.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="a">'
        '<outline xmlUrl="https://feedx.example/a.xml"/><outline xmlUrl="file:///etc/x"/>'
        "</outline></body></opml>",
        "utf-8",
    )
    assert read_source(str(opml), config).names == ("https://feedx.example/a.xml",)

    page = tmp_path / "saved-page.html"
    page.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>站点 - 标题</title>'
        '<meta property="og:title" content="真正的标题">'
        '<meta property="og:url" content="https://www.example.com/news/1?utm_source=x">'
        '<meta property="article:published_time" content="2024-05-21T08:00:00+08:00">'
        '<meta property="og:image" content="https://www.example.com/lead.jpg">'
        "</head><body><nav>菜单</nav><article><h1>真正的标题</h1><p>第一段。</p>"
        "<p>第二段。</p></article><footer>版权</footer></body></html>",
        "utf-8",
    )
    (article,) = read_source(str(page), config).articles
    assert article.title == "真正的标题"
    assert article.url == "https://www.example.com/news/1"
    assert article.body == "<p>第一段。</p><p>第二段。</p>"
    assert article.lead_image is not None
    assert article.lead_image.url == "https://www.example.com/lead.jpg"
    assert article.published is not None
    assert article.published.isoformat() == "2024-05-21T08:00:00+08:00"


def test_html_fragment_without_title_uses_file_name(
    tmp_path: Path, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    fragment = tmp_path / "bare-fragment.html"
    fragment.write_text("<p>只有一段。</p>", "utf-8")
    with caplog.at_level(logging.WARNING):
        (article,) = read_source(str(fragment), config).articles
    assert article.title == "bare-fragment"
    assert "no title" in caplog.text


def test_a_feed_output_that_is_a_symlink_is_not_read_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`feed -o OUT` merges OUT's items: a link planted there to a private feed would have
    published them. The link is not followed; the feed replaces it, the target is intact."""
    private = tmp_path / "private.xml"
    assert main(["feed", str(ROOT / "examples" / "feedx-nytimes.xml"), "-o", str(private)]) == 0
    before = private.read_bytes()
    public = tmp_path / "public.xml"
    public.symlink_to(private)
    wsj = str(ROOT / "examples" / "wsj-no-images.txt")
    assert main(["feed", wsj, "-o", str(public), "--self-url", "https://e.org/p.xml"]) == 0
    assert f"warning: {public}: is a symbolic link; not followed" in capsys.readouterr().err
    assert not public.is_symlink()
    assert len(feedparser.parse(public.read_bytes()).entries) == 1  # only its own item
    assert private.read_bytes() == before


# --- one feed file, two writers ----------------------------------------------------------

NYT = str(ROOT / "examples" / "nyt-putin-harbin.txt")
WSJ = str(ROOT / "examples" / "wsj-no-images.txt")


def feed_process(source: str, out: Path, *more: str) -> subprocess.Popen[str]:
    """`feed SOURCE -o OUT` in a process of its own."""
    command = [sys.executable, "-m", "convert", *more, "feed", source, "-o", str(out)]
    command += ["--self-url", "https://e.org/feed.xml"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def titles(path: Path) -> set[str]:
    return {entry.title for entry in feedparser.parse(path.read_bytes()).entries}


def test_two_processes_writing_one_feed_keep_both_sides_items(tmp_path: Path) -> None:
    """Each merges with the file as the other left it (before: one side's items were lost
    in 4 of 6 trials, both exiting 0)."""
    for trial in range(4):
        out = tmp_path / f"trial-{trial}" / "feed.xml"
        writers = [feed_process(NYT, out), feed_process(WSJ, out)]
        for writer in writers:
            assert writer.wait(60) == 0, writer.communicate()
        assert len(titles(out)) == 2, trial


def test_a_feed_waits_while_another_process_writes_its_folder(tmp_path: Path) -> None:
    """The wait covers the read of the old items: what the other wrote meanwhile is kept."""
    other = tmp_path / "elsewhere" / "feed.xml"
    assert main(["feed", NYT, "-o", str(other), "--self-url", "https://e.org/feed.xml"]) == 0
    out = tmp_path / "public" / "feed.xml"
    out.parent.mkdir()
    with folder_lock(out.parent, 5, "the test"):
        writer = feed_process(WSJ, out)
        time.sleep(1.5)
        assert writer.poll() is None  # waiting, not written
        os.replace(other, out)  # the other process's feed lands
    assert writer.wait(60) == 0, writer.communicate()
    assert len(titles(out)) == 2  # its own item and the other's


def test_a_feed_gives_up_after_lock_wait_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "wait.yaml"
    config.write_text("feed:\n  lock_wait: 0.5\n", "utf-8")
    out = tmp_path / "public" / "feed.xml"
    out.parent.mkdir()
    with folder_lock(out.parent, 5, "the test"):
        writer = feed_process(WSJ, out, "-c", str(config))
        _, err = writer.communicate(timeout=60)
    assert writer.returncode == 1
    assert err.strip().splitlines()[-1] == (
        f"error: {out}: another process is writing into its folder; waited 0.5 s"
    )
    assert not out.exists()
