"""The Markdown writer, from models built here: inert, CJK-aware, safe file names."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import lxml.html
import yaml
from bs4 import BeautifulSoup, NavigableString
from conftest import make_article, read_source
from goldens import ROOT
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdownify import MarkdownConverter

from convert.config import load_config
from convert.errors import ConvertError
from convert.model import Article, Image
from convert.writers.markdown import (
    ArticleMarkdownConverter,
    markdown_file_name,
    no_picture_mark,
    render_markdown,
)


def rendered(article: Article) -> lxml.html.HtmlElement:
    body = render_markdown(article).split("---\n", 2)[2]
    html = MarkdownIt("commonmark").enable("table").render(body)
    return lxml.html.fragment_fromstring(html, create_parent="div")


def test_html_and_markdown_in_text_stay_text() -> None:
    article = make_article(
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; [x](javascript:alert(1)) "
        "*不是强调* # 不是标题</p>",
        title="<img src=x onerror=alert(1)> [点我](javascript:alert(1))",
    )
    tree = rendered(article)
    assert next(tree.iter("script"), None) is None
    assert next(tree.iter("em"), None) is None
    assert all(not (a.get("href") or "").startswith("javascript") for a in tree.iter("a"))
    assert [img.get("src") for img in tree.iter("img")] == []
    assert "<script>alert(1)</script>" in tree.text_content()
    assert "<img src=x onerror=alert(1)>" in tree.text_content()


def test_unsafe_targets_never_become_links() -> None:
    # The sanitizer runs before the writer; the writer still refuses on its own.
    article = make_article(
        '<p><a href="javascript:alert(1)">甲</a><a href="data:text/html,x">乙</a>'
        '<img src="vbscript:x" alt="丙"></p>'
    )
    markdown = render_markdown(article)
    assert "javascript:" not in markdown and "data:" not in markdown
    assert "vbscript:" not in markdown
    assert "甲" in markdown and "乙" in markdown and "丙" in markdown


def test_link_targets_cannot_break_out() -> None:
    article = make_article(
        '<p><a href="https://a.org/x_(y)?q=a b&lt;c&gt;">链接</a>'
        '<img src="https://a.org/p.jpg" alt="说明](https://evil.example)"></p>'
    )
    tree = rendered(article)
    hrefs = [a.get("href") for a in tree.iter("a")]
    assert hrefs == ["https://a.org/x_%28y%29?q=a%20b%3Cc%3E"]
    imgs = list(tree.iter("img"))
    assert [i.get("src") for i in imgs] == ["https://a.org/p.jpg"]
    assert imgs[0].get("alt") == "说明](https://evil.example)"


def test_cjk_emphasis_around_quotes_still_renders() -> None:
    article = make_article("<p>这种做法被称为<strong>“转运”</strong>等。<em>「重点」</em>之后</p>")
    tree = rendered(article)
    assert [s.text for s in tree.iter("strong")] == ["转运"]
    assert [e.text for e in tree.iter("em")] == ["重点"]
    assert "称为“转运”等。「重点」之后" in tree.text_content()


def test_no_spaces_inserted_between_cjk() -> None:
    article = make_article('<p>中文<b>粗体</b>文字<a href="https://a.org">链接</a>，结束。</p>')
    markdown = render_markdown(article)
    assert "中文**粗体**文字[链接](https://a.org)，结束。" in markdown


def test_whitespace_only_inline_tags_keep_words_apart() -> None:
    article = make_article("<p><b>Hello</b><em> </em><i>world</i></p>")
    assert "**Hello** *world*" in render_markdown(article)


def test_spaces_at_the_edges_of_emphasis_stay_outside_it() -> None:
    article = make_article("<p>a<b> bold </b>word and<em> “quoted”</em></p>")
    assert "a **bold** word and “*quoted*”" in render_markdown(article)


def test_figure_caption_and_credit_on_one_italic_line() -> None:
    image = Image(url="https://a.org/p.jpg", caption="说明文字", credit="Getty Images")
    article = make_article("<p>正文</p>", lead_image=image, images=(image,))
    markdown = render_markdown(article)
    assert "![说明文字](https://a.org/p.jpg)\n\n*说明文字（Getty Images）*" in markdown


def test_file_names_are_ascii_short_unique() -> None:
    taken: set[str] = set()
    hostile = make_article("<p>x</p>", url="https://a.org/../../etc/passwd%00/" + "长" * 300)
    long_one = make_article("<p>x</p>", url="https://a.org/" + "a-very-long-slug" * 20)
    names = [markdown_file_name(a, taken) for a in (hostile, hostile, long_one, long_one)]
    assert len(set(names)) == 4
    for name in names:
        assert name.isascii() and len(name) <= 100 and name.endswith(".md")
        assert "/" not in name and "\\" not in name and not name.startswith(".")
        assert name.startswith("2024-05-20-")


def test_code_cannot_leak_html_out_of_its_span_or_fence() -> None:
    # Found by the property test: a block inside <code> split the span in two.
    # And a <pre> inside <b> came out as `**```…```**`, which is no fence.
    for body in (
        "<code>&lt;script&gt;<ul></ul>中</code>",
        "<pre>a ``` b\n&lt;script&gt;</pre>",
        "<b><pre>&lt;script&gt;</pre></b>",
        "<p><em>前<pre>&lt;script&gt;</pre>后</em></p>",
    ):
        tree = rendered(make_article(body))
        assert next(tree.iter("script"), None) is None
        assert "<script>" in tree.text_content()


class _Reference(ArticleMarkdownConverter):
    """Our converter without its fast paths: markdownify's own parsing (bs4 on lxml) and
    text handling throughout."""

    escape = MarkdownConverter.escape

    def process_text(self, el: NavigableString, parent_tags: set[str] | None = None) -> str:
        return no_picture_mark(str(MarkdownConverter.process_text(self, el, parent_tags)), el)

    def convert(self, html: str) -> str:
        return str(self.convert_soup(BeautifulSoup(html, "lxml")))


# Text that takes the fast paths (CJK prose alone) and text that must not: every kind
# of whitespace markdownify collapses or strips, and every character it escapes.
_TEXT_PIECES = [*"中文，。“”《》abc", " ", "\n", "\t", "\r", "\u3000", "\xa0", "\u2003"]
_TEXT_PIECES += [*"*_[]()#>!`~|\\<&=+-.", "1.", "- ", "# ", "&lt;b&gt;", "&amp;"]
_SNIPPET = st.lists(st.sampled_from(_TEXT_PIECES), max_size=8).map("".join)
_WRAPPERS = ["p", "li", "td", "h2", "pre", "code", "b", "em", "a href='https://a.org'", "div"]


@st.composite
def _body(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        tag = draw(st.sampled_from(_WRAPPERS))
        name = tag.split()[0]
        inner = draw(_SNIPPET) + draw(st.sampled_from(["", "<br>", "<b>粗</b>", "<p>段</p>"]))
        parts.append(draw(_SNIPPET) + f"<{tag}>{inner}{draw(_SNIPPET)}</{name}>")
    caption = draw(_SNIPPET)
    parts.append(f'<figure><img src="https://a.org/p.jpg"><figcaption>{caption}</figcaption>')
    return "<section>" + "".join(parts) + "</figure></section>"


@settings(max_examples=300, deadline=None)
@given(body=_body(), title=_SNIPPET)
def test_our_tree_and_fast_paths_give_what_markdownify_gives(body: str, title: str) -> None:
    # The tree built from our lxml parse, and the text fast paths, change nothing.
    # `<!` opens a comment, which our parser drops and bs4 keeps as a node beside the
    # text; cleaned bodies hold none (the sanitizer removes them).
    assume("<!" not in body)
    ours, reference = ArticleMarkdownConverter(), _Reference()
    assert ours.convert(body) == reference.convert(body)
    assert ours.escape_text(title) == reference.escape_text(title)


def test_front_matter_values_stay_quoted_when_seen_again() -> None:
    # YAML values are cached: the second article gets what the first got.
    for title in ("yes", "2024-05-20", "- 列表", "null", "a: b", "中文"):
        first = render_markdown(make_article("<p>x</p>", title=title))
        second = render_markdown(make_article("<p>y</p>", title=title))
        assert first.split("---\n")[1] == second.split("---\n")[1]
        assert yaml.safe_load(first.split("---\n")[1])["title"] == title


_FIXTURES = sorted((ROOT / "examples").glob("*")) + sorted((ROOT / "tests" / "hostile").glob("*"))


def test_our_tree_gives_what_markdownify_gives_on_every_fixture() -> None:
    # Real bodies after cleaning: tables, lists, figures, hostile markup. (Inputs the
    # readers refuse have no body to compare.)
    ours, reference = ArticleMarkdownConverter(), _Reference()
    compared = 0
    for path in _FIXTURES:
        with contextlib.suppress(ConvertError):
            for article in read_source(str(path), load_config()).articles:
                assert ours.convert(article.body) == reference.convert(article.body), path.name
                compared += 1
    assert compared >= 100  # the examples alone have more than that


def test_soupsieve_runs_only_when_a_css_selector_is_used() -> None:
    """Its grammar (60 ms to compile) is not loaded with the Markdown writer, yet bs4's
    selectors still work: the module is loaded when first used, and once."""
    probe = """
import sys
import convert.writers.markdown
print("soupsieve.css_parser" in sys.modules)
from bs4 import BeautifulSoup
print(BeautifulSoup('<p class="a">x</p><p>y</p>', "html.parser").select("p.a"))
print("soupsieve.css_parser" in sys.modules)
import bs4.css
loaded = sys.modules["soupsieve"]
print(hasattr(bs4.css.soupsieve, "no_such_name"), sys.modules["soupsieve"] is loaded)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    # Loaded once: a name it lacks, looked up later, does not load it again.
    assert done.stdout.splitlines() == ["False", '[<p class="a">x</p>]', "True", "False True"]
    assert done.stderr == ""
