"""Cleaning, in order: each step is a pure function `(Article, Rules) -> Article`.

The list below is the pipeline; read it top to bottom.
"""

from __future__ import annotations

from collections.abc import Callable

from convert.config import Config, Rules
from convert.model import Article
from convert.transforms.images import rewrite_mirrored_images
from convert.transforms.promo import strip_feedx_promo
from convert.transforms.sanitize import sanitize_body
from convert.transforms.site_rules import apply_site_rules
from convert.transforms.tidy import tidy_body

Transform = Callable[[Article, Rules], Article]

TRANSFORMS: tuple[tuple[str, Transform], ...] = (
    ("apply_site_rules", apply_site_rules),  # the site's own rules see the body as it came
    ("strip_feedx_promo", strip_feedx_promo),
    ("rewrite_mirrored_images", rewrite_mirrored_images),
    ("sanitize_body", sanitize_body),  # after the rewrite: proxied URLs are checked as origins
    ("tidy_body", tidy_body),  # last: cleans up what the steps before removed
)


def clean(article: Article, config: Config) -> Article:
    """Run every transform over `article` with the rules of its site."""
    rules = config.rules_for(article.source_host)
    for _name, transform in TRANSFORMS:
        article = transform(article, rules)
    return article
