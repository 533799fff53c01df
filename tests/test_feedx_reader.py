"""The feedx reader, tested through the Article it builds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import feedx_dump
from goldens import ROOT

from convert.config import Config, load_config
from convert.errors import ConvertError
from convert.model import Article
from convert.plan import settings_of
from convert.readers import sniff_reader
from convert.readers.feedx import read_feedx

SEED = ROOT / "examples" / "nyt-putin-harbin.txt"
BODY = '<address>甲</address><time pudate="2024-05-20 09:52:45">x</time><p>正文。</p>'


def read(data: bytes, config: Config) -> Article:
    (article,) = read_feedx(data, "t.txt", settings_of(config).reading).articles
    return article


def test_seed_metadata(config: Config) -> None:
    article = read(SEED.read_bytes(), config)
    assert article.published is not None
    assert article.published.isoformat() == "2024-05-20T09:52:45+08:00"
    assert article.captured == datetime(2024, 5, 20, 2, 7, 1, tzinfo=UTC)
    assert article.title == "普京访问哈工大，中俄加强军事联系令西方担忧"
    assert article.authors == ("DAVID PIERSON",)
    assert article.translator == "纽约时报中文网"
    assert [(c.name, c.role) for c in article.contributors] == [
        ("Olivia Wang", "reporter"),
        ("Anatoly Kurmanaev", "reporter"),
        ("纽约时报中文网", "translator"),
    ]
    english = [k for k in article.links if k.rel == "alternate"]
    assert [k.url for k in english] == [
        "https://www.nytimes.com/2024/05/17/world/asia/putin-xi-china-russia.html"
    ]
    assert english[0].language == "en"
    assert any("David Pierson报道中国外交政策" in line for line in article.credits)
    lead = article.lead_image
    assert lead is not None
    assert lead.credit == "Mikhail Metzel/Sputnik"
    assert lead.caption.startswith("周四，俄罗斯总统普京")
    assert (lead.width, lead.height) == (1050, 700)
    assert len(article.images) == 4  # the lead and three <p><img><small>
    assert article.language == "zh-Hans"
    assert article.source_name == "纽约时报中文网"


def test_inline_pictures_become_figures_with_captions(config: Config) -> None:
    article = read(SEED.read_bytes(), config)
    assert article.body.count("<figure>") == 3
    assert "<small" not in article.body
    assert "<figcaption>普京和习近平上周四在中南海品茗" in article.body


def test_traditional_edition_is_zh_hant(config: Config) -> None:
    article = read((ROOT / "examples" / "nyt-zh-hant.txt").read_bytes(), config)
    assert article.language == "zh-Hant"


def test_bom_and_seconds_stamp(config: Config) -> None:
    data = b"\xef\xbb\xbf" + feedx_dump(BODY, stamp="1716170821")
    article = read(data, config)
    assert article.captured == datetime(2024, 5, 20, 2, 7, 1, tzinfo=UTC)


def test_brackets_in_title_and_parentheses_in_url(config: Config) -> None:
    url = "https://zh.wikipedia.org/wiki/Foo_(bar)"
    article = read(feedx_dump(BODY, title="[快讯] 标题 [图](又一)", url=url), config)
    assert article.title == "[快讯] 标题 [图](又一)"
    assert article.url == url


def test_utf16_with_bom(config: Config) -> None:
    data = feedx_dump(BODY).decode("utf-8").encode("utf-16")
    assert read(data, config).title == "标题"


def test_gb18030_is_read_with_a_warning(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    data = feedx_dump(BODY.replace("正文", "中文正文内容")).decode("utf-8").encode("gb18030")
    with caplog.at_level(logging.WARNING):
        article = read(data, config)
    assert "中文正文内容" in article.body
    assert "GB18030" in caplog.text


def test_declared_charset_is_used(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    html = '<meta charset="big5">' + BODY.replace("正文", "繁體中文")
    data = feedx_dump(html, title="標題").decode("utf-8").encode("big5")
    with caplog.at_level(logging.WARNING):
        article = read(data, config)
    assert "繁體中文" in article.body
    assert not caplog.text


def test_publication_after_capture_warns(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    late = BODY.replace("2024-05-20 09:52:45", "2024-05-20 18:00:00")
    with caplog.at_level(logging.WARNING):
        read(feedx_dump(late), config)
    assert "after the capture time" in caplog.text
    assert "timezone" in caplog.text


def test_site_time_zone_from_config(tmp_path: Path) -> None:
    overlay = tmp_path / "c.yaml"
    overlay.write_text("sites:\n  example.com:\n    timezone: Europe/London\n", "utf-8")
    config = load_config(overlay)
    article = read(feedx_dump(BODY, url="https://www.example.com/a"), config)
    assert article.published is not None
    assert article.published.isoformat() == "2024-05-20T09:52:45+01:00"


def test_missing_stamp_warns(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    data = feedx_dump(BODY).split(b"\n", 1)[1]
    with caplog.at_level(logging.WARNING):
        article = read(data, config)
    assert article.captured is None
    assert "capture stamp" in caplog.text


def test_impossible_pudate_warns(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        article = read(feedx_dump(BODY.replace("2024-05-20 09:52:45", "2024-13-45 99:00")), config)
    assert article.published is None
    assert "not a usable date" in caplog.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<!--1716170821000-->\n[t](https://a.org/x)\n\n<p>x</p>", "no '------' line"),
        (b"<!--1716170821000-->\n[t](https://a.org/x)\n------\n\n   \n", "no article body"),
        (b"<!--1716170821000-->\nno title line\n------\n<p>x</p>", "[title](url)"),
        (b"<!--1716170821000-->\n[t](javascript:alert(1))\n------\n<p>x</p>", "not an http(s)"),
        (b"<!--1716170821000-->\n[t](https://a.org/x)\n------\n<p>\xff\xfe\xfd</p>", "undecodable"),
        (b"<!--1716170821000-->\n[t](https://a.org/x)\n------\n<div><br></div>", "no text"),
    ],
    ids=["no-separator", "no-body", "no-title-line", "javascript-url", "undecodable", "empty"],
)
def test_broken_wrappers_are_clear_errors(config: Config, data: bytes, reason: str) -> None:
    with pytest.raises(ConvertError) as caught:
        read_feedx(data, "bad.txt", settings_of(config).reading)
    assert caught.value.where == "bad.txt"
    assert reason in caught.value.reason


def test_other_content_is_not_a_feedx_article() -> None:
    with pytest.raises(ConvertError, match="not a feedx article, feed, OPML list or HTML"):
        sniff_reader(b"# just markdown\n\nhello", "notes.md")
