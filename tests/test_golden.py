"""Each example's Article JSON and Markdown match the golden files beside it.

Regenerate with `make golden` after an intended change, then review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from goldens import EXAMPLES, ROOT, article_json, article_of, golden_paths

from convert.model import Article, from_json, to_json
from convert.writers.markdown import render_markdown


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # messages and ids must not depend on where pytest runs


def test_there_are_enough_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_article_json_matches_golden(example: Path) -> None:
    json_path, _ = golden_paths(example)
    assert article_json(article_of(example)) == json_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_markdown_matches_golden(example: Path) -> None:
    _, md_path = golden_paths(example)
    assert render_markdown(article_of(example)) == md_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_json_round_trip_is_lossless(example: Path) -> None:
    article = article_of(example)
    data = json.loads(json.dumps(to_json(article), ensure_ascii=False))
    assert from_json(Article, data) == article
