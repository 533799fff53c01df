"""What survives HTML → Markdown: text, links and pictures, ours beside markdownify and html2text.

Not a test: run by hand (`python bench/html_survival.py`); it downloads source
distributions from the package registry (pip download, into a cache folder) and takes
HTML written by others out of them. Two groups, measured differently:

- fragments, where everything is content: the CommonMark spec's examples (markdown-it-py's
  copy) that hold a link, a picture, a list, a table, code, emphasis or a heading, and
  every HTML string markdownify's own tests (its last sdist that ships them, 0.12.1)
  hand to `md(...)`, and the HTML documents Python-Markdown's legacy suite expects (its
  own, PHP Markdown's and John Gruber's tests). Measured on all of the input:
  - text: the input's words (CJK: each character) found in the output, counted;
  - links: the input's `<a href>` targets found among the output's (percent-decoding
    aside), javascript: and empty ones left out;
  - pictures: the input's `<img src>` found among the output's.
- pages, where most of the page is not the article: the saved news pages of newspaper4k's
  suite that come with the article text it expects. Ours finds the article (trafilatura);
  markdownify and html2text convert the whole page, menus and all. Measured against the
  expected text:
  - article text: its words found in the output (recall);
  - furniture: the output's words that are not in it, as a share of the output;
  - lead picture: the pages whose `top_image` (newspaper4k's metadata) is among the
    output's pictures.

html2text's and turndown's suites are left out on purpose (kept for a separate check).
Each case goes through our command's reading, cleaning and Markdown writer (in this
process), through markdownify alone and html2text alone (their defaults, html2text
with body_width=0); each Markdown is rendered back with markdown-it-py (CommonMark +
tables) before it is measured. Totals over all cases of a group (micro-averaged) are
printed and written to bench/results-html-survival.json.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import lxml.html
import markdownify
from markdown_it import MarkdownIt
from run import ensure_html2text

from convert.config import load_config
from convert.errors import ConvertError
from convert.plan import settings_of
from convert.run import read_articles
from convert.writers.markdown import render_markdown

BENCH = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "feedx-convert-bench" / "sdists"
SDISTS = {
    "markdown-it-py": "markdown-it-py==4.3.0",
    "markdownify": "markdownify==0.12.1",
    "markdown": "Markdown==3.7",
    "newspaper4k": "newspaper4k==0.9.6",
}
PIP_DOWNLOAD = (
    sys.executable,
    "-m",
    "pip",
    "download",
    "--quiet",
    "--no-deps",
    "--no-binary",
    ":all:",
)
_WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\d_]+|\d+", re.U)


# --- the cases ------------------------------------------------------------------------------


def sdist(name: str) -> tarfile.TarFile:
    """The source distribution of `name` (downloaded once into CACHE)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"{name.replace('-', '_')}-*.tar.gz")) + sorted(
        CACHE.glob(f"{name}-*.tar.gz")
    )
    if not found:
        subprocess.run(
            [*PIP_DOWNLOAD, "-d", str(CACHE), SDISTS[name]],
            check=True,
        )
        return sdist(name)
    return tarfile.open(found[-1])


def commonmark_cases() -> Iterator[tuple[str, str]]:
    """The spec examples' HTML that holds more than a paragraph of text."""
    with sdist("markdown-it-py") as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("commonmark.json"))
        examples = json.load(archive.extractfile(member))  # type: ignore[arg-type]
    shapes = re.compile(r"<(a |img |ul|ol|table|pre|code|h[1-6]|blockquote|em|strong)")
    for example in examples:
        html = example["html"]
        if shapes.search(html):
            yield f"commonmark-{example['example']}", html


def markdownify_cases() -> Iterator[tuple[str, str]]:
    """Every string literal markdownify's tests give `md(...)` first."""
    seen: set[str] = set()
    with sdist("markdownify") as archive:
        for member in archive.getmembers():
            if not re.search(r"/tests/test_\w+\.py$", member.name):
                continue
            tree = ast.parse(archive.extractfile(member).read())  # type: ignore[union-attr]
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") in ("md", "markdownify")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    html = node.args[0].value
                    if html not in seen and "<" in html:
                        seen.add(html)
                        yield f"markdownify-{len(seen):03d}", html


def python_markdown_cases() -> Iterator[tuple[str, str]]:
    """The HTML that Python-Markdown's legacy suite expects (its own, PHP Markdown's and
    John Gruber's test documents)."""
    with sdist("markdown") as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            if "/tests/" not in member.name or not member.name.endswith(".html"):
                continue
            if member.name.endswith("footnote_many_footnotes.html"):
                continue  # 2,400 links to its own footnotes would outweigh every other case
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            stem = Path(member.name).stem.replace(" ", "_")
            yield f"python_markdown-{stem}", data.decode("utf-8", "replace")


def page_cases() -> Iterator[tuple[str, str, str, str]]:
    """newspaper4k's saved news pages, each with the article text its suite expects and
    the lead picture (`top_image`) where its metadata names one."""
    with sdist("newspaper4k") as archive:
        members = {m.name: m for m in archive.getmembers()}

        def read(name: str) -> str:
            return archive.extractfile(members[name]).read().decode("utf-8", "replace")  # type: ignore[union-attr]

        for name in sorted(members):
            match = re.search(r"^(.*/tests/data)/html/([^/]+)\.html?$", name)
            if not match or f"{match[1]}/txt/{match[2]}.txt" not in members:
                continue
            metadata = f"{match[1]}/metadata/{match[2]}.json"
            lead = json.loads(read(metadata)).get("top_image", "") if metadata in members else ""
            text = read(f"{match[1]}/txt/{match[2]}.txt")
            yield f"newspaper4k-{match[2]}", read(name), text, unquote(lead)


# --- the converters -----------------------------------------------------------------------


def ours() -> Callable[[str, Path], str]:
    """Our reading, cleaning and Markdown writer, as `feedx-convert markdown` runs them."""
    settings = settings_of(load_config())
    logging.getLogger("convert").setLevel(logging.CRITICAL)

    def convert(html: str, work: Path) -> str:
        path = work / "case.html"
        path.write_text(html, "utf-8")
        try:
            read = read_articles(str(path), settings)
        except ConvertError:
            return ""
        return "\n\n".join(render_markdown(a).split("---\n", 2)[-1] for a in read.articles)

    return convert


def markdownify_alone() -> Callable[[str, Path], str]:
    return lambda html, _work: str(markdownify.markdownify(html))


def html2text_alone() -> Callable[[str, Path], str]:
    import html2text  # noqa: PLC0415 - installed by main() when missing

    def convert(html: str, _work: Path) -> str:
        handler = html2text.HTML2Text()
        handler.body_width = 0
        return str(handler.handle(html))

    return convert


# --- the measures -------------------------------------------------------------------------


def _tree(html: str) -> Any:
    try:
        return lxml.html.document_fromstring(html or "<p></p>")
    except (lxml.etree.ParserError, ValueError):
        return lxml.html.document_fromstring("<p></p>")


def _links(tree: Any, attribute: str, tag: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for element in tree.iter(tag):
        value = unquote((element.get(attribute) or "").strip())
        if value and not value.lower().startswith(("javascript:", "data:")):
            found[value] += 1
    return found


# Elements that end a word: `<p>a</p><p>b</p>` reads "a b", not "ab".
_BREAKS = (
    *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
    *("figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header"),
    *("hr", "img", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td"),
    *("th", "tr", "ul", "title"),
)


def measures(html: str) -> dict[str, Counter[str]]:
    """The words, link targets and picture addresses of a piece of HTML."""
    tree = _tree(html)
    for element in list(tree.iter("script", "style", "noscript", "template")):
        element.drop_tree()
    for element in tree.iter(_BREAKS):
        element.text = " " + (element.text or "")
        element.tail = " " + (element.tail or "")
    return {
        "text": Counter(_WORD.findall(tree.text_content())),
        "links": _links(tree, "href", "a"),
        "images": _links(tree, "src", "img"),
    }


def survived(before: Counter[str], after: Counter[str]) -> tuple[int, int]:
    """How many of `before` are in `after` (each as often as it was), and of how many."""
    return sum(min(n, after[key]) for key, n in before.items()), sum(before.values())


# --- the run ------------------------------------------------------------------------------


def _share(kept: int, of: int) -> float:
    return round(100 * kept / of, 1) if of else 100.0


Totals = dict[str, dict[str, list[int]]]
"""Per converter, per measure: [kept, of]."""


def measure_all(
    fragments: list[tuple[str, str]],
    pages: list[tuple[str, str, str, str]],
    converters: dict[str, Callable[[str, Path], str]],
) -> tuple[Totals, Totals, list[tuple[float, str]]]:
    """Every case through every converter: the fragments' and the pages' totals, and
    the cases where ours lost something (share kept, what)."""
    render = MarkdownIt("commonmark").enable("table")
    fragment_totals = {
        name: {m: [0, 0] for m in ("text", "links", "images")} for name in converters
    }
    page_totals = {
        name: {m: [0, 0] for m in ("article text", "furniture", "lead picture")}
        for name in converters
    }
    worst: list[tuple[float, str]] = []

    def add(totals: Totals, name: str, measure: str, kept: int, of: int) -> None:
        totals[name][measure][0] += kept
        totals[name][measure][1] += of

    with tempfile.TemporaryDirectory() as folder, open(os.devnull, "w") as quiet:
        work = Path(folder)

        def markdown_of(convert: Callable[[str, Path], str], html: str) -> dict[str, Counter[str]]:
            with contextlib.redirect_stderr(quiet):  # html2text's and markdownify's notes
                return measures(render.render(convert(html, work)))

        for key, html in fragments:
            before = measures(html)
            for name, convert in converters.items():
                after = markdown_of(convert, html)
                for measure in ("text", "links", "images"):
                    kept, of = survived(before[measure], after[measure])
                    add(fragment_totals, name, measure, kept, of)
                    if name == "ours" and of and kept < of:
                        worst.append((kept / of, f"{key} {measure} {kept}/{of}"))
        for key, html, expected, lead in pages:
            article = Counter(_WORD.findall(expected))
            for name, convert in converters.items():
                found = markdown_of(convert, html)
                words = found["text"]
                if lead:
                    add(page_totals, name, "lead picture", int(lead in found["images"]), 1)
                kept, of = survived(article, words)
                add(page_totals, name, "article text", kept, of)
                add(page_totals, name, "furniture", sum((words - article).values()), words.total())
                if name == "ours" and kept < of:
                    worst.append((kept / of, f"{key} article text {kept}/{of}"))
    return fragment_totals, page_totals, worst


def print_tables(fragment_totals: Totals, page_totals: Totals) -> None:
    """The shares, one row per converter."""
    print(f"fragments     {'text':>10s}{'links':>10s}{'pictures':>10s}")
    for name, counts in fragment_totals.items():
        row = "".join(f"{_share(*counts[m]):9.1f}%" for m in ("text", "links", "images"))
        print(f"{name:14s}{row}")
    print(f"pages         {'article':>10s}{'furniture':>11s}{'lead pic.':>11s}")
    for name, counts in page_totals.items():
        row = "".join(
            f"{_share(*counts[m]):{w}.1f}%"
            for m, w in (("article text", 9), ("furniture", 10), ("lead picture", 10))
        )
        print(f"{name:14s}{row}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=BENCH / "results-html-survival.json")
    parser.add_argument("--show", type=int, default=0, help="print the N worst cases of ours")
    args = parser.parse_args(argv)
    installed, reason = ensure_html2text(install=True)
    if not installed:
        print(reason, file=sys.stderr)
        return 1
    fragments = [*commonmark_cases(), *markdownify_cases(), *python_markdown_cases()]
    pages = list(page_cases())
    converters = {
        "ours": ours(),
        "markdownify": markdownify_alone(),
        "html2text": html2text_alone(),
    }
    started = time.perf_counter()
    fragment_totals, page_totals, worst = measure_all(fragments, pages, converters)
    seconds = time.perf_counter() - started
    groups = Counter(key.split("-")[0] for key, _html in fragments)
    print(f"{len(fragments)} fragments ({dict(groups)}), {len(pages)} pages, {seconds:.1f} s")
    print_tables(fragment_totals, page_totals)
    for share, what in sorted(worst)[: args.show]:
        print(f"  {share:5.0%} {what}")
    result = {
        "benchmark": "html_survival",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "fragments": {"cases": len(fragments), "groups": dict(groups)},
        "pages": {"cases": len(pages)},
        "sdists": SDISTS,
        "percent": {
            group: {
                name: {m: _share(*c) for m, c in counts.items()} for name, counts in totals.items()
            }
            for group, totals in (("fragments", fragment_totals), ("pages", page_totals))
        },
        "counts": {"fragments": fragment_totals, "pages": page_totals},
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
