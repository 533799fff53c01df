"""Markdown: YAML front matter from a template, then the article through markdownify.

The converter is a markdownify subclass that keeps the output inert (escaped text,
web-only targets), keeps every caption and credit, and writes Chinese without the
spaces and broken emphasis that a Western-minded converter leaves.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import yaml
from bs4 import Tag
from bs4.element import NavigableString
from lxml.html import HtmlElement
from markdownify import ATX, BACKSLASH, MarkdownConverter

from convert.fragments import VOID_ELEMENTS, parse_fragment
from convert.model import Article, Image
from convert.resources import resource_path
from convert.text import CJK, ascii_slug

# markdownify's own type hints omit most converter methods; reach them untyped.
_Base: Any = MarkdownConverter
_ConvertFn = Callable[[Any, Tag, str, set[str]], str]
_HAS_CJK = re.compile(f"[{CJK}]")
_FENCE_LINE = re.compile(r"(?:^|\n)[ \t]*(?:`{3,}|~{3,})")
# Every character that markdownify's escape() (escape_misc, asterisks, underscores)
# may put a backslash before, or that starts a sequence it escapes (`-`, `#`, `1.`).
_ESCAPABLE_CHARS = r"]\\&<`[>~=+|\-#.)*_"
_ESCAPABLE = re.compile(f"[{_ESCAPABLE_CHARS}]")
# Text that markdownify's process_text would return as is holds none of these: nothing
# to escape, no whitespace to collapse or strip (`\s` is str.isspace(), what strip() takes).
_TEXT_TO_PROCESS = re.compile(rf"[{_ESCAPABLE_CHARS}\s]")
# Characters that end a Markdown link destination or title, or confuse autolinks.
_URL_SAFE = "".join(sorted(set("!#$%&'*+,-./:;=?@[]_~") - set("()<> ")))


def markdown_url(url: str) -> str:
    """`url` made safe as a Markdown destination: parentheses, spaces, `<>` escaped."""
    return quote(url, safe=_URL_SAFE + "%")


def _is_safe_target(url: str, *, link: bool) -> bool:
    """Only web addresses (and mailto: for links) may become targets."""
    if not url.strip():
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(parts.netloc)
    if link and scheme == "mailto":
        return True
    # A relative address: a page's own, kept as written when there was nothing to resolve
    # it against, or ours (downloaded pictures in assets/). Never with a backslash.
    return not scheme and not parts.netloc and "\\" not in url


def _escape_label(text: str) -> str:
    """Text inside `[...]` or `![...]`: brackets, backslashes and `<>` escaped, one line.

    `<` is escaped so that no renderer can take `<script>` in an alt text for HTML.
    """
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"([\\\[\]<>])", r"\\\1", text)


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _keeping_space(convert: _ConvertFn) -> _ConvertFn:
    """markdownify drops whitespace-only inline tags, gluing the words around them."""

    def implementation(self: Any, el: Tag, text: str, parent_tags: set[str]) -> str:
        if text and not text.strip():
            return " "
        return convert(self, el, text, parent_tags)

    return implementation


def _flanking_safe(convert: _ConvertFn) -> _ConvertFn:
    """Keep emphasis markers off punctuation so that `**“新三样”**等` stays bold.

    CommonMark does not close `**` that follows punctuation when a letter comes
    next, which is the normal case in Chinese; moving the quotes outside the
    markers keeps the emphasis.
    """

    def implementation(self: Any, el: Tag, text: str, parent_tags: set[str]) -> str:
        stripped = text.strip()
        if "\n\n" in stripped or _FENCE_LINE.search(stripped):
            # A block inside (`<b><pre>`): markers around it would not make emphasis,
            # and `**```` is no fence, so the code would come out as raw HTML.
            return text
        # Only the element's own punctuation moves, never Markdown its children made
        # (the `[` and `)` of a link): compare with the words as they read.
        words = el.get_text().strip()
        head = ""
        while (
            stripped
            and _is_punctuation(stripped[0])
            and stripped[0] != "\\"
            and words[len(head) : len(head) + 1] == stripped[0]
        ):
            head, stripped = head + stripped[0], stripped[1:]
        tail = ""
        while (
            stripped
            and _is_punctuation(stripped[-1])
            and not stripped.endswith("\\")
            and len(tail) < len(words)
            and words[-1 - len(tail)] == stripped[-1]
        ):
            if len(stripped) > 1 and stripped[-2] == "\\":
                break  # an escaped character stays with its backslash
            tail, stripped = stripped[-1] + tail, stripped[:-1]
        if not stripped:
            return text
        inner = convert(self, el, stripped, parent_tags)
        before = " " if text[:1].isspace() else ""
        after = " " if text[-1:].isspace() else ""
        return before + head + inner + tail + after

    return implementation


def _starts_link(node: Any) -> bool:
    """True when `node` is a link whose Markdown begins with `[` (an empty one is none)."""
    return (
        isinstance(node, Tag)
        and node.name == "a"
        and bool(node.get("href"))
        and (bool(node.get_text().strip()) or node.find("img") is not None)
    )


def no_picture_mark(processed: str, el: NavigableString) -> str:
    """Text before a link, with a last `!` escaped: `!` then the link's `[` would make
    the link a picture."""
    if processed.endswith("!") and _starts_link(el.next_sibling):
        return processed[:-1] + "\\!"
    return processed


class _Tag(Tag):
    """bs4's Tag, with a quick `find_parent(name)`.

    markdownify asks every tag for `find_parent("pre")`; bs4 answers through its
    general matcher machinery, which took a fifth of the conversion time.
    """

    def find_parent(self, name: Any = None, attrs: Any = None, **kwargs: Any) -> Any:
        if not isinstance(name, str) or attrs or kwargs:
            return super().find_parent(name, attrs, **kwargs)
        parent = self.parent
        while parent is not None and parent.name != name:
            parent = parent.parent
        return parent


def soup_from_tree(root: HtmlElement) -> Tag:
    """The bs4 tree markdownify walks, made from the lxml tree of a cleaned body.

    The body was parsed once already, by cleaning: bs4 parsing its text again
    (lxml's events fed through bs4's builder) took two thirds of the Markdown time,
    four times what linking the same nodes here takes. The links are the ones bs4's
    builder sets, in document order: parent and contents, siblings, next/previous
    element (find_all and get_text walk those). test_markdown_writer checks that
    markdownify gives the same Markdown from this tree as from its own parse.
    """
    document = _Tag(name="[document]")
    last: Any = document  # the node made last, in document order

    def add_text(text: str, parent: Tag) -> None:
        nonlocal last
        node = NavigableString(text)
        node.parent, node.previous_element, last.next_element = parent, last, node
        siblings = parent.contents
        if siblings:
            siblings[-1].next_sibling, node.previous_sibling = node, siblings[-1]
        siblings.append(node)
        last = node

    def add_children(element: HtmlElement, parent: Tag) -> None:
        nonlocal last
        if element.text:
            add_text(element.text, parent)
        for child in element:
            name = child.tag
            if isinstance(name, str):  # not a comment or processing instruction
                # Tag() links parent, previous element and previous sibling itself.
                tag = _Tag(
                    name=name,
                    attrs=dict(child.attrib),
                    parent=parent,
                    previous=last,
                    can_be_empty_element=name in VOID_ELEMENTS,  # printed `<br/>`
                )
                parent.contents.append(tag)
                last = tag
                add_children(child, tag)
            if child.tail:
                add_text(child.tail, parent)

    add_children(root, document)
    return document


class ArticleMarkdownConverter(MarkdownConverter):
    """markdownify, made inert and CJK-aware; `local_images` maps URLs to local files."""

    def __init__(self, local_images: Mapping[str, str] | None = None) -> None:
        super().__init__(
            heading_style=ATX,
            bullets="-",
            newline_style=BACKSLASH,
            escape_misc=True,
            escape_asterisks=True,
            escape_underscores=True,
            autolinks=False,
            table_infer_header=True,
        )
        self.local_images = dict(local_images or {})

    def convert(self, html: str) -> str:
        """The Markdown of an HTML body (parsed by lxml, as cleaning parses it)."""
        return self.convert_tree(parse_fragment(html))

    def convert_tree(self, root: HtmlElement) -> str:
        """The Markdown of a body already parsed (the tree cleaning left; not changed)."""
        return str(self.convert_soup(soup_from_tree(root)))

    # Inline emphasis: keep spaces of whitespace-only tags, keep markers off punctuation.
    convert_b = _keeping_space(_flanking_safe(_Base.convert_b))
    convert_strong = convert_b
    convert_em = _keeping_space(_flanking_safe(_Base.convert_em))
    convert_i = convert_em
    convert_del = _keeping_space(_flanking_safe(_Base.convert_del))
    convert_s = convert_del

    @_keeping_space
    def convert_code(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # An inline code span cannot cross a line or paragraph break: one that did
        # would leave its `<...>` text outside the span, as raw HTML.
        return str(_Base.convert_code(self, el, re.sub(r"\s+", " ", text), parent_tags))

    def convert_pre(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # A fence longer than any backtick run inside, so the content cannot close it.
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
        body = str(_Base.convert_pre(self, el, text, parent_tags))
        head, _, rest = body.partition("```")  # markdownify fences with three backticks
        inner, _, tail = rest.rpartition("```")
        return f"{head}{fence}{inner}{fence}{tail}" if inner else body

    def image_target(self, url: str) -> str | None:
        """Where a picture is, for Markdown: a downloaded copy, or its web address."""
        if url in self.local_images:
            return self.local_images[url]
        return markdown_url(url) if _is_safe_target(url, link=False) else None

    @_keeping_space
    def convert_a(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        href = str(el.get("href") or "").strip()
        if "_noformat" in parent_tags or not text.strip():
            return text
        if not href or not _is_safe_target(href, link=True):
            return text
        prefix = " " if text.startswith(" ") else ""
        suffix = " " if text.endswith(" ") else ""
        title = str(el.get("title") or "")
        title_part = f' "{_escape_title(title)}"' if title else ""
        return f"{prefix}[{text.strip()}]({markdown_url(href)}{title_part}){suffix}"

    def convert_img(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        if "figure" in parent_tags:
            return ""  # convert_figure writes the picture with its caption itself
        return self.picture(el)

    def picture(self, el: Tag) -> str:
        """`![alt](target)`, or the alt text alone when the picture has no safe target."""
        target = self.image_target(str(el.get("src") or ""))
        alt = _escape_label(str(el.get("alt") or ""))
        if target is None:
            return alt
        return f"![{alt}]({target})"

    def convert_figure(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # bs4's find() builds a matcher per call: too slow for 10,000 figures.
        img = _first_tag(el, "img")
        figcaption = _first_tag(el, "figcaption")
        credit = ""
        caption = ""
        if isinstance(figcaption, Tag):
            cites = [c for c in figcaption.descendants if isinstance(c, Tag) and c.name == "cite"]
            credit = " ".join(c.get_text(" ", strip=True) for c in cites)
            caption = "".join(
                c.get_text() if isinstance(c, Tag) else str(c)
                for c in figcaption.children
                if not (isinstance(c, Tag) and c.name == "cite")
            )
        picture = self.picture(img) if isinstance(img, Tag) else ""
        return "\n\n" + figure_markdown(picture, caption, credit, self) + "\n\n"

    def process_text(self, el: NavigableString, parent_tags: set[str] | None = None) -> str:
        # Most text nodes are a run of Chinese prose without spaces or Markdown syntax,
        # which markdownify's substitutions, escape and strips would leave as it is: one
        # search saves them (a tenth of the render). test_markdown_writer checks that
        # this gives what markdownify gives, should a new markdownify do more.
        text = str(el)
        if _TEXT_TO_PROCESS.search(text) is None:
            processed = text
        else:
            processed = str(_Base.process_text(self, el, parent_tags))
        return no_picture_mark(processed, el)

    def escape(self, text: str, parent_tags: set[str]) -> str:
        # Most runs of Chinese text hold none of the characters markdownify escapes:
        # one search then saves its four substitutions.
        if not text or _ESCAPABLE.search(text) is None:
            return text
        return str(_Base.escape(self, text, parent_tags))

    def escape_text(self, text: str) -> str:
        """Escape plain text the way body text is escaped."""
        # Through self.escape, so that titles and captions take its fast path too.
        return self.escape(re.sub(r"\s+", " ", text).strip(), set())


def _first_tag(el: Tag, name: str) -> Tag | None:
    return next((c for c in el.descendants if isinstance(c, Tag) and c.name == name), None)


def _escape_title(title: str) -> str:
    return re.sub(r'(["\\])', r"\\\1", re.sub(r"\s+", " ", title))


def figure_markdown(picture: str, caption: str, credit: str, conv: ArticleMarkdownConverter) -> str:
    """A picture line, then its caption and credit as one italic line."""
    caption = re.sub(r"\s+", " ", caption).strip()
    credit = re.sub(r"\s+", " ", credit).strip()
    if credit:
        wide = _HAS_CJK.search(caption + credit)
        caption = f"{caption}（{credit}）" if wide else f"{caption} ({credit})".strip()
    if not caption:
        return picture
    line = f"*{conv.escape_text(caption)}*"
    return f"{picture}\n\n{line}" if picture else line


# --- the whole document ---------------------------------------------------------------


# libyaml's emitter when PyYAML has it (ten times faster), else the pure-Python one.
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml_value(value: Any) -> str:
    """One YAML value on one line: quoted where YAML would misread it."""
    if type(value) is str:
        return _yaml_string(value)
    return _yaml_dump(value)


# A third of the values (source, language, translator) repeat from article to article,
# and each dump, even through libyaml, costs a new emitter and representer.
@functools.lru_cache(maxsize=1024)
def _yaml_string(value: str) -> str:
    return _yaml_dump(value)


def _yaml_dump(value: Any) -> str:
    dumped = yaml.dump(
        value, Dumper=_YAML_DUMPER, allow_unicode=True, default_flow_style=True, width=2**31 - 1
    )
    return str(dumped).removesuffix("\n...\n").strip()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_path("templates")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Markdown, not HTML: values go through the yaml filter
    )
    env.filters["yaml"] = _yaml_value
    return env


@functools.cache
def _templates() -> jinja2.Environment:
    return _environment()


def front_matter(article: Article, local_images: Mapping[str, str] | None = None) -> str:
    """The YAML front matter block, from `templates/markdown/front-matter.yaml.j2`."""
    english = next(
        (k.url for k in article.links if k.rel == "alternate" and k.language == "en"), ""
    )
    lead = article.lead_image
    lead_url = ""
    if lead is not None:
        lead_url = (local_images or {}).get(lead.url, lead.url)
    published: datetime | None = article.published
    return (
        _templates()
        .get_template("markdown/front-matter.yaml.j2")
        .render(
            article=article,
            published=published.isoformat() if published else "",
            english_url=english,
            lead_image=lead_url,
        )
    )


def render_markdown(
    article: Article,
    local_images: Mapping[str, str] | None = None,
    body: HtmlElement | None = None,
) -> str:
    """The whole Markdown file for one article.

    `local_images` maps picture URLs to the files saved beside it; `body` is the
    article's body as a tree when the caller has it (cleaning's), so that it is not
    parsed again.
    """
    conv = ArticleMarkdownConverter(local_images) if local_images else _plain_converter()
    parts = [front_matter(article, local_images).rstrip("\n")]
    parts.append(f"# {conv.escape_text(article.title)}")
    if article.lead_image is not None:
        parts.append(_image_markdown(article.lead_image, conv))
    root = body if body is not None else parse_fragment(article.body)
    text = conv.convert_tree(root).strip()
    if text:
        parts.append(text)
    footer = [conv.escape_text(line) for line in article.credits]
    footer += [
        f"[{_escape_label(link.title or link.url)}]({markdown_url(link.url)})"
        for link in article.links
        if _is_safe_target(link.url, link=True)
    ]
    if footer:
        parts.append("---")
        parts.extend(footer)
    return "\n\n".join(parts) + "\n"


@functools.cache
def _plain_converter() -> ArticleMarkdownConverter:
    """One converter for all articles without local pictures (it keeps no state)."""
    return ArticleMarkdownConverter()


def _image_markdown(image: Image, conv: ArticleMarkdownConverter) -> str:
    target = conv.image_target(image.url)
    alt = image.alt or image.caption
    picture = f"![{_escape_label(alt)}]({target})" if target else ""
    return figure_markdown(picture, image.caption, image.credit, conv)


def markdown_file_name(article: Article, taken: set[str]) -> str:
    """`YYYY-MM-DD-<slug of the URL path>.md`: ASCII, at most 100 characters, unique."""
    return unique_file_name(markdown_file_stem(article), taken)


def markdown_file_stem(article: Article) -> str:
    """`YYYY-MM-DD-<slug of the URL path>`, at most 96 characters (not yet unique)."""
    when = article.published or article.captured
    date = when.strftime("%Y-%m-%d") if when else "undated"
    try:
        path = urlsplit(article.url).path
    except ValueError:
        path = ""
    path = re.sub(r"/(index)?\.[a-z]{2,5}$|\.s?html?$", "", path)
    slug = ascii_slug(path, max_length=80) or article.id
    return f"{date}-{slug}"[:96].rstrip("-")


def unique_file_name(stem: str, taken: set[str]) -> str:
    """`stem.md`, or `stem-2.md`, `stem-3.md`… when taken; the name is added to `taken`."""
    name, counter = f"{stem}.md", 2
    while name in taken:
        suffix = f"-{counter}"
        name = f"{stem[: 96 - len(suffix)].rstrip('-')}{suffix}.md"
        counter += 1
    taken.add(name)
    return name
