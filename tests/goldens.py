"""Shared by the golden test and `make golden`: what the golden files hold for an example."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from conftest import read_source, run_command

from convert.config import FeedTarget, load_config
from convert.model import Article, to_json

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.txt"))
FEED_EXAMPLES = sorted((ROOT / "examples").glob("*.xml"))
SELF_URL = "https://example.org/feeds/{name}"
GOLDEN = ROOT / "tests" / "golden"


def article_of(example: Path) -> Article:
    """The cleaned article of one example, with the shipped config."""
    (article,) = read_source(str(example.relative_to(ROOT)), load_config()).articles
    return article


def article_json(article: Article) -> str:
    """The golden JSON text of an article."""
    return json.dumps(to_json(article), ensure_ascii=False, indent=2) + "\n"


def feed_goldens(example: Path) -> dict[str, Path]:
    """Where the articles JSON and each written format of a feed example are kept."""
    return {
        "articles": GOLDEN / f"{example.stem}.articles.json",
        "rss": GOLDEN / f"{example.stem}.rss.xml",
        "atom": GOLDEN / f"{example.stem}.atom.xml",
        "json": GOLDEN / f"{example.stem}.feed.json",
    }


def feed_outputs(example: Path, tmp: Path) -> dict[str, bytes]:
    """The articles JSON and every format written from a feed example."""
    config = load_config()
    articles = read_source(str(example.relative_to(ROOT)), config).articles
    outputs = {
        "articles": (
            json.dumps([to_json(a) for a in articles], ensure_ascii=False, indent=2) + "\n"
        ).encode("utf-8")
    }
    for fmt in ("rss", "atom", "json"):
        out = tmp / f"out.{fmt}"
        target = FeedTarget(path=str(out), format=fmt, self_url=SELF_URL.format(name=out.name))
        run_command(config, [str(example.relative_to(ROOT))], "feed", target, now=NOW)
        outputs[fmt] = out.read_bytes()
    return outputs


# The examples' week is 2024-W21; "now" is fixed so that no stale warning depends on the day.
NOW = datetime(2024, 5, 27, tzinfo=UTC)


def golden_paths(example: Path) -> tuple[Path, Path]:
    """Where the Article JSON and the Markdown of `example` are kept."""
    return GOLDEN / f"{example.stem}.article.json", GOLDEN / f"{example.stem}.md"
