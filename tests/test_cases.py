"""Cleaning cases: one self-describing YAML file per case in tests/cases/, found by glob.

A case names the cleaning step (or `clean` for the whole list), gives an article body
(and optionally its URL and a config overlay), and says what the result must be:

    description: why this case exists
    step: strip_feedx_promo
    body: <p>...</p>
    expect: <p>...</p>            # the exact body, or
    contains: [...]               # pieces that must be in the body
    absent: [...]                 # pieces that must not be
    images: [...]                 # the article's picture URLs afterwards
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import make_article

from convert.cleaning import STEPS, Draft, clean
from convert.config import load_config
from convert.model import Image
from convert.plan import settings_of

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))
KEYS = {
    "description",
    "step",
    "url",
    "config",
    "body",
    "images",
    "expect",
    "contains",
    "absent",
    "expect_images",
}


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    unknown = set(case) - KEYS
    assert not unknown, f"{path.name}: unknown keys {unknown}"
    assert case.get("description"), f"{path.name}: say what the case is for"
    return case


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case(path: Path, tmp_path: Path) -> None:
    case = load_case(path)
    config = load_config()
    if case.get("config"):
        overlay = tmp_path / "config.yaml"
        overlay.write_text(yaml.safe_dump(case["config"], allow_unicode=True), encoding="utf-8")
        config = load_config(overlay)
    images = tuple(Image(url=u) for u in case.get("images", ()))
    article = make_article(
        case["body"], **({"url": case["url"]} if "url" in case else {}), images=images
    )
    name = case["step"]
    rules = settings_of(config).cleaning.rules_for(article.source_host)
    if name == "clean":
        result = clean(article, rules).article
    else:
        steps = dict(STEPS)
        assert name in steps, f"{path.name}: no cleaning step {name}"
        draft = Draft(article)
        steps[name](draft, rules)
        result = draft.finished().article
    if "expect" in case:
        assert result.body == case["expect"].strip()
    for piece in case.get("contains", ()):
        assert piece in result.body
    for piece in case.get("absent", ()):
        assert piece not in result.body
    if "expect_images" in case:
        assert [image.url for image in result.images] == case["expect_images"]


def test_there_are_cases_for_every_cleaning_step() -> None:
    named = {load_case(path)["step"] for path in CASES}
    assert {name for name, _ in STEPS} <= named
