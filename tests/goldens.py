"""Shared by the golden test and `make golden`: what the golden files hold for an example."""

from __future__ import annotations

import json
from pathlib import Path

from convert.config import load_config
from convert.model import Article, to_json
from convert.pipeline import read_articles

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.txt"))
GOLDEN = ROOT / "tests" / "golden"


def article_of(example: Path) -> Article:
    """The cleaned article of one example, with the shipped config."""
    (article,) = read_articles(str(example.relative_to(ROOT)), load_config())
    return article


def article_json(article: Article) -> str:
    """The golden JSON text of an article."""
    return json.dumps(to_json(article), ensure_ascii=False, indent=2) + "\n"


def golden_paths(example: Path) -> tuple[Path, Path]:
    """Where the Article JSON and the Markdown of `example` are kept."""
    return GOLDEN / f"{example.stem}.article.json", GOLDEN / f"{example.stem}.md"
