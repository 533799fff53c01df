"""Every command is the main job with one output: the same inputs and options give the
same bytes, whether a command's flags or config.yaml's `outputs:` say them.

Each test runs a command and `run` with a config that says the same, in fresh work
folders holding the same inputs, and compares what they wrote byte for byte.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
from goldens import ROOT
from PIL import Image
from pytest_httpserver import HTTPServer

from convert.cli import main
from convert.config import load_config
from convert.plan import plan_of_config
from convert.run import run_plan

EXAMPLES = ROOT / "examples"
SELF_URL = "https://example.org/feeds/news.xml"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the examples in `in/`, as cwd."""
    shutil.copytree(EXAMPLES, tmp_path / "in", ignore=shutil.ignore_patterns("*.md"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def add_copies(folder: Path) -> None:
    """A second copy of one article (http, `m.`, tracking parameters, no trailing slash)."""
    seed = (folder / "nyt-putin-harbin.txt").read_text("utf-8")
    url = "https://cn.nytimes.com/world/20240520/putin-xi-china-russia-military-ties/"
    copy = "http://m.cn.nytimes.com/world/20240520/putin-xi-china-russia-military-ties?utm_source=feedx"
    (folder / "zz-copy-of-putin.txt").write_text(seed.replace(url, copy), "utf-8")


def test_markdown_command_and_job_write_the_same_folder(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_copies(work / "in")
    assert main(["markdown", "in", "-o", "by-command"]) == 0
    command_err = capsys.readouterr().err
    job = write_config(
        work / "job.yaml",
        "sources:\n  - path: in\noutputs:\n  - markdown: {folder: by-job}\n",
    )
    assert main(["run", "-c", str(job), "--archive", "archive.sqlite"]) == 0
    job_err = capsys.readouterr().err
    by_command, by_job = files_of(work / "by-command"), files_of(work / "by-job")
    assert by_command == by_job
    # The copy is written once, the Traditional edition is its own file: the 7 files
    # and the feed's 11 items with text.
    assert len(by_command) == 7 + 11
    assert not any(name.endswith("-2.md") for name in by_command)
    assert any("japan-rural-schools-closing-zh-hant" in name for name in by_command)
    for err in (command_err, job_err):
        assert "zz-copy-of-putin.txt" not in err or "the same article as" in err
        assert "the same article as https://cn.nytimes.com/world/20240520/putin" in err


def test_feed_command_and_job_write_the_same_feed(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["-o", "by-command.xml", "--self-url", SELF_URL, "--title", "我的新闻"]
    assert main(["feed", "in/feedx-nytimes.xml", "in", *argv]) == 0
    job = write_config(
        work / "job.yaml",
        "sources:\n  - path: in/feedx-nytimes.xml\n  - path: in\n"
        "outputs:\n"
        f"  - feed: {{path: by-job.xml, self_url: '{SELF_URL}', title: 我的新闻}}\n",
    )
    assert main(["run", "-c", str(job), "--archive", "archive.sqlite"]) == 0
    capsys.readouterr()
    command, job_feed = (work / "by-command.xml").read_bytes(), (work / "by-job.xml").read_bytes()
    assert command == job_feed
    assert b"<title>\xe6\x88\x91\xe7\x9a\x84\xe6\x96\xb0\xe9\x97\xbb</title>" in command


def test_a_mixed_feed_is_named_by_the_config_or_after_the_tool(work: Path) -> None:
    assert main(["feed", "in", "-o", "mixed.xml", "--self-url", SELF_URL]) == 0
    text = (work / "mixed.xml").read_text("utf-8")
    # NYT, BBC, WSJ and Zaobao items: named after none of them, linked to itself.
    assert "<title>feedx-convert</title>" in text
    assert f"<link>{SELF_URL}</link>" in text
    assert "cn.nytimes.com/</link>" not in text
    assert main(["feed", "in", "-o", "nowhere.xml"]) == 1
    assert not (work / "nowhere.xml").exists()


def test_one_feed_keeps_its_own_title_and_home(work: Path) -> None:
    assert main(["feed", "in/feedx-nytimes.xml", "-o", "one.xml", "--self-url", SELF_URL]) == 0
    text = (work / "one.xml").read_text("utf-8")
    assert "<title>纽约时报中文网</title>" in text
    assert "<link>https://cn.nytimes.com/</link>" in text  # the channel's, made canonical


@pytest.fixture
def pictures(httpserver: HTTPServer) -> HTTPServer:
    """Every picture address answers with a small colour JPEG."""
    image = Image.new("RGB", (64, 48), (200, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    httpserver.expect_request("").respond_with_data(buffer.getvalue(), content_type="image/jpeg")
    return httpserver


def epub_config(work: Path, server: HTTPServer, outputs: str = "") -> Path:
    """Pictures from the local server; vertical and gray set in the `epub:` section."""
    mirror = server.url_for("/mirror/") + "{host}{path}"
    return write_config(
        work / "job.yaml",
        f"image_mirror: '{mirror}'\n"
        f"download: {{allow_private: true, retries: 0, cache_dir: '{work / 'cache'}'}}\n"
        "epub: {vertical: true, grayscale: true}\n"
        "sources:\n  - path: in\n"
        f"outputs:\n{outputs}",
    )


def test_epub_command_and_job_write_the_same_book(
    work: Path, pictures: HTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = epub_config(work, pictures, "  - epub: {path: by-job.epub, week: 2024-W21}\n")
    assert main(["run", "-c", str(config), "--archive", "archive.sqlite"]) == 0
    # From the archive the job filled, as `epub --week` reads it...
    argv = ["-c", str(config), "epub", "--archive", "archive.sqlite", "--week", "2024-W21"]
    assert main([*argv, "-o", "from-archive.epub"]) == 0
    # ... and from the same files, read by the command itself.
    assert (
        main(["-c", str(config), "epub", "in", "--week", "2024-W21", "-o", "from-files.epub"]) == 0
    )
    capsys.readouterr()
    book = (work / "by-job.epub").read_bytes()
    assert (work / "from-archive.epub").read_bytes() == book
    assert (work / "from-files.epub").read_bytes() == book
    with zipfile.ZipFile(io.BytesIO(book)) as opened:
        names = opened.namelist()
        assert "EPUB/styles/vertical.css" in names  # epub.vertical from the section
        assert 'page-progression-direction="rtl"' in opened.read("EPUB/content.opf").decode()
        shown = [n for n in names if n.startswith("EPUB/images/")]
        assert shown
        for name in shown:  # epub.grayscale from the section
            with Image.open(io.BytesIO(opened.read(name))) as picture:
                assert picture.mode == "L", name


def test_the_command_flags_win_over_the_section(work: Path, pictures: HTTPServer) -> None:
    config = epub_config(work, pictures)
    argv = ["-c", str(config), "epub", "in", "--horizontal", "--color", "-o", "flags.epub"]
    assert main(argv) == 0
    with zipfile.ZipFile(work / "flags.epub") as opened:
        assert "EPUB/styles/vertical.css" not in opened.namelist()


def test_inspect_and_an_articles_output_write_the_same_json(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "in/nyt-putin-harbin.txt"]) == 0
    printed = capsys.readouterr().out
    job = write_config(
        work / "job.yaml",
        "sources:\n  - path: in/nyt-putin-harbin.txt\n"
        "outputs:\n  - articles: {path: articles.json}\n",
    )
    assert main(["run", "-c", str(job), "--archive", "archive.sqlite", "-q"]) == 0
    assert (work / "articles.json").read_text("utf-8") == printed
    assert json.loads(printed)["title"].startswith("普京访问哈工大")


# --- one vocabulary: what the job accepts, every command accepts ------------------------


def test_markdown_takes_a_folder_and_prints_to_dash(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = work / "one"
    folder.mkdir()
    shutil.copy(work / "in" / "wsj-no-images.txt", folder)
    assert main(["markdown", str(folder), "-o", "-"]) == 0
    assert capsys.readouterr().out.startswith("---\ntitle: ")
    assert not (work / "-").exists()


def test_feed_to_dash_is_standard_output_and_an_epub_to_dash_is_refused(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feed", "in/feedx-nytimes.xml", "-o", "-", "--self-url", SELF_URL]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("<?xml") and "<rss" in printed
    assert not (work / "-").exists()
    assert main(["epub", "in", "-o", "-"]) == 2
    assert "an EPUB is a file" in capsys.readouterr().err
    assert not (work / "-").exists()


def test_every_period_spelling_of_the_config_works_on_the_command_line(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `latest`: the week of the newest article (the examples' week, 2024-W21).
    assert main(["epub", "in", "--week", "latest", "-o", "latest.epub"]) == 0
    with zipfile.ZipFile(work / "latest.epub") as opened:
        assert "2024-W21" in opened.read("EPUB/content.opf").decode()
    assert main(["epub", "in", "--week", "all", "-o", "all.epub"]) == 0
    assert main(["epub", "in", "--week", "2024W99", "-o", "bad.epub"]) == 2
    assert "no such week" in capsys.readouterr().err


def test_a_book_from_an_empty_archive_names_the_week_it_looked_for(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", "in/wsj-no-images.txt", "--archive", "a.sqlite"]) == 0
    assert main(["epub", "--archive", "a.sqlite", "--week", "2023-W01", "-o", "x.epub"]) == 1
    err = capsys.readouterr().err
    assert "no articles for 2023-W01" in err and "the inputs" not in err


def test_the_summary_in_a_pipe_names_every_path_in_full(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = "public/" + "a-rather-long-folder-name/" * 4
    job = write_config(
        work / "job.yaml",
        "sources:\n  - path: in\n  - {path: in/missing.txt, name: missing}\noutputs:\n"
        + "".join(
            f"  - feed: {{path: {deep}feed-{n}.xml, self_url: '{SELF_URL}'}}\n" for n in range(3)
        ),
    )
    assert main(["run", "-c", str(job), "--archive", "archive.sqlite"]) == 1
    out = capsys.readouterr().out
    for n in range(3):
        assert str(work / deep / f"feed-{n}.xml") in out
    assert "…" not in out
    (missing,) = [line for line in out.splitlines() if line.startswith("missing ")]
    assert missing.split() == ["missing", "0", "-", "0", "0", "0", "1"]  # read … failed


def test_a_dry_run_names_the_files_that_would_change(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_config(
        work / "job.yaml",
        "sources:\n  - path: in/wsj-no-images.txt\n"
        f"outputs:\n  - feed: {{path: out/feed.xml, self_url: '{SELF_URL}'}}\n"
        "  - markdown: {folder: out/md}\n",
    )
    assert main(["run", "-c", str(job), "--archive", "archive.sqlite", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would write 2 files:" in out
    assert str(work / "out" / "feed.xml") in out
    assert (
        str(
            work
            / "out"
            / "md"
            / "2024-05-25-articles-china-central-bank-rate-cut-dilemma-fed-21384756.md"
        )
        in out
    )
    assert not (work / "out").exists()


def test_progress_covers_every_stage(work: Path, pictures: HTTPServer) -> None:
    """Reading, then each output in turn (the EPUB's pictures too), not reading alone."""
    phases: list[tuple[str, int]] = []
    done: dict[str, int] = {}

    def progress(label: str, total: int) -> Callable[[], None]:
        phases.append((label, total))

        def step() -> None:
            done[label] = done.get(label, 0) + 1

        return step

    config = epub_config(
        work,
        pictures,
        f"  - feed: {{path: out/feed.xml, self_url: '{SELF_URL}'}}\n"
        "  - markdown: {folder: out/md}\n"
        "  - epub: {path: out/book.epub, week: 2024-W21}\n",
    )
    plan = plan_of_config(load_config(config), archive=work / "archive.sqlite")
    report = run_plan(plan, progress)
    assert not report.failed
    labels = [label for label, _total in phases]
    assert labels[0] == "Reading" and dict(phases)["Reading"] == 8  # the folder's 8 files
    writing = [label for label in labels if label.startswith("Writing ")]
    assert writing == [
        f"Writing {work / 'out' / 'feed.xml'}",
        f"Writing {work / 'out' / 'md'}",
        f"Writing {work / 'out' / 'book.epub'}",
    ]
    assert labels.index("Pictures") > labels.index(writing[1])  # while the book is made
    assert all(done.get(label) == total for label, total in phases)  # every bar filled


def test_one_feed_without_items_or_home_page_is_still_named_after_itself(work: Path) -> None:
    """Found by running every feed of feedparser's and podcastparser's suites through
    the old and the new code: a single feed keeps its own title even when it has no
    item, and without a <link> it links to its first item's site."""
    empty = write_config(
        work / "empty.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Example Feed</title>'
        "<description>A podcast</description></channel></rss>",
    )
    unlinked = write_config(
        work / "unlinked.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>No home</title>'
        "<item><title>One</title><link>https://news.example.com/a/1</link>"
        "<description>&lt;p&gt;Text.&lt;/p&gt;</description></item></channel></rss>",
    )
    assert main(["feed", str(empty), "-o", "empty-out.xml", "--self-url", SELF_URL]) == 0
    text = (work / "empty-out.xml").read_text("utf-8")
    assert "<title>Example Feed</title>" in text and "<description>A podcast</description>" in text
    assert main(["feed", str(unlinked), "-o", "unlinked-out.xml", "--self-url", SELF_URL]) == 0
    assert "<link>https://news.example.com/</link>" in (work / "unlinked-out.xml").read_text(
        "utf-8"
    )


def test_each_input_is_read_and_cleaned_once_for_all_outputs(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The feed example's item without text is said once, though five outputs take it."""
    job = write_config(
        work / "job.yaml",
        "sources:\n  - path: in/feedx-nytimes.xml\noutputs:\n"
        f"  - feed: {{path: out/a.xml, self_url: '{SELF_URL}'}}\n"
        f"  - feed: {{path: out/b.atom, format: atom, self_url: '{SELF_URL}'}}\n"
        "  - markdown: {folder: out/md}\n"
        "  - articles: {path: out/articles.json}\n"
        "  - epub: {path: out/book.epub, week: 2024-W21, pictures: false}\n",
    )
    assert main(["run", "-c", str(job), "--archive", "archive.sqlite"]) == 0
    err = capsys.readouterr().err
    assert err.count("has no text after cleaning") == 1
    assert len(json.loads((work / "out" / "articles.json").read_text("utf-8"))) == 11


def test_a_feed_with_no_address_at_all_links_to_its_source_file(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No <link>, items without addresses, no --self-url: published, with a warning."""
    bare = write_config(
        work / "bare.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Bare</title>'
        "<item><title>One</title><description>&lt;p&gt;Text.&lt;/p&gt;</description></item>"
        "</channel></rss>",
    )
    assert main(["feed", str(bare), "-o", "bare-out.xml"]) == 0
    assert f"<link>{bare.resolve().as_uri()}</link>" in (work / "bare-out.xml").read_text("utf-8")
    assert "no home page for the feed: it links to its source file" in capsys.readouterr().err


# Enough Simplified text to tell the language by (Traditional editions say it in their URL).
FILLER = "这是一段足够长的中文正文，我们用来检测这篇文章的语言与文字是不是简体。"


def rss(items: list[tuple[str, str, str]]) -> str:
    """An RSS feed of (link, title, pubDate) items."""
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{date}</pubDate><description>&lt;p&gt;{title}。{FILLER}&lt;/p&gt;</description>"
        "</item>"
        for link, title, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>源</title>'
        f"<link>https://cn.nytimes.com/</link><description>d</description>{body}</channel></rss>"
    )


def test_a_published_story_keeps_its_guid_and_its_copies_and_editions_are_one_item(
    work: Path,
) -> None:
    story = "https://cn.nytimes.com/world/20240520/one-story/"
    first = write_config(
        work / "first.xml", rss([(story, "简体", "Mon, 20 May 2024 09:00:00 +0800")])
    )
    argv = ["-o", "out.xml", "--self-url", SELF_URL]
    assert main(["feed", str(first), *argv]) == 0
    again = write_config(
        work / "again.xml",
        rss(
            [
                # The same article from a tracking http copy, captured later…
                (
                    "http://cn.nytimes.com/world/20240520/one-story?utm_source=feedx",
                    "简体（新）",
                    "Mon, 20 May 2024 10:00:00 +0800",
                ),
                # … and its other editions, and one article on two feedx mirrors.
                (f"{story}zh-hant/", "繁體", "Mon, 20 May 2024 09:05:00 +0800"),
                (f"{story}dual/", "双语", "Mon, 20 May 2024 09:06:00 +0800"),
                ("https://feedx.net/nytimes/7.html", "镜像甲", "Mon, 20 May 2024 08:00:00 +0800"),
                ("https://feedx.run/nytimes/7.html", "镜像乙", "Mon, 20 May 2024 08:00:00 +0800"),
            ]
        ),
    )
    assert main(["feed", str(again), *argv]) == 0
    parsed = feedparser.parse((work / "out.xml").read_bytes())
    assert parsed.bozo == 0
    ids = {entry.id: entry.title for entry in parsed.entries}
    assert len(ids) == 2  # the story once, the mirrored article once
    assert ids[story] == "简体（新）"  # the newest Simplified copy, under its first guid
    (mirror,) = [i for i in ids if "feedx" in i]
    assert ids[mirror] in ("镜像甲", "镜像乙")
