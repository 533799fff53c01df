"""Drop tracking pixels: pictures that only count their readers, never content."""

from __future__ import annotations

import dataclasses
import functools
import re

from lxml.html import HtmlElement

from convert.cleaning.draft import Draft
from convert.cleaning.rules import CleanRules
from convert.config import Trackers
from convert.model import Image
from convert.urls import host_in, host_of


def drop_tracker_pixels(draft: Draft, rules: CleanRules) -> None:
    """Remove every tracker's `<img>` and every picture declared 1×1 or 0×0, from the
    body and from the article's pictures, before any output collects them."""
    trackers = rules.trackers
    root = draft.tree()
    dropped: set[str] = set()
    for img in list(root.iter("img")):
        src = (img.get("src") or "").strip()
        if is_tracker(src, trackers) or _declared_tiny(img):
            dropped.add(src)
            img.drop_tree()

    def kept(image: Image) -> bool:
        width, height = image.width, image.height
        tiny = width is not None and height is not None and width <= 1 and height <= 1
        return image.url not in dropped and not tiny and not is_tracker(image.url, trackers)

    article = draft.article
    images = tuple(image for image in article.images if kept(image))
    lead = article.lead_image if article.lead_image is None or kept(article.lead_image) else None
    if len(images) != len(article.images) or lead is not article.lead_image:
        draft.article = dataclasses.replace(article, images=images, lead_image=lead)


def is_tracker(url: str, trackers: Trackers) -> bool:
    """True for the address of a tracking pixel, by its host or its shape."""
    if not url:
        return False
    if trackers.hosts and host_in(host_of(url), trackers.hosts):
        return True
    return any(pattern.search(url) for pattern in _compiled(trackers.patterns))


@functools.cache
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in patterns)


def _declared_tiny(img: HtmlElement) -> bool:
    """`width="1" height="1"` (or 0): a pixel, whatever its address."""
    sizes = [(img.get(name) or "").strip().removesuffix("px") for name in ("width", "height")]
    return all(size.isdigit() and int(size) <= 1 for size in sizes)
