"""One script per reader: articles written in the other Chinese script, converted.

An output with `script: zh-Hans` (or `zh-Hant`, `zh-Hant-TW`, `zh-Hant-HK`) shows
every Chinese article in that script: OpenCC converts the words people read (title,
body text, captions, credits, alt texts, author and source names, link titles, the
summary) and never an address, markup, code or a key. The article's `language`
becomes the target's and `converted_from` keeps the original. `keep` leaves articles
as written. A service beneath the outputs, as `identity` and `media` are.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from convert.fragments import inner_html, parse_fragment
from convert.model import Article, Contributor, Image, Link

if TYPE_CHECKING:
    from lxml.html import HtmlElement

    from convert.cleaning import Cleaned

KEEP = "keep"
SCRIPTS = (KEEP, "zh-Hans", "zh-Hant", "zh-Hant-TW", "zh-Hant-HK")
"""What `script:` may say."""

# OpenCC's configurations: Traditional (of Taiwan, Hong Kong or neither) to Simplified,
# and Simplified to Traditional with Taiwan's or Hong Kong's vocabulary where it has it.
_TO_SIMPLIFIED = {"TW": "tw2sp", "HK": "hk2s", "": "t2s"}
_FROM_SIMPLIFIED = {"zh-Hant": "s2t", "zh-Hant-TW": "s2twp", "zh-Hant-HK": "s2hk"}
_HANT_REGIONS = ("TW", "HK", "MO")
# Text inside these is shown as written: code is not prose.
_VERBATIM = frozenset({"code", "pre", "kbd", "samp", "var", "script", "style"})

Convert = Callable[[str], str]


def script_of(language: str) -> str | None:
    """`zh-Hans` or `zh-Hant` for a Chinese language tag, None for any other."""
    parts = [part.casefold() for part in language.replace("_", "-").split("-")]
    if parts[0] != "zh":
        return None
    if "hant" in parts or any(region.casefold() in parts for region in _HANT_REGIONS):
        return "zh-Hant"
    return "zh-Hans"


def wanted_script(script: str) -> str | None:
    """The script an output asks for (`zh-Hans`, `zh-Hant`), None for `keep`."""
    return None if script == KEEP else script_of(script)


def in_script(article: Article, script: str) -> Article:
    """`article` in `script`: converted when it is Chinese in the other script."""
    convert = _converter_for(article.language, script)
    if convert is None:
        return article
    root = parse_fragment(article.body) if article.body else None
    if root is not None:
        _convert_tree(root, convert)
    body = inner_html(root) if root is not None else article.body
    return _converted(article, convert, script, body)


def cleaned_in_script(cleaned: Cleaned, script: str) -> Cleaned:
    """A cleaned article and its tree in `script` (the original's tree is left as it is)."""
    convert = _converter_for(cleaned.article.language, script)
    if convert is None:
        return cleaned
    tree = copy.deepcopy(cleaned.body)
    _convert_tree(tree, convert)
    article = _converted(cleaned.article, convert, script, inner_html(tree))
    return dataclasses.replace(cleaned, article=article, body=tree)


def _converter_for(language: str, script: str) -> Convert | None:
    want = wanted_script(script)
    have = script_of(language)
    if want is None or have is None or have == want:
        return None
    if want == "zh-Hans":
        region = next((r for r in _HANT_REGIONS[:2] if r.casefold() in language.casefold()), "")
        return _opencc(_TO_SIMPLIFIED[region])
    return _opencc(_FROM_SIMPLIFIED[script])


@functools.cache
def _opencc(configuration: str) -> Convert:
    import opencc  # noqa: PLC0415 - its dictionaries load in a tenth of a second: when asked

    converter = opencc.OpenCC(configuration)
    convert: Convert = converter.convert
    return convert


def _converted(article: Article, convert: Convert, script: str, body: str) -> Article:
    """The article's shown words converted (the body given), its language `script`."""

    def image(value: Image) -> Image:
        return dataclasses.replace(
            value,
            caption=convert(value.caption),
            credit=convert(value.credit),
            alt=convert(value.alt),
        )

    return dataclasses.replace(
        article,
        title=convert(article.title),
        body=body,
        summary=convert(article.summary),
        source_name=convert(article.source_name),
        authors=tuple(convert(name) for name in article.authors),
        translator=convert(article.translator),
        contributors=tuple(
            Contributor(name=convert(c.name), role=c.role) for c in article.contributors
        ),
        lead_image=image(article.lead_image) if article.lead_image else None,
        images=tuple(image(value) for value in article.images),
        credits=tuple(convert(credit) for credit in article.credits),
        links=tuple(
            Link(url=link.url, rel=link.rel, title=convert(link.title), language=link.language)
            for link in article.links
        ),
        language=script,
        converted_from=article.converted_from or article.language,
    )


def _convert_tree(root: HtmlElement, convert: Convert) -> None:
    """Every text of `root` converted in place, but inside code; attributes never."""
    stack = [root]
    while stack:
        element = stack.pop()
        verbatim = isinstance(element.tag, str) and element.tag in _VERBATIM
        if element.text and not verbatim and isinstance(element.tag, str):
            element.text = convert(element.text)
        if element.tail and element is not root:
            element.tail = convert(element.tail)
        if not verbatim:  # inside code, every text stays, a child's tail too
            stack.extend(element)
