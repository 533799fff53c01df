"""Every Markdown output renders (markdown-it-py) to everything its Article holds.

For each example: every paragraph's text, every picture URL, every caption and
credit and every link of the Article is in the rendered HTML, and nothing of the
feedx promotion or of an image proxy is anywhere in the Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest
import yaml
from goldens import EXAMPLES, ROOT, article_of
from markdown_it import MarkdownIt

from convert.fragments import parse_fragment, text_of
from convert.model import Article
from convert.writers.markdown import render_markdown

PROMO_AND_PROXIES = ("获取更多RSS", "feedx.", "images.weserv.nl", "wsrv.nl", ".wp.com")
_BLOCKS = ("p", "li", "td", "th", "h1", "h2", "h3", "h4", "blockquote", "figcaption")


def squeeze(text: str) -> str:
    """Text without white space: CJK text has none to compare."""
    return re.sub(r"\s+", "", text)


def render(markdown: str) -> tuple[dict[str, object], lxml.html.HtmlElement]:
    """Front matter as data, and the rendered body as an HTML tree."""
    _, front, body = markdown.split("---\n", 2)
    html = MarkdownIt("commonmark").enable("table").render(body)
    return yaml.safe_load(front), lxml.html.fragment_fromstring(html, create_parent="div")


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.stem)
def example(request: pytest.FixtureRequest, monkeypatch_module: None) -> tuple[Article, str]:
    path: Path = request.param
    article = article_of(path)
    return article, render_markdown(article)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.chdir(ROOT)
    yield
    mp.undo()


def test_front_matter(example: tuple[Article, str]) -> None:
    article, markdown = example
    front, _ = render(markdown)
    assert front["title"] == article.title
    assert front["url"] == article.url
    assert front["language"] == article.language
    assert front["source"] == article.source_name
    assert article.published is not None
    assert front["published"] == article.published.isoformat()
    assert front.get("authors", []) == list(article.authors)
    if article.lead_image:
        assert front["lead_image"] == article.lead_image.url


def test_every_paragraph_is_there(example: tuple[Article, str]) -> None:
    article, markdown = example
    _, rendered = render(markdown)
    shown = squeeze(text_of(rendered))
    blocks = list(parse_fragment(article.body).iter(*_BLOCKS))
    assert blocks
    for block in blocks:
        assert squeeze(text_of(block)) in shown


def test_every_picture_caption_and_credit_is_there(example: tuple[Article, str]) -> None:
    article, markdown = example
    _, rendered = render(markdown)
    sources = [img.get("src") for img in rendered.iter("img")]
    shown = squeeze(text_of(rendered))
    for image in article.images:
        assert image.url in sources
        assert squeeze(image.caption) in shown
        assert squeeze(image.credit) in shown
    assert len(sources) == len(article.images)


def test_every_link_and_credit_is_there(example: tuple[Article, str]) -> None:
    article, markdown = example
    _, rendered = render(markdown)
    hrefs = {a.get("href") for a in rendered.iter("a")}
    body_links = {a.get("href") for a in parse_fragment(article.body).iter("a")}
    for url in body_links | {link.url for link in article.links}:
        assert url in hrefs
    shown = squeeze(text_of(rendered))
    for credit in article.credits:
        assert squeeze(credit) in shown


def test_no_promo_or_proxy_remains(example: tuple[Article, str]) -> None:
    _, markdown = example
    for trace in PROMO_AND_PROXIES:
        assert trace not in markdown


def test_structure_survives() -> None:
    article = article_of(ROOT / "examples" / "nyt-rich-structure.txt")
    _, rendered = render(render_markdown(article))
    for tag in ("table", "th", "ul", "li", "blockquote", "em", "strong", "a", "img"):
        assert next(rendered.iter(tag), None) is not None, tag
