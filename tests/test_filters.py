"""Only what the reader wants: include, exclude (words or /regex/) and max_age_days, on
a source (counted in the run's summary) and on an output (that output alone)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from conftest import make_article
from goldens import ROOT

from convert.cli import main
from convert.config import load_config
from convert.errors import ConfigError
from convert.filters import ArticleFilter

NOW = datetime(2024, 5, 27, tzinfo=UTC)


def job(tmp_path: Path, sources: str, outputs: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(
        f"archive: {tmp_path / 'archive.sqlite'}\nsources:\n{sources}outputs:\n{outputs}", "utf-8"
    )
    return path


def titles(path: Path) -> list[str]:
    return [entry.title for entry in feedparser.parse(path.read_bytes()).entries]


def test_a_sources_filter_leaves_articles_out_and_the_summary_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "all.xml"
    config = job(
        tmp_path,
        f"  - path: {ROOT / 'examples'}/*.txt\n    name: files\n"
        "    exclude: [普京, /美联储|欧洲央行/]\n"
        f"  - path: {ROOT / 'examples' / 'feedx-nytimes.xml'}\n    name: feed\n",
        f"  - feed: {{path: {out}, self_url: 'https://e.org/all.xml'}}\n",
    )
    capsys.readouterr()
    assert main(["-c", str(config), "run"]) == 0
    summary = capsys.readouterr().out.splitlines()
    header = summary[summary.index("sources:") + 1].split()
    assert header[:3] == ["source", "read", "filtered"]
    table = summary[summary.index("sources:") + 2 : summary.index("outputs:")]
    rows = {line.split()[0]: line.split() for line in table if line.strip()}
    assert rows["files"][1:3] == ["5", "2"]  # Putin's visit, and the WSJ article
    assert rows["feed"][1:3] == ["11", "0"]
    assert not any("普京" in title for title in titles(out))
    assert len(titles(out)) == 16


def test_an_outputs_filter_applies_to_that_output_alone(tmp_path: Path) -> None:
    only_bbc = tmp_path / "bbc.xml"
    everything = tmp_path / "all.xml"
    config = job(
        tmp_path,
        f"  - path: {ROOT / 'examples'}/*.txt\n",
        f"  - feed: {{path: {only_bbc}, self_url: 'https://e.org/b.xml', include: [bbc]}}\n"
        f"  - feed: {{path: {everything}, self_url: 'https://e.org/a.xml'}}\n",
    )
    assert main(["-c", str(config), "run", "-q"]) == 0
    assert titles(only_bbc) == ["AI翻译耳机走红：学外语还有必要吗？"]
    assert len(titles(everything)) == 7


@pytest.mark.parametrize(
    ("taken", "kept"),
    [
        (ArticleFilter(), True),
        (ArticleFilter(include=("harbin",)), True),  # any case, in the title
        (ArticleFilter(include=("sato",)), True),  # an author
        (ArticleFilter(include=("外交",)), True),  # a tag
        (ArticleFilter(include=("工业大学",)), True),  # the body's text
        (ArticleFilter(include=("<p>",)), False),  # text, not markup
        (ArticleFilter(include=("/h[ae]rbin/",)), True),
        (ArticleFilter(include=("体育", "哈尔滨")), True),  # one of them is enough
        (ArticleFilter(exclude=("Harbin",)), False),
        (ArticleFilter(include=("哈尔滨",), exclude=("/工业.学/",)), False),
        (ArticleFilter(max_age_days=7), True),
        (ArticleFilter(max_age_days=2), False),
    ],
)
def test_what_a_filter_takes(taken: ArticleFilter, kept: bool) -> None:
    article = make_article(
        "<p>普京访问哈尔滨工业大学。</p>",
        title="Putin in Harbin",
        authors=("Naomi Sato",),
        tags=("外交",),
        published=datetime(2024, 5, 22, tzinfo=UTC),
    )
    assert (taken.refusal(article, NOW) is None) == kept


def test_an_undated_article_is_never_too_old() -> None:
    article = make_article("<p>x</p>", published=None, captured=None)
    assert ArticleFilter(max_age_days=1).refusal(article, NOW) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources:\n  - path: x\n    include: ['/(/']\n", "bad regular expression /(/"),
        ("sources:\n  - path: x\n    exclude: ['']\n", "an empty word matches everything"),
        ("sources:\n  - path: x\n    max_age_days: 0\n", "must be greater than 0"),
    ],
)
def test_bad_filters_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)
