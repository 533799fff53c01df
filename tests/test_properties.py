"""Property-based: for arbitrary HTML bodies and titles the pipeline either raises the
project's own error or produces RSS that feedparser reads with bozo 0, Markdown with
no raw `<script>` and no `javascript:` target, and an EPUB whose XHTML parses as XML.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from datetime import date
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import lxml.html
import pytest
from conftest import make_article
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from lxml import etree
from markdown_it import MarkdownIt

from convert.cleaning import clean
from convert.config import load_config
from convert.errors import ConvertError
from convert.fragments import parse_fragment, text_of
from convert.model import Channel, Digest, Feed
from convert.plan import settings_of
from convert.readers.feedx import read_feedx
from convert.text import has_text, plain_text, remove_invalid_xml
from convert.urls import absolute_url, as_uri, is_web_url
from convert.writers.epub import EpubOptions, write_epub
from convert.writers.markdown import render_markdown
from convert.writers.rss import write_atom, write_rss
from convert.writers.summary import SUMMARY_LENGTH, article_summary

SETTINGS = settings_of(load_config())
URL = "https://cn.nytimes.com/world/20240520/property/"

_SCHEMES = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "jav&#x09;ascript:x()",
    " javascript:x",
    "vbscript:x",
    "data:text/html,<script>x</script>",
    "file:///etc/passwd",
    "https://a.example/x_(y)?q=1&amp;r=2#f",
    "/relative/path",
    "mailto:a@b.c",
    "https://images.weserv.nl/?url=static01.nyt.com/a.jpg",
    "&#106;avascript:x",
]
_TAGS = [
    "p",
    "div",
    "span",
    "a",
    "img",
    "b",
    "em",
    "script",
    "style",
    "iframe",
    "svg",
    "math",
    "table",
    "tr",
    "td",
    "ul",
    "li",
    "blockquote",
    "figure",
    "figcaption",
    "h2",
    "pre",
    "code",
    "br",
    "hr",
    "object",
    "embed",
    "form",
    "input",
    "base",
    "meta",
    "noscript",
    "template",
    "section",
    "footer",
    "address",
    "time",
    "small",
    "cite",
    "textarea",
]
_ATTRS = [
    "href",
    "src",
    "onclick",
    "onerror",
    "style",
    "srcset",
    "xlink:href",
    "pudate",
    "width",
    "title",
    "alt",
    "formaction",
    "action",
]
# Text is built from pieces that each stress something: CJK and its punctuation,
# Markdown syntax, entities (some of them invalid), controls, bidi overrides, comment
# and CDATA delimiters, the feedx promotion.
_PIECES = [
    *"中文字符标点，。“”《》abc XYZ*_[]()#>!`~|\\<&;:\n\t",
    "\x00",
    "\x01",
    "\x1b[31m",
    "\u202e",
    "&lt;script&gt;",
    "&amp;",
    "&#0;",
    "&#xD800;",
    "&#x1b;",
    "<!--",
    "-->",
    "]]>",
    "获取更多RSS",
    "[x](javascript:alert(1))",
    "\ud7ff",
]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


def _attribute_value(name: str) -> st.SearchStrategy[str]:
    if name in ("href", "src", "xlink:href"):
        return st.sampled_from(_SCHEMES)
    return _TEXT.map(lambda text: text.replace('"', ""))


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(_TAGS))
    names = draw(st.lists(st.sampled_from(_ATTRS), max_size=3, unique=True))
    attrs = "".join(f' {name}="{draw(_attribute_value(name))}"' for name in names)
    children = (
        ""
        if depth >= 3
        else "".join(draw(st.lists(st.one_of(_TEXT, _element(depth + 1)), max_size=4)))
    )
    closing = draw(st.sampled_from([f"</{tag}>", "", f"</{tag}>"]))  # sometimes unclosed
    return f"<{tag}{attrs}>{children}{closing}"


BODIES = st.lists(st.one_of(_TEXT, _element()), min_size=1, max_size=6).map("".join)
TITLES = _TEXT


def _check_markdown(markdown: str) -> None:
    body = markdown.split("---\n", 2)[2]
    html = MarkdownIt("commonmark").enable("table").render(body)
    assert "<script" not in html.lower()
    tree = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in tree.iter():
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on")
            if name in ("href", "src"):
                assert not re.match(r"\s*(javascript|vbscript|data|file):", value, re.I)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, title=TITLES)
# Found by this test: a stray <li> after text, a <pre> inside (`中- ```` is no list);
# a <pre> inside <b> (`**```` is no fence).
@example(body="<span>中<li></li></span><pre>&lt;script&gt;</pre>", title="")
@example(body="<b><pre>&lt;script&gt;</pre></b>", title="")
def test_any_body_and_title_give_safe_outputs_or_our_error(body: str, title: str) -> None:
    dump = f"<!--1716170821000-->\n[{title}]({URL})\n------\n\n{body}\n"
    try:
        data = dump.encode("utf-8", "surrogatepass")
        (parsed,) = read_feedx(data, "prop.txt", SETTINGS.reading).items
        rules = SETTINGS.cleaning.rules_for(parsed.article.source_host)
        article = clean(parsed.article, rules, parsed.body).article
    except ConvertError:
        event("refused with ConvertError")
        return  # refused with the project's own error: a one-line message
    _check_markdown(render_markdown(article))

    feed = Feed(
        channel=Channel(title="t", link="https://e.org/", self_url="https://e.org/f"),
        articles=(article,),
    )
    for data in (write_rss(feed), write_atom(feed)):
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        assert b"<script" not in data.lower().replace(b"&lt;script", b"")

    digest = Digest(
        name="d",
        label="2024-W21",
        start=date(2024, 5, 20),
        end=date(2024, 5, 26),
        language="zh-Hans",
        identifier="urn:uuid:0",
        articles=(article,),
        modified=article.published or article.captured,
    )  # type: ignore[arg-type]
    book = write_epub(digest, {}, EpubOptions())
    with zipfile.ZipFile(io.BytesIO(book)) as archive:
        for name in archive.namelist():
            if name.endswith(".xhtml"):
                root = etree.fromstring(archive.read(name))
                assert not list(root.iter("{http://www.w3.org/1999/xhtml}script"))


_SUMMARY_PIECES = ["中", "文", "，", "。", "“", " ", "  ", "\n", "\t", "\u3000", "\xa0"]
_SUMMARY_PIECES += ["a", "b", "&amp;", "\x01", "\u202e", "&#0;", "．", "！"]
_SUMMARY_TEXT = st.lists(st.sampled_from(_SUMMARY_PIECES), max_size=400).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["p", "li", "h2", "td", "div", "span"]), _SUMMARY_TEXT),
        max_size=12,
    )
)
def test_feed_summary_is_the_opening_of_the_whole_cleaned_text(
    blocks: list[tuple[str, str]],
) -> None:
    """article_summary cleans only an opening of the text: it must equal the summary cut
    from the whole text cleaned (plain_text must stay local for that)."""
    body = "".join(f"<{tag}>{text}</{tag}>" for tag, text in blocks)
    article = make_article(body, title="标题")
    tree = parse_fragment(article.body)
    whole = plain_text(" ".join(text_of(b) for b in tree.iter("p", "li", "h2", "h3", "h4", "td")))
    expected = whole if len(whole) <= SUMMARY_LENGTH else whole[:SUMMARY_LENGTH].rstrip() + "…"
    assert article_summary(article) == (expected or article.title)


@settings(max_examples=500, deadline=None)
@given(_SUMMARY_TEXT, st.integers(min_value=0, max_value=400))
def test_plain_text_of_an_opening_is_the_opening_of_plain_text(text: str, cut: int) -> None:
    """What the summary relies on: cleaning is local, only the last character may differ."""
    opening = plain_text(text[:cut])
    assert plain_text(text).startswith(opening[:-1])


# Pieces of addresses, odd ones included: what urlsplit strips, rewrites or refuses.
_URL_PIECES = st.sampled_from(
    [
        *"http https HTTP : // / a.com b ? # ; x=1 & [ ] ::1 .. . %20 中 @ :80".split(),
        *[" ", "\t", "\n", "\x01", "\x7f", "\u3000", ""],
    ]
)


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from(["https://cn.nytimes.com/a/b/", "http://a.com/b;p?q#f", "", "file:///x"]),
    st.lists(_URL_PIECES, max_size=10).map("".join),
    st.sampled_from(["", "http://", "https://"]),
)
def test_absolute_url_is_urljoin(base: str, rest: str, scheme: str) -> None:
    """The shortcut for URLs that are absolute already never changes what urljoin gives."""
    url = scheme + rest
    try:
        expected = urljoin(base, url)
    except ValueError as error:  # a bracket that is no IPv6 address
        with pytest.raises(ValueError, match=re.escape(str(error))):
            absolute_url(base, url)
        return
    assert absolute_url(base, url) == expected


# RFC 3986's characters of a URI (as the W3C feed validator checks links and ids).
_URI_CHARS = re.compile(r"[0-9A-Za-z;/?:@&=+$.\-_!~*'()%,#\[\]]*")


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from(["https://", "http://", "HTTPS://"]),
    st.sampled_from(["a.com", "A.Com:443", "例子.测试", "[::1]:8080", "u:p@b.org:80"]),
    st.lists(
        st.sampled_from(
            [
                *'/ /. /.. ? # & = ; ` ^ | { } < > " ~ ( ) $ 中 é a b'.split(),
                "%7e",
                "%2F",
                "%e4%b8%ad",
                " ",
                "%",
                "e\u0301",
            ]
        ),
        max_size=12,
    ).map("".join),
)
def test_as_uri_is_ascii_canonical_and_goes_to_the_same_place(
    scheme: str, host: str, rest: str
) -> None:
    """Feeds write every address in RFC 3986's normal form: URI characters only, the
    same form twice over, and the same host, path, query and fragment once decoded."""
    url = scheme + host + rest
    assume(is_web_url(url))  # what a feed writes as an address
    uri = as_uri(url)
    assert _URI_CHARS.fullmatch(uri), uri
    assert as_uri(uri) == uri
    before, after = urlsplit(unicodedata.normalize("NFC", url.strip())), urlsplit(uri)
    assert after.scheme == before.scheme.lower()
    default = {"http": 80, "https": 443}[after.scheme]
    assert after.port == (None if before.port == default else before.port)
    if (before.hostname or "").isascii():
        assert unquote(after.hostname or "") == unquote(before.hostname or "")
    if ".." not in before.path and "/." not in before.path:
        assert unquote(after.path) == (unquote(before.path) or "/")
    assert unquote(after.query) == unquote(before.query)
    assert unquote(after.fragment) == unquote(before.fragment)


@settings(max_examples=2000, deadline=None)
@given(st.text(st.sampled_from(" \t\n\x0b\x0c\x00\x1f\x85\xa0\u3000\u2028\u202e\ud800中，a")))
def test_has_text_is_whether_plain_text_leaves_any(text: str) -> None:
    """has_text answers without tidying: it must agree with plain_text itself."""
    assert has_text(text) == bool(plain_text(text))


@settings(max_examples=300, deadline=None)
@given(BODIES)
@example("<!--<div>--></div>")  # found by it: ends the container early in a wrapper's text
def test_text_of_is_every_text_node_in_document_order(body: str) -> None:
    """text_of joins the text in C: it must read as itertext does, on our parser's trees
    and on lxml's own (which keeps comments and processing instructions)."""
    for root in (
        parse_fragment(body),
        lxml.html.fragment_fromstring(
            f"{remove_invalid_xml(body)}<?pi x?><!-- c -->", create_parent="div"
        ),
    ):
        for element in root.iter(etree.Element):  # elements, not the comments
            assert text_of(element) == "".join(element.itertext())
