"""The article archive: real SQLite files, real examples, a real SIGKILL."""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import make_article, read_source
from goldens import ROOT

from convert.archive import (
    SCHEMA_VERSION,
    Archive,
    IngestCounts,
    StatRow,
    default_archive_path,
)
from convert.config import Config, load_config
from convert.errors import ConvertError
from convert.identity import Identity
from convert.model import Article, to_json

SHANGHAI = ZoneInfo("Asia/Shanghai")
FEEDX_HOSTS = ("feedx.net", "feedx.site", "feedx.co", "feedx.top", "feedx.best", "feedx.run")
IDENTITY = Identity(FEEDX_HOSTS, load_config().tracking_parameters)
NOW = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
LATER = datetime(2024, 6, 8, 8, 0, tzinfo=UTC)
SLUG = "https://cn.nytimes.com/asia-pacific/20240522/japan-rural-schools-closing/"
SLUG_KEY = "cn.nytimes.com/asia-pacific/20240522/japan-rural-schools-closing"
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def open_archive(path: Path, zone: ZoneInfo = SHANGHAI) -> Archive:
    return Archive(path, zone=zone, identity=IDENTITY)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    with open_archive(tmp_path / "archive.sqlite") as opened:
        yield opened


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """`sql` on a connection of its own, as another program would look at the file."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def row_count(path: Path) -> int:
    ((count,),) = query(path, "SELECT COUNT(*) FROM article")
    return int(str(count))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def example_articles(config: Config) -> list[Article]:
    sources = [*sorted((ROOT / "examples").glob("*.txt")), ROOT / "examples/feedx-nytimes.xml"]
    return [a for source in sources for a in read_source(str(source), config).articles]


# --- ingest -----------------------------------------------------------------------------


def test_ingest_is_idempotent_and_keeps_first_seen(tmp_path: Path, config: Config) -> None:
    path = tmp_path / "archive.sqlite"
    articles = example_articles(config)
    n = len(articles)
    assert n == 18 and len({a.canonical_url for a in articles}) == n
    with open_archive(path) as archive:
        assert archive.ingest(articles, now=NOW) == IngestCounts(new=n, updated=0, unchanged=0)
        assert archive.ingest(articles, now=LATER) == IngestCounts(new=0, updated=0, unchanged=n)
        assert row_count(path) == n
        for article in articles:  # the JSON round trip is lossless
            assert archive.article(article) == article

        changed = dataclasses.replace(articles[3], body=articles[3].body + "<p>更正</p>")
        counts = archive.ingest([*articles[:3], changed], now=LATER)
        assert counts == IngestCounts(new=0, updated=1, unchanged=3)
        assert row_count(path) == n
        assert archive.article(changed) == changed
        assert archive.first_seen(changed) == NOW
        ((last_updated,),) = query(
            path, f"SELECT last_updated FROM article WHERE key = '{IDENTITY.copy_key(changed)}'"
        )
        assert at(str(last_updated)) == LATER
        assert archive.first_seen(make_article("", url="https://example.com/never-seen")) is None
    with open_archive(path) as again:  # and it is all still there after closing
        assert again.article(changed) == changed


def test_a_recapture_of_the_same_text_is_unchanged_and_an_older_one_is_ignored(
    archive: Archive,
) -> None:
    article = make_article("<p>正文</p>", captured=at("2024-05-20T02:00:00+00:00"))
    archive.ingest([article], now=NOW)
    recaptured = dataclasses.replace(article, captured=at("2024-05-21T02:00:00+00:00"))
    assert archive.ingest([recaptured], now=LATER).unchanged == 1
    assert archive.article(article) == article  # the volatile field is not news

    newer = dataclasses.replace(recaptured, body="<p>新版</p>")
    assert archive.ingest([newer], now=LATER).updated == 1
    older = dataclasses.replace(article, body="<p>旧版</p>")  # an old dump read again
    assert archive.ingest([older], now=LATER).unchanged == 1
    assert archive.article(article) == newer


def test_copies_within_one_call_count_once_each(archive: Archive, tmp_path: Path) -> None:
    first = make_article("<p>一</p>")
    second = dataclasses.replace(first, body="<p>二</p>")
    counts = archive.ingest([first, first, second], now=NOW)
    assert counts == IngestCounts(new=1, updated=1, unchanged=1)
    assert row_count(tmp_path / "archive.sqlite") == 1
    assert archive.article(first) == second


def test_an_article_without_canonical_url_is_keyed_by_its_id(
    archive: Archive, tmp_path: Path
) -> None:
    article = make_article("<p>正文</p>", canonical_url="", id="0123456789abcdef")
    assert archive.ingest([article], now=NOW).new == 1
    assert archive.ingest([article], now=LATER).unchanged == 1
    assert archive.first_seen(article) == NOW
    assert query(tmp_path / "archive.sqlite", "SELECT key, story FROM article") == [
        ("0123456789abcdef", "0123456789abcdef")
    ]


# --- stories ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (SLUG, SLUG_KEY),
        (f"{SLUG}zh-hant/", SLUG_KEY),
        (f"{SLUG}zh-hant", SLUG_KEY),
        (f"{SLUG}zh-hans/", SLUG_KEY),
        (f"{SLUG}dual/", SLUG_KEY),
        (f"{SLUG}ZH-HANT/", SLUG_KEY),
        (SLUG.rstrip("/"), SLUG_KEY),
        (SLUG.replace("https://", "http://"), SLUG_KEY),
        (SLUG.replace("cn.", "m.cn.") + "?utm_source=feedx&smid=tw#top", SLUG_KEY),
        (SLUG.replace("cn.nytimes", "CN.NYTimes") + "dual", SLUG_KEY),
        (
            "https://www.bbc.com/zhongwen/simp/world-68934512",
            "bbc.com/zhongwen/simp/world-68934512",
        ),
        (
            "https://m.bbc.com/zhongwen/simp/world-68934512?at_medium=RSS&at_campaign=rss",
            "bbc.com/zhongwen/simp/world-68934512",
        ),
        # A query that is not tracking tells articles apart (`article.php?id=…`).
        ("https://example.com/article.php?id=7", "example.com/article.php?id=7"),
        ("https://feedx.net/nytimes/123.html", "feedx/nytimes/123.html"),
        ("https://feedx.run/nytimes/123.html", "feedx/nytimes/123.html"),
        ("https://www.feedx.site/nytimes/123.html", "feedx/nytimes/123.html"),
        ("https://rss.FEEDX.top/nytimes/123.html?utm_source=rss", "feedx/nytimes/123.html"),
        ("https://notfeedx.net/nytimes/123.html", "notfeedx.net/nytimes/123.html"),
        ("https://feedx.network/a", "feedx.network/a"),
        ("https://example.com/dual-citizenship/", "example.com/dual-citizenship"),
        ("https://example.com/zh-hant/news/1", "example.com/zh-hant/news/1"),
        ("https://example.com:8443/a/", "example.com:8443/a"),
        ("https://example.com:443/a", "example.com/a"),
        ("https://www.zaobao.com.sg/", "zaobao.com.sg"),
        ("https://m.com/a", "m.com/a"),
        ("de888c848606ed36", "de888c848606ed36"),
    ],
)
def test_story_key(url: str, key: str) -> None:
    assert IDENTITY.story_of(url) == key


def test_editions_and_mirrors_are_one_story(archive: Archive, tmp_path: Path) -> None:
    published = at("2024-05-22T11:15:06+08:00")
    hans = make_article("<p>简体</p>", url=SLUG, language="zh-Hans", published=published)
    hant = make_article(
        "<p>繁體</p>", url=f"{SLUG}zh-hant/", language="zh-Hant", published=published
    )
    dual = make_article("<p>双语</p>", url=f"{SLUG}dual/", language="en", published=published)
    # Another Simplified edition, an hour newer: the one a Simplified reader gets.
    hans_again = make_article(
        "<p>简体（另一版）</p>",
        url=f"{SLUG}zh-hans/",
        language="zh-Hans",
        published=published + timedelta(hours=1),
    )
    on_net = make_article("<p>镜像</p>", url="https://feedx.net/nyt/1.html", published=published)
    on_run = make_article("<p>镜像</p>", url="https://feedx.run/nyt/1.html", published=published)
    other = make_article("<p>别的</p>", url="https://cn.wsj.com/articles/x", published=published)
    articles = [hans, hant, dual, hans_again, on_net, on_run, other]
    # The two feedx mirrors' copies are one article: one row, the later copy's.
    assert archive.ingest(articles, now=NOW) == IngestCounts(new=6, updated=1, unchanged=0)
    stories = query(tmp_path / "archive.sqlite", "SELECT DISTINCT story FROM article ORDER BY 1")
    assert stories == [(SLUG_KEY,), ("cn.wsj.com/articles/x",), ("feedx/nyt/1.html",)]

    def nyt(language: str | None) -> Article:
        chosen = archive.stories_between(*EVERYTHING, language=language)
        assert len(chosen) == 3
        assert {IDENTITY.story_key(a) for a in chosen} == {s for (s,) in stories}
        (found,) = [a for a in chosen if a.canonical_url.startswith("https://cn.nytimes.com/")]
        return found

    assert nyt("zh-Hant") == hant
    assert nyt("zh-Hans") == hans_again  # the newest of the two Simplified editions
    assert nyt("zh-hant") == hant  # language tags compare without case
    assert nyt("en") == dual
    assert nyt(None) == hans_again  # no preference: Simplified
    assert nyt("ja") == hans_again  # nothing in that language: Simplified


def test_a_version_1_archive_is_keyed_by_copy_key_and_its_copies_merged(tmp_path: Path) -> None:
    """Version 1 keyed rows by canonical URL: an https and an http copy were two rows."""
    path = tmp_path / "archive.sqlite"
    with open_archive(path) as archive:  # today's layout, made to look like version 1
        archive.ingest([make_article("<p>旧</p>", url=SLUG)], now=NOW)
    old = make_article("<p>旧</p>", url=SLUG, captured=at("2024-05-22T04:00:00+00:00"))
    new = make_article(
        "<p>新</p>",
        url=SLUG.replace("https://", "http://"),
        captured=at("2024-05-22T05:00:00+00:00"),
    )
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM article")
        for article, seen in (
            (old, "2024-05-01T00:00:00.000000+00:00"),
            (new, "2024-05-22T05:00:00.000000+00:00"),
        ):
            assert article.captured is not None
            conn.execute(
                "INSERT INTO article (key, story, published, captured, source, language,"
                " content_hash, first_seen, last_updated, json)"
                " VALUES (?, ?, NULL, ?, 's', 'zh-Hans', 'x', ?, ?, ?)",
                (
                    article.canonical_url,
                    SLUG_KEY,
                    article.captured.isoformat(timespec="microseconds"),
                    seen,
                    seen,
                    json.dumps(to_json(article), ensure_ascii=False),
                ),
            )
        conn.execute("DROP TABLE delivery")  # version 4's
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    with open_archive(path) as archive:
        ((key, first_seen),) = query(path, "SELECT key, first_seen FROM article")
        assert key == IDENTITY.copy_key(new) == SLUG_KEY
        assert first_seen == "2024-05-01T00:00:00.000000+00:00"  # the older copy's
        kept = archive.article(old)
        assert kept is not None and kept.body == "<p>新</p>"  # the newer capture's
        assert kept.id == IDENTITY.article_id(new.canonical_url)
        assert archive.ingest([new], now=LATER).new == 0
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_a_version_2_archive_merges_copies_spelled_differently(tmp_path: Path) -> None:
    """Version 3 compares addresses in RFC 3986's normal form: `新闻` and its %XX spelling,
    and a path with a dot segment, are one article, kept once with its first sighting."""
    path = tmp_path / "a.sqlite"
    with open_archive(path) as archive:
        archive.ingest([make_article("<p>x</p>", url=SLUG)], now=NOW)
    spellings = (
        ("https://news.example.com/2024/新闻/", "2024-05-01T00:00:00.000000+00:00"),
        ("https://news.example.com/2024/%e6%96%b0%e9%97%bb/", "2024-05-02T00:00:00.000000+00:00"),
        ("https://news.example.com/2024/x/../新闻/", "2024-05-03T00:00:00.000000+00:00"),
    )
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM article")
        for number, (url, seen) in enumerate(spellings):
            article = make_article(f"<p>{number}</p>", url=url)
            old_key = url.split("://", 1)[1].strip("/")  # as version 2 spelled it
            conn.execute(
                "INSERT INTO article (key, story, published, captured, source, language,"
                " content_hash, first_seen, last_updated, json)"
                " VALUES (?, ?, NULL, NULL, 's', 'zh-Hans', 'x', ?, ?, ?)",
                (old_key, old_key, seen, seen, json.dumps(to_json(article), ensure_ascii=False)),
            )
        conn.execute("DROP TABLE delivery")  # version 4's
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    with open_archive(path):
        rows = query(path, "SELECT key, first_seen FROM article")
    assert rows == [("news.example.com/2024/%E6%96%B0%E9%97%BB", spellings[0][1])]


def test_copies_of_one_article_are_one_row(archive: Archive, tmp_path: Path) -> None:
    """http or https, `m.` or `www.`, tracking parameters, a trailing slash: one article."""
    original = make_article("<p>简体</p>", url=SLUG, captured=at("2024-05-22T04:00:00+00:00"))
    # A newer capture of one copy, then older captures of two more.
    copies = [
        make_article("<p>简体（手机）</p>", url=url, captured=at(captured))
        for url, captured in (
            (
                SLUG.replace("https://cn.", "http://m.cn.") + "?utm_source=feedx&smid=tw",
                "2024-05-22T05:00:00+00:00",
            ),
            (SLUG.rstrip("/"), "2024-05-22T03:00:00+00:00"),
            (
                SLUG.replace("https://cn.nytimes.com/", "https://www.cn.nytimes.com/") + "#top",
                "2024-05-22T03:00:00+00:00",
            ),
        )
    ]
    assert archive.ingest([original], now=NOW).new == 1
    counts = archive.ingest(copies, now=LATER)
    assert counts == IngestCounts(new=0, updated=1, unchanged=2)
    assert row_count(tmp_path / "archive.sqlite") == 1
    assert archive.article(original) == copies[0]  # the newer capture
    assert archive.first_seen(copies[2]) == NOW
    assert len({IDENTITY.copy_key(a) for a in [original, *copies]}) == 1


def test_without_the_language_or_simplified_the_newest_edition_is_taken(
    archive: Archive,
) -> None:
    published = at("2024-05-22T11:15:06+08:00")
    hant = make_article(
        "<p>繁體</p>", url=f"{SLUG}zh-hant/", language="zh-Hant", published=published
    )
    english = make_article(
        "<p>English</p>",
        url=f"{SLUG}dual/",
        language="en",
        published=published + timedelta(hours=1),
    )
    archive.ingest([hant, english], now=NOW)
    assert archive.stories_between(*EVERYTHING, language="zh-Hans") == [english]
    assert archive.stories_between(*EVERYTHING, language="zh-Hant") == [hant]


# --- windows ----------------------------------------------------------------------------


def test_stories_between_is_a_half_open_window_of_instants(archive: Archive) -> None:
    late_sunday = make_article(
        "<p>周日深夜</p>", url="https://a.example/1", published=at("2024-05-26T23:30:00+08:00")
    )
    monday = make_article(
        "<p>周一</p>", url="https://a.example/2", published=at("2024-05-20T00:00:00+08:00")
    )
    next_monday = make_article(
        "<p>下周一</p>", url="https://a.example/3", published=at("2024-05-27T00:00:00+08:00")
    )
    undated = make_article("<p>无日期</p>", url="https://a.example/4", published=None)
    archive.ingest([late_sunday, next_monday, undated, monday], now=NOW)

    week_21 = (at("2024-05-20T00:00:00+08:00"), at("2024-05-27T00:00:00+08:00"))
    assert archive.stories_between(*week_21) == [monday, late_sunday]  # oldest first
    # The same instant written in UTC: 23:30 in Shanghai is 15:30 UTC.
    assert late_sunday.published == at("2024-05-26T15:30:00+00:00")
    assert archive.stories_between(
        at("2024-05-26T15:30:00+00:00"), at("2024-05-26T15:30:01+00:00")
    ) == [late_sunday]
    assert archive.stories_between(at("2024-05-26T00:00:00+00:00"), week_21[1]) == [late_sunday]
    assert archive.stories_between(at("2024-05-26T00:00:00+00:00"), late_sunday.published) == []
    assert archive.stories_between(week_21[1], at("2024-06-03T00:00:00+08:00")) == [next_monday]
    # A naive bound is a time of the archive's zone.
    assert archive.stories_between(datetime(2024, 5, 20), datetime(2024, 5, 27)) == [
        monday,
        late_sunday,
    ]
    assert archive.stories_between(week_21[1], week_21[0]) == []
    assert undated not in archive.stories_between(*EVERYTHING)
    assert len(archive.stories_between(*EVERYTHING)) == 3
    assert archive.newest_published() == next_monday.published


def test_a_story_is_in_the_window_of_its_first_edition(archive: Archive) -> None:
    hans = make_article(
        "<p>简体</p>", url=SLUG, language="zh-Hans", published=at("2024-05-26T23:50:00+08:00")
    )
    hant = make_article(
        "<p>繁體</p>",
        url=f"{SLUG}zh-hant/",
        language="zh-Hant",
        published=at("2024-05-27T00:10:00+08:00"),
    )
    archive.ingest([hans, hant], now=NOW)
    week_21 = (at("2024-05-20T00:00:00+08:00"), at("2024-05-27T00:00:00+08:00"))
    week_22 = (week_21[1], at("2024-06-03T00:00:00+08:00"))
    # The reader of Traditional gets the Traditional edition, though it came after midnight,
    # and the story is not repeated the week after.
    assert archive.stories_between(*week_21, language="zh-Hant") == [hant]
    assert archive.stories_between(*week_22, language="zh-Hant") == []


def test_an_empty_archive(archive: Archive) -> None:
    assert archive.stories_between(*EVERYTHING) == []
    assert archive.newest_published() is None
    assert archive.stats() == []
    assert archive.ingest([], now=NOW) == IngestCounts(0, 0, 0)


# --- stats ------------------------------------------------------------------------------


def test_stats_count_articles_per_source_and_iso_week_of_the_zone(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"

    def article(n: int, source: str, published: str | None) -> Article:
        return make_article(
            "<p>x</p>",
            url=f"https://a.example/{n}",
            source_name=source,
            published=at(published) if published else None,
        )

    with open_archive(path) as archive:
        archive.ingest(
            [
                article(1, "纽约时报中文网", "2024-05-26T23:30:00+08:00"),  # Sunday: W21
                article(2, "纽约时报中文网", "2024-05-20T09:00:00+08:00"),
                article(3, "纽约时报中文网", "2024-05-27T01:00:00+08:00"),  # W22; UTC: W21
                article(4, "纽约时报中文网", "2024-12-30T10:00:00+08:00"),  # ISO year 2025
                article(5, "BBC News 中文", "2024-05-24T16:08:33+08:00"),
                article(6, "BBC News 中文", None),  # undated: in no week
            ],
            now=NOW,
        )
        assert archive.stats() == [
            StatRow("BBC News 中文", "2024-W21", 1),
            StatRow("纽约时报中文网", "2024-W21", 2),
            StatRow("纽约时报中文网", "2024-W22", 1),
            StatRow("纽约时报中文网", "2025-W01", 1),
        ]
    with open_archive(path, zone=ZoneInfo("UTC")) as in_utc:
        assert [(row.source, row.week, row.articles) for row in in_utc.stats()] == [
            ("BBC News 中文", "2024-W21", 1),
            ("纽约时报中文网", "2024-W21", 3),
            ("纽约时报中文网", "2025-W01", 1),
        ]


# --- the file ---------------------------------------------------------------------------


def test_default_archive_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert default_archive_path() == Path("/srv/data/feedx-convert/archive.sqlite")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # invalid by the XDG spec
    expected = tmp_path / ".local/share/feedx-convert/archive.sqlite"
    assert default_archive_path() == expected
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_archive_path() == expected


def test_a_new_archive_is_created_with_its_folder_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "archive.sqlite"
    with open_archive(path):
        pass
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    assert query(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    with pytest.raises(ConvertError) as caught:
        open_archive(path)
    assert caught.value.where == str(path)
    assert caught.value.reason.startswith("not an archive: ")
    assert path.read_bytes() == b"these are my notes, not a database\n" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_another_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    query(path, "CREATE TABLE notes (text TEXT)")
    with pytest.raises(ConvertError, match=r"not an archive: an SQLite file of other data"):
        open_archive(path)
    assert query(path, "PRAGMA journal_mode") == [("delete",)]


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="is a folder") as caught:
        open_archive(tmp_path)
    assert caught.value.where == str(tmp_path)


@pytest.mark.parametrize("planted", ["", "-wal", "-shm", "-journal"])
def test_an_archive_or_its_side_file_planted_as_a_link_is_refused(
    tmp_path: Path, planted: str
) -> None:
    """SQLite follows links: a link planted as the archive or its journal would have had
    a root cron run write SQLite pages into the file it names."""
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n", "utf-8")
    path = tmp_path / "archive.sqlite"
    link = path.with_name(path.name + planted)
    link.symlink_to(victim)
    with pytest.raises(ConvertError, match="is a symbolic link; not followed") as caught:
        open_archive(path)
    assert caught.value.where == str(link)
    assert victim.read_text("utf-8") == "precious\n"


def test_an_archive_from_a_newer_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    open_archive(path).close()
    query(path, "PRAGMA user_version = 99")
    with pytest.raises(ConvertError, match=r"archive version 99 is newer") as caught:
        open_archive(path)
    assert caught.value.where == str(path)


# --- concurrency and crashes ------------------------------------------------------------


def test_readers_and_a_writer_do_not_wait_for_each_other(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    first = make_article("<p>一</p>", url="https://a.example/1")
    second = make_article("<p>二</p>", url="https://a.example/2")
    with open_archive(path) as writer, open_archive(path) as reader:
        writer.ingest([first], now=NOW)
        # Another program holds a write transaction open: reading goes on, from the last commit.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE article SET source = 'changed'")
        started = time.monotonic()
        assert reader.stories_between(*EVERYTHING) == [first]
        assert reader.stats()[0].source == first.source_name
        assert time.monotonic() - started < 1  # not the 30 s busy timeout
        other.execute("ROLLBACK")
        # A reader in the middle of a read transaction does not hold up a write either.
        other.execute("BEGIN")
        assert other.execute("SELECT COUNT(*) FROM article").fetchone() == (1,)
        assert writer.ingest([second], now=NOW).new == 1
        assert other.execute("SELECT COUNT(*) FROM article").fetchone() == (1,)  # its snapshot
        other.execute("COMMIT")
        other.close()
        assert reader.stories_between(*EVERYTHING) == [first, second]


CHILD = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from convert.archive import Archive
from convert.identity import Identity
from convert.model import Article, to_json

path, run, batches, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
body = "<p>" + "一篇合成的新闻正文。" * 200 + "</p>"
start = datetime(2024, 5, 20, tzinfo=UTC)
identity = Identity(("feedx.net",), ())
with Archive(path, zone=ZoneInfo("Asia/Shanghai"), identity=identity) as archive:
    for batch in range(batches):
        articles = []
        for i in range(size):
            url = f"https://example.com/{run}/{batch}/{i}/"
            articles.append(Article(
                id=f"{run}-{batch}-{i}", title="合成", url=url, canonical_url=url,
                language="zh-Hans", source_name="合成", source_host="example.com", body=body,
                published=start + timedelta(minutes=batch * size + i),
            ))
        archive.ingest(articles, now=datetime.now(UTC))
        print("committed", batch + 1, flush=True)
"""
BATCHES, BATCH_SIZE, KILLS = 200, 50, 5


def child_urls(run: str, batches: int) -> list[str]:
    """The archive keys of what the child committed."""
    return [
        IDENTITY.key_of(f"https://example.com/{run}/{batch}/{i}/")
        for batch in range(batches)
        for i in range(BATCH_SIZE)
    ]


def stored_keys(path: Path) -> set[str]:
    """The keys in the file after checking it; none when the child died before making it."""
    if not path.exists():
        return set()
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    if not query(path, "SELECT 1 FROM sqlite_master WHERE name = 'article'"):
        return set()  # killed while creating the schema: rolled back whole
    return {str(key) for (key,) in query(path, "SELECT key FROM article")}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_mid_ingest_loses_no_commit(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "archive.sqlite"
    rng = random.Random(seed)
    committed: list[str] = []
    for kill in range(KILLS):
        run = f"s{seed}k{kill}"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), run, str(BATCHES), str(BATCH_SIZE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert child.stdout is not None
        lines = []
        for _ in range(rng.randint(0, 30)):  # 0: killed while starting or creating the file
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line)
        time.sleep(rng.uniform(0, 0.02))  # land anywhere in the next ingest call
        child.send_signal(signal.SIGKILL)
        rest, errors = child.communicate(timeout=30)
        # Lines printed between the last read and the kill were committed too.
        lines += rest.splitlines(keepends=True)
        assert child.returncode == -signal.SIGKILL, errors
        batches = sum(1 for line in lines if line.startswith("committed "))
        committed += child_urls(run, batches)

        stored = stored_keys(path)
        assert len(stored) >= len(committed)
        assert not set(committed) - stored
    with open_archive(path) as archive:  # and the archive takes new articles after all that
        assert archive.ingest([make_article("<p>后来</p>")], now=NOW).new == 1
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    print(f"seed {seed}: {len(committed)} committed articles survived {KILLS} kills")


def test_ten_thousand_articles_in_one_ingest(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    body = "<p>" + "一篇合成的新闻正文，长度与真实文章相近。" * 150 + "</p>"
    start = at("2024-01-01T00:00:00+08:00")
    articles = [
        make_article(
            body,
            url=f"https://cn.nytimes.com/world/2024/story-{n // 2}/{'zh-hant/' if n % 2 else ''}",
            language="zh-Hant" if n % 2 else "zh-Hans",
            source_name=f"source {n % 7}",
            published=start + timedelta(minutes=n),
        )
        for n in range(10_000)
    ]
    with open_archive(path) as archive:
        started = time.perf_counter()
        assert archive.ingest(articles, now=NOW).new == 10_000
        first = time.perf_counter() - started
        started = time.perf_counter()
        assert archive.ingest(articles, now=LATER).unchanged == 10_000
        again = time.perf_counter() - started
        started = time.perf_counter()
        stories = archive.stories_between(*EVERYTHING, language="zh-Hant")
        window = time.perf_counter() - started
        started = time.perf_counter()
        stats = archive.stats()
        counting = time.perf_counter() - started
    assert len(stories) == 5_000 and {a.language for a in stories} == {"zh-Hant"}
    assert sum(row.articles for row in stats) == 10_000
    assert row_count(path) == 10_000
    print(
        f"10,000 articles: ingest {first:.2f} s, again {again:.2f} s, "
        f"stories_between {window:.2f} s, stats {counting:.2f} s"
    )


def test_a_book_is_claimed_for_an_address_once_and_a_failed_claim_is_given_back(
    tmp_path: Path,
) -> None:
    """What `send_to` relies on: one claim per book and address, whichever process asks;
    a claim left by a run that stopped midway is not taken again."""
    path = tmp_path / "archive.sqlite"
    with open_archive(path) as archive, open_archive(path) as other_host:
        assert archive.claim_delivery("b1", "a@kindle.com", "book.epub") is None
        assert other_host.claim_delivery("b1", "a@kindle.com", "book.epub") == "sending"
        archive.delivered("b1", "a@kindle.com")
        assert other_host.claim_delivery("b1", "a@kindle.com", "book.epub") == "sent"
        assert other_host.claim_delivery("b1", "b@example.org", "book.epub") is None
        other_host.release_delivery("b1", "b@example.org")  # the mail failed
        assert archive.claim_delivery("b1", "b@example.org", "book.epub") is None
        assert archive.claim_delivery("b2", "a@kindle.com", "book.epub") is None
