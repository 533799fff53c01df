"""Make the body safe to publish: nh3 with a short allow-list, web URLs only, no trackers."""

from __future__ import annotations

import dataclasses

import nh3

from convert.cleaning.draft import Draft
from convert.cleaning.rules import CleanRules
from convert.model import Image, Link
from convert.text import escape_url_characters, plain_text, remove_invalid_xml
from convert.urls import absolute_url, drop_tracking, is_relative_reference, is_web_url

# Structure and emphasis that articles use; everything else is unwrapped to its text.
ALLOWED_TAGS = frozenset(
    """
    a abbr b blockquote br caption cite code dd del div dl dt em figcaption figure h1 h2 h3
    h4 h5 h6 hr i img ins kbd li mark ol p pre q s section small strong sub sup table tbody
    td tfoot th thead tr u ul
    """.split()
)
# Removed together with their content: code, frames, plug-ins, forms, foreign markup.
DROPPED_WITH_CONTENT = frozenset(
    """
    applet audio base button canvas embed form frame frameset head iframe input link math
    meta noscript object script select style svg template textarea title video
    """.split()
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start", "reversed"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}


def sanitize_body(draft: Draft, rules: CleanRules) -> None:
    """Sanitize the body and every URL and text field of the article.

    nh3 works on text: the body is serialized for it here, and parsed again by the
    next step that wants the tree (see `Draft`).
    """
    article = draft.article
    tracking = rules.tracking
    base = article.url if is_web_url(article.url) else ""

    def keep_url(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in ("href", "src"):
            return value
        # Joined first (which drops tabs and line breaks, as a browser does), then what
        # may not stand raw in a URL is percent-encoded.
        value = escape_url_characters(absolute_url(base, value.strip()) if base else value)
        # Pictures must come from the web; links may also be mailto: (the scheme is
        # what comes before the first colon, and the value is stripped).
        if tag == "a" and value[:7].lower() == "mailto:":
            return value
        if not is_web_url(value):
            # With no address to resolve it against, a relative one is kept as written.
            return value if not base and is_relative_reference(value) else None
        return drop_tracking(value, tracking)

    body = nh3.clean(
        remove_invalid_xml(draft.text()),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=keep_url,
        url_schemes={"http", "https", "mailto"},
        # keep_url resolves relative URLs and drops what stays relative ("deny" would
        # strip them before keep_url sees them).
        url_relative="pass_through",
        link_rel=None,
        strip_comments=True,
    )

    def clean_image(image: Image) -> Image | None:
        if not is_web_url(image.url):
            return None
        url = escape_url_characters(drop_tracking(image.url, tracking))
        caption, credit = plain_text(image.caption), plain_text(image.credit)
        alt = plain_text(image.alt)
        if (url, caption, credit, alt) == (image.url, image.caption, image.credit, image.alt):
            return image  # most are clean already: no copy
        return dataclasses.replace(image, url=url, caption=caption, credit=credit, alt=alt)

    def clean_link(link: Link) -> Link | None:
        if not is_web_url(link.url):
            return None
        url, title = (
            escape_url_characters(drop_tracking(link.url, tracking)),
            plain_text(link.title),
        )
        if (url, title) == (link.url, link.title):
            return link
        return dataclasses.replace(link, url=url, title=title)

    lead = clean_image(article.lead_image) if article.lead_image else None
    draft.set_text(body)
    draft.article = dataclasses.replace(
        article,
        url=drop_tracking(article.url, tracking),
        guid=_clean_guid(article.guid, tracking),
        title=plain_text(article.title),
        summary=plain_text(article.summary),
        authors=tuple(a for a in (plain_text(a) for a in article.authors) if a),
        translator=plain_text(article.translator),
        credits=tuple(c for c in (plain_text(c) for c in article.credits) if c),
        lead_image=lead,
        images=tuple(i for i in (clean_image(i) for i in article.images) if i is not None),
        links=tuple(k for k in (clean_link(k) for k in article.links) if k is not None),
        tags=tuple(t for t in (plain_text(t) for t in article.tags) if t),
    )


def _clean_guid(guid: str, tracking: tuple[str, ...]) -> str:
    """A feed's guid as it may be published again: a web address without its tracking
    parameters, any other URI as it is (never controls or white space)."""
    guid = escape_url_characters(guid)
    return drop_tracking(guid, tracking) if is_web_url(guid) else guid
