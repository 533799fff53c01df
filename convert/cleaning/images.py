"""Point pictures at their origin (or the user's mirror) instead of an image proxy."""

from __future__ import annotations

import dataclasses
import logging
from urllib.parse import parse_qsl, urlsplit

from convert.cleaning.draft import Draft
from convert.cleaning.rules import CleanRules
from convert.config import ImageProxy
from convert.model import Image
from convert.text import escape_url_characters
from convert.urls import absolute_url, is_web_url

log = logging.getLogger(__name__)

# A proxied URL may wrap another proxy; unwrap a few layers, no more.
_MAX_LAYERS = 3


def rewrite_mirrored_images(draft: Draft, rules: CleanRules) -> None:
    """Rewrite every proxied picture URL in the body and the image list."""
    article = draft.article
    rewritten: dict[str, str] = {}

    def resolve(url: str) -> str:
        if url not in rewritten:
            absolute = absolute_url(article.url, url.strip()) if article.url else url.strip()
            rewritten[url] = image_origin(absolute, rules)
        return rewritten[url]

    root = draft.tree()
    for img in list(root.iter("img")):
        src = (img.get("src") or "").strip()
        img.attrib.pop("srcset", None)  # proxy-made sizes; the origin is enough
        if not src:
            continue  # nothing to rewrite; the sanitizer keeps its alt text
        new = resolve(src)
        if not new:
            log.warning(
                "%s: dropped a picture whose proxy URL has no usable origin: %s",
                article.url or article.title,
                src[:120],
            )
            figure = next((a for a in img.iterancestors("figure")), None)
            (figure if figure is not None else img).drop_tree()
        else:
            img.set("src", new)
    for anchor in root.iter("a"):
        href = (anchor.get("href") or "").strip()
        if _proxy_for(href, rules.image_proxies) is not None:
            anchor.set("href", resolve(href) or "")

    def moved(image: Image) -> Image | None:
        new = resolve(image.url)
        if not new:
            return None
        if new == image.url:
            return image
        return dataclasses.replace(image, url=new, mirrored_url=image.mirrored_url or image.url)

    lead = moved(article.lead_image) if article.lead_image else None
    images = tuple(m for m in (moved(image) for image in article.images) if m is not None)
    draft.article = dataclasses.replace(article, lead_image=lead, images=images)


def image_origin(url: str, rules: CleanRules) -> str:
    """Where a picture really is: its unwrapped origin, or '' when a proxy hides none.

    With `image_mirror` set, every web picture goes through the user's mirror instead.
    """
    origin = url
    for _ in range(_MAX_LAYERS + 1):
        proxy = _proxy_for(origin, rules.image_proxies)
        if proxy is None:
            break
        origin = _unwrap(origin, proxy)
        if not origin:
            return ""
    else:
        return ""  # proxies all the way down
    if not is_web_url(origin):
        return "" if origin != url else url  # a relative URL is the sanitizer's business
    return _to_mirror(origin, rules.image_mirror) if rules.image_mirror else origin


def _proxy_for(url: str, proxies: tuple[ImageProxy, ...]) -> ImageProxy | None:
    # A host is a piece of its URL: most URLs name no proxy and need no parsing.
    lowered = url.lower()
    if not any(host in lowered for proxy in proxies for host in proxy.hosts):
        return None
    try:
        host = (urlsplit(_with_scheme(url)).hostname or "").lower()
    except ValueError:
        return None
    return next((p for p in proxies if host in p.hosts), None)


def _with_scheme(url: str) -> str:
    """Give a scheme to `//host/...` and `host/...` so that it parses as an address."""
    url = url.strip()
    if url.startswith("//"):
        return "https:" + url
    if "://" not in url.split("?", 1)[0]:
        return "https://" + url
    return url


def _unwrap(url: str, proxy: ImageProxy) -> str:
    parts = urlsplit(_with_scheme(url))
    if proxy.origin_in == "query":
        # parse_qsl undoes the percent-encoding; proxy options (&w=, &output=) are dropped.
        values = [v for k, v in parse_qsl(parts.query) if k == proxy.parameter]
        if not values or not values[0].strip():
            return ""
        # What the decoding made raw and may not stand raw in a URL (`%01`, `%C2%85`) is
        # encoded again: lxml refuses control characters in an attribute.
        origin = escape_url_characters(values[0])
        if origin.startswith("ssl:"):  # weserv's old spelling of https
            origin = "https://" + origin[4:]
        return _with_scheme(origin)
    # `i0.wp.com/host/path?w=…`: the path is the origin; the query is Photon's options.
    path = parts.path.lstrip("/")
    return _with_scheme(path) if "/" in path or "." in path else ""


def _to_mirror(origin: str, template: str) -> str:
    parts = urlsplit(origin)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return template.format(host=parts.netloc.lower(), path=path)
