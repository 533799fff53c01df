"""The preflight of a book before it is mailed: what Send to Kindle and common readers reject.

Amazon's converter answers a book it cannot take with a mail saying only "E999"; the
reasons are known (kindle-epub-fix and calibre's users found them): an XHTML file
without an XML declaration naming its encoding, a link to an id that is not there, an
`<img>` without `src` or with a remote one, a `dc:language` outside Kindle's list, no
cover, a book over the mail limit. `preflight` finds each, one line per problem.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lxml import etree

# Never entities, never a fetch: a book is someone else's file.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_XML_DECLARATION = re.compile(
    rb"\A(\xef\xbb\xbf)?<\?xml\s[^>]*\bencoding\s*=\s*[\"'][A-Za-z0-9._-]+[\"']"
)
_CONTAINER = "META-INF/container.xml"
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_XHTML_TYPES = ("application/xhtml+xml", "text/html")
_MB = 1_000_000


@dataclass(frozen=True, slots=True)
class KindleRules:
    """What the preflight holds a book to."""

    languages: frozenset[str]
    """Primary language subtags Kindle converts (`zh`, `en`, `ja`)."""

    max_bytes: int
    """Largest book mailed (Send to Kindle by mail: 50 MB)."""


class BookUnreadable(Exception):
    """Not an EPUB this preflight can read (not a zip, no package document)."""


def preflight(book: Path, rules: KindleRules) -> list[str]:
    """The problems Send to Kindle would reject `book` for, one sentence each; [] when clean."""
    problems: list[str] = []
    size = book.stat().st_size
    if size > rules.max_bytes:
        problems.append(
            f"{size / _MB:.1f} MB, over the {rules.max_bytes / _MB:g} MB a mailed book may"
            " weigh (lower epub.budget_mb)"
        )
    try:
        with zipfile.ZipFile(book) as archive:
            problems += _problems_inside(archive, rules)
    except (zipfile.BadZipFile, OSError) as error:
        raise BookUnreadable(f"not an EPUB: {error}") from None
    return problems


def _problems_inside(archive: zipfile.ZipFile, rules: KindleRules) -> list[str]:
    names = set(archive.namelist())
    opf_name = _package_name(archive, names)
    opf = _xml(archive, opf_name)
    if opf is None:
        raise BookUnreadable(f"{opf_name}: not well-formed XML")
    base = posixpath.dirname(opf_name)
    problems = _language_problems(opf, rules)
    manifest = {item.get("id", ""): item for item in opf.iter(f"{_OPF}item")}
    if not _has_cover(opf, manifest):
        problems.append('no cover (no manifest item marked cover-image, no <meta name="cover">)')
    pages = {
        posixpath.normpath(posixpath.join(base, unquote(item.get("href", "")))): item
        for item in manifest.values()
        if item.get("media-type") in _XHTML_TYPES
    }
    ids: dict[str, set[str]] = {}
    trees: dict[str, etree._Element] = {}
    for page in sorted(pages):
        if page not in names:
            problems.append(f"{page}: in the manifest but not in the book")
            continue
        data = archive.read(page)
        if not _XML_DECLARATION.match(data):
            problems.append(f"{page}: no XML declaration naming its encoding")
        tree = _xml_bytes(data)
        if tree is None:
            problems.append(f"{page}: not well-formed XHTML")
            continue
        trees[page] = tree
        ids[page] = {value for element in tree.iter() if (value := element.get("id"))}
    for page, tree in trees.items():
        problems += _page_problems(page, tree, ids, names)
    return problems


def _package_name(archive: zipfile.ZipFile, names: set[str]) -> str:
    if _CONTAINER not in names:
        raise BookUnreadable(f"no {_CONTAINER}")
    container = _xml(archive, _CONTAINER)
    rootfile = (
        None
        if container is None
        else next((e for e in container.iter() if etree.QName(e).localname == "rootfile"), None)
    )
    path = rootfile.get("full-path", "") if rootfile is not None else ""
    if not path or path not in names:
        raise BookUnreadable(f"{_CONTAINER} names no package document in the book")
    return path


def _language_problems(opf: etree._Element, rules: KindleRules) -> list[str]:
    languages = [(e.text or "").strip() for e in opf.iter(f"{_DC}language")]
    if not languages or not languages[0]:
        return ["no dc:language (Kindle needs one, such as zh or en)"]
    primary = languages[0].split("-")[0].lower()
    if primary not in rules.languages:
        return [f"dc:language {languages[0]!r} is not a language Kindle converts"]
    return []


def _has_cover(opf: etree._Element, manifest: dict[str, etree._Element]) -> bool:
    if any("cover-image" in (i.get("properties") or "").split() for i in manifest.values()):
        return True
    named = [m.get("content", "") for m in opf.iter(f"{_OPF}meta") if m.get("name") == "cover"]
    return any(name in manifest for name in named)


def _page_problems(
    page: str, tree: etree._Element, ids: dict[str, set[str]], names: set[str]
) -> list[str]:
    problems: list[str] = []
    folder = posixpath.dirname(page)
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        if name == "img":
            src = (element.get("src") or "").strip()
            if not src:
                problems.append(f"{page}: an <img> without src")
            elif urlsplit(src).scheme:
                problems.append(f"{page}: an <img> from the web ({src[:80]})")
            elif posixpath.normpath(posixpath.join(folder, unquote(src))) not in names:
                problems.append(f"{page}: an <img> whose file is not in the book ({src[:80]})")
        elif name == "a" and (href := element.get("href")):
            problem = _link_problem(page, href, ids)
            if problem:
                problems.append(problem)
    return problems


def _link_problem(page: str, href: str, ids: dict[str, set[str]]) -> str | None:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.fragment:
        return None  # the web, mail, or a whole page: not an id
    target = (
        page
        if not parts.path
        else posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(parts.path)))
    )
    if target not in ids:
        return f"{page}: a link to {href}, a page not in the book"
    if unquote(parts.fragment) not in ids[target]:
        return f"{page}: a link to #{parts.fragment} in {target}, which has no such id"
    return None


def _xml(archive: zipfile.ZipFile, name: str) -> etree._Element | None:
    return _xml_bytes(archive.read(name))


def _xml_bytes(data: bytes) -> etree._Element | None:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return None


def title_of(book: Path) -> str:
    """The book's dc:title, or its file name when it has none (or cannot be read)."""
    try:
        with zipfile.ZipFile(book) as archive:
            opf = _xml(archive, _package_name(archive, set(archive.namelist())))
    except (zipfile.BadZipFile, OSError, BookUnreadable, KeyError):
        return book.name
    title = opf.findtext(f".//{_DC}title") if opf is not None else None
    return " ".join(title.split()) if title and title.strip() else book.name
