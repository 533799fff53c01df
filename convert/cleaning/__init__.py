"""Cleaning, in order: named steps over one draft of the article, its body parsed once.

The list below is the whole of it; read it top to bottom. Each step is a function
`(Draft, CleanRules) -> None` that changes the draft's tree in place (and its fields
with `dataclasses.replace`). The body is parsed when cleaning starts (or taken over
from the reader's tree) and serialized once when it ends; the one step that must see
text, nh3's sanitizer, asks the draft for it (`Draft.text`), and so may a site's
regular expressions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from lxml.html import HtmlElement

from convert.cleaning.draft import Cleaned, Draft
from convert.cleaning.images import rewrite_mirrored_images
from convert.cleaning.promo import strip_feedx_promo, strip_promo_from_channel
from convert.cleaning.rules import CleanOptions, CleanRules
from convert.cleaning.sanitize import sanitize_body
from convert.cleaning.site_rules import apply_site_rules
from convert.cleaning.tidy import tidy_body
from convert.cleaning.trackers import drop_tracker_pixels
from convert.model import Article, Channel

Step = Callable[[Draft, CleanRules], None]

STEPS: tuple[tuple[str, Step], ...] = (
    ("apply_site_rules", apply_site_rules),  # the site's own rules see the body as it came
    ("strip_feedx_promo", strip_feedx_promo),
    ("rewrite_mirrored_images", rewrite_mirrored_images),
    ("drop_tracker_pixels", drop_tracker_pixels),  # addresses are origins by now
    ("sanitize_body", sanitize_body),  # after the rewrite: proxied URLs are checked as origins
    ("tidy_body", tidy_body),  # last: cleans up what the steps before removed
)
"""Every cleaning step, by name, in the order they run."""

__all__ = [
    "STEPS",
    "CleanOptions",
    "CleanRules",
    "Cleaned",
    "Draft",
    "Step",
    "clean",
    "clean_channel",
]


def clean_channel(channel: Channel, rules: CleanRules) -> Channel:
    """A feed's own title and description without the mirror's promotion."""
    title = strip_promo_from_channel(channel.title, rules.promo)
    description = strip_promo_from_channel(channel.description, rules.promo)
    if (title, description) == (channel.title, channel.description):
        return channel
    return dataclasses.replace(channel, title=title, description=description)


def clean(article: Article, rules: CleanRules, body: HtmlElement | None = None) -> Cleaned:
    """Run every step over `article` (whose body the reader may give parsed as `body`)."""
    draft = Draft(article, body)
    for _name, step in STEPS:
        step(draft, rules)
    return draft.finished()
