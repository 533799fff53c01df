"""feedx article dumps: a capture stamp, `[title](url)`, `------`, then the article's HTML.

    <!--1716170821000-->
    [普京访问哈工大，中俄加强军事联系令西方担忧](https://cn.nytimes.com/world/.../)
    ------

    <address>DAVID PIERSON</address><time pudate="2024-05-20 09:52:45">...</time>
    <figure>...</figure><section><p>...</p></section><footer>...</footer><hr><div>获取更多RSS...

`article_from_html` reads the HTML part; the feed reader uses it for feedx items too.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import lxml.html
from lxml.html import HtmlElement

from convert.config import Config, Rules
from convert.errors import ConvertError
from convert.fragments import (
    MAX_DEPTH,
    close_open_comment,
    parse_shallow,
    serialize_body,
    text_of,
)
from convert.model import Article, Contributor, Image, Link
from convert.readers.encoding import decode
from convert.readers.language import detect_language
from convert.readers.result import Read
from convert.text import escape_url_characters, has_text, plain_text
from convert.urls import canonical_url, host_of, is_web_url, stable_id

log = logging.getLogger(__name__)

_STAMP = re.compile(r"\A\s*<!--\s*(-?\d+)\s*-->[ \t]*\r?\n")
_SEPARATOR = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.M)
_URL_IN_PARENS = re.compile(r"\(([a-zA-Z][a-zA-Z0-9+.-]*:[^\s]*)\)\s*$")


def looks_like_feedx(text: str) -> bool:
    """True when `text` starts like a feedx dump (stamp or `[title](url)` line)."""
    head = text.lstrip("\ufeff \t\r\n")[:4096]
    return bool(_STAMP.match(head)) or (
        head.startswith("[") and _SEPARATOR.search(head) is not None
    )


def looks_like_feedx_html(html: str) -> bool:
    """True when HTML has feedx's article shape (its pudate stamp or its promotion)."""
    return "pudate=" in html or "获取更多RSS" in html or "獲取更多RSS" in html


def read_feedx(data: bytes, where: str, config: Config) -> Read:
    """Read one feedx article dump."""
    text = decode(data, where)
    captured, rest = _read_stamp(text, where)
    title, url, html = _split_wrapper(rest, where)
    article = article_from_html(
        html, title=title, url=url, captured=captured, where=where, config=config
    )
    return Read(articles=(article,))


def _read_stamp(text: str, where: str) -> tuple[datetime | None, str]:
    text = text.lstrip("\ufeff")
    match = _STAMP.match(text)
    if not match:
        log.warning("%s: no <!--epoch--> capture stamp on the first line", where)
        return None, text.lstrip()
    return _epoch_to_utc(match.group(1), where), text[match.end() :]


def _epoch_to_utc(digits: str, where: str) -> datetime | None:
    if len(digits.lstrip("-")) > 20:
        log.warning("%s: capture stamp %s… is not a usable time; ignored", where, digits[:20])
        return None
    value = int(digits)
    # Milliseconds since 1970 have 13 digits until the year 2286; seconds have 10.
    seconds = value / 1000 if abs(value) >= 10**11 else value
    try:
        stamp = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        log.warning("%s: capture stamp %s is not a usable time; ignored", where, digits)
        return None
    if value < 0 or stamp.year < FIRST_YEAR:
        log.warning("%s: capture stamp %s is before %d; ignored", where, digits, FIRST_YEAR)
        return None
    if not usable_date(stamp):
        log.warning("%s: capture stamp %s is after %d; ignored", where, digits, LAST_YEAR)
        return None
    return stamp


# Dates outside these years are mistakes (a zero epoch, a mistyped year), and far from
# them a date overflows when moved to another time zone.
FIRST_YEAR, LAST_YEAR = 1990, 2200


def usable_date(stamp: datetime) -> bool:
    """True for an aware date between FIRST_YEAR and LAST_YEAR, in UTC and in any zone."""
    try:
        return FIRST_YEAR <= stamp.astimezone(UTC).year <= LAST_YEAR
    except (OverflowError, ValueError):
        return False


def _split_wrapper(text: str, where: str) -> tuple[str, str, str]:
    first_line, _, rest = text.partition("\n")
    first_line = first_line.strip()
    if not first_line.startswith("["):
        raise ConvertError(where, "not a feedx article: expected a '[title](url)' line")
    # The title may hold brackets and the URL parentheses, so split at the last
    # `](` whose remainder is a whole URL in parentheses.
    title, url = "", ""
    for split in reversed([m.start() for m in re.finditer(r"\]\(", first_line)]):
        candidate = first_line[split + 1 :]
        if _URL_IN_PARENS.fullmatch(candidate) or candidate == "()":
            title, url = first_line[1:split], candidate[1:-1]
            break
    else:
        raise ConvertError(where, "not a feedx article: the first line is not '[title](url)'")
    separator = _SEPARATOR.search(rest)
    if separator is None or rest[: separator.start()].strip():
        raise ConvertError(where, "not a feedx article: no '------' line after the title")
    html = rest[separator.end() :]
    if not html.strip():
        raise ConvertError(where, "no article body after the '------' line")
    return title, url.strip(), html


def article_from_html(
    html: str,
    *,
    title: str,
    url: str,
    captured: datetime | None,
    where: str,
    config: Config,
    allow_empty: bool = False,
) -> Article:
    """Build an Article from feedx-shaped HTML: byline, pudate, figures, body, footer.

    HTML of another shape comes through as its body. An article with no text and no
    picture is an error unless `allow_empty` (a feed item may be its title alone).
    """
    url = escape_url_characters(url)
    if url and not is_web_url(url):
        raise ConvertError(where, f"the article URL is not an http(s) address: {url[:80]!r}")
    if not url:
        log.warning("%s: the article has no URL", where)
    host = host_of(url)
    rules = config.rules_for(host)
    html, unclosed = close_open_comment(html)
    if unclosed:
        log.warning("%s: unclosed comment ('<!--' without '-->'); the text after it is kept", where)
    root, flattened = parse_shallow(html)
    if flattened:
        log.warning("%s: nesting deeper than %d levels flattened (no text lost)", where, MAX_DEPTH)

    authors = _take_authors(root)
    published = _take_published(root, rules, where)
    lead_image = _take_lead_figure(root)
    footer = _take_footer(root)
    images = _normalize_body_figures(root)

    body = serialize_body(root)
    raw_text = text_of(root)
    if not has_text(raw_text) and not images and not lead_image and not allow_empty:
        raise ConvertError(where, "the article body has no text")
    title = plain_text(title)
    if not title:
        # A picture alone has no words: then the address, so that no title is empty.
        body_text = plain_text(raw_text)
        title = body_text[:40] or url or "untitled"
        instead = "its first words" if body_text else "its address" if url else "'untitled'"
        log.warning("%s: the article has no title; using %s", where, instead)

    if published and captured and published - captured > timedelta(minutes=10):
        log.warning(
            "%s: published %s is after the capture time %s; is the time zone of %s right? "
            "(config: sites.%s.timezone)",
            where,
            published.isoformat(),
            captured.isoformat(),
            host or "this site",
            host,
        )
    translator, contributors, credits, links = footer
    canonical = canonical_url(url, config.tracking_parameters) if url else ""
    return Article(
        # Without an address, the text identifies the article (tidied: white space alone
        # does not make another article).
        id=stable_id(canonical or title + plain_text(raw_text)),
        title=title,
        url=url,
        canonical_url=canonical,
        language=rules.site.language or detect_language(url, title + raw_text),
        source_name=rules.source_name,
        source_host=host,
        body=body,
        authors=authors,
        translator=translator,
        contributors=contributors,
        published=published,
        captured=captured,
        lead_image=lead_image,
        images=((lead_image,) if lead_image else ()) + images,
        credits=credits,
        links=links,
    )


# --- byline and date ------------------------------------------------------------------

_AUTHOR_SPLIT = re.compile(r"\s*(?:[,，、/]|\band\b|&)\s*")


def _take_authors(root: HtmlElement) -> tuple[str, ...]:
    authors: list[str] = []
    for address in root.iter("address"):
        for name in _AUTHOR_SPLIT.split(plain_text(text_of(address))):
            if name and name not in authors:
                authors.append(name)
    for address in list(root.iter("address")):
        address.drop_tree()
    return tuple(authors)


_PUDATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def _take_published(root: HtmlElement, rules: Rules, where: str) -> datetime | None:
    published = None
    for time in list(root.iter("time")):
        raw = (time.get("pudate") or time.get("datetime") or "").strip()
        if published is None and raw:
            published = _parse_pudate(raw, rules, where)
        time.drop_tree()
    return published


def _parse_pudate(raw: str, rules: Rules, where: str) -> datetime | None:
    stamp = _pudate(raw)
    if stamp is None:
        log.warning("%s: publication time %r is not a date; ignored", where, raw[:40])
        return None
    # An explicit offset is kept as an instant and shown in the site's zone.
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=rules.zone)
    if not usable_date(stamp):
        log.warning(
            "%s: publication time %r is not between %d and %d; ignored",
            where,
            raw[:40],
            FIRST_YEAR,
            LAST_YEAR,
        )
        return None
    return stamp.astimezone(rules.zone)


def _pudate(raw: str) -> datetime | None:
    """`raw` as a date: ISO 8601 (feedx's own form, parsed in C), else a looser format."""
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        pass
    # strptime also takes what ISO does not, such as one-digit months (`2024-5-20 9:05`).
    for fmt in _PUDATE_FORMATS:
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    return None


# --- pictures -------------------------------------------------------------------------


def _int_attribute(element: HtmlElement, name: str) -> int | None:
    value = (element.get(name) or "").strip()
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else None


def _image_from(img: HtmlElement, caption: str, credit: str) -> Image:
    return Image(
        url=(img.get("src") or "").strip(),
        caption=caption,
        credit=credit,
        width=_int_attribute(img, "width"),
        height=_int_attribute(img, "height"),
    )


def _figure_parts(figure: HtmlElement) -> tuple[HtmlElement | None, str, str]:
    """The figure's img, its caption text and its `<cite>` credit."""
    img = next(figure.iter("img"), None)
    caption, credit = "", ""
    figcaption = next(figure.iter("figcaption"), None)
    if figcaption is not None:
        cites = list(figcaption.iter("cite"))
        credit = plain_text(" ".join(text_of(cite) for cite in cites))
        for cite in cites:
            cite.drop_tree()
        caption = plain_text(text_of(figcaption))
    return img, caption, credit


def _take_lead_figure(root: HtmlElement) -> Image | None:
    """The first `<figure>` before any paragraph of text is the lead picture."""
    for element in root.iter():
        if element.tag == "figure":
            img, caption, credit = _figure_parts(element)
            if img is None or not img.get("src"):
                return None
            image = _image_from(img, caption, credit)
            element.drop_tree()
            return image
        if element.tag == "p" and has_text(text_of(element)):
            return None
    return None


def _is_picture_paragraph(p: HtmlElement) -> bool:
    """`<p><img><small>caption</small></p>`: a picture with its caption, nothing else."""
    imgs = list(p.iter("img"))
    if len(imgs) != 1 or not (imgs[0].get("src") or "").strip():
        return False  # an <img> without src is no picture
    others = [el for el in p if el.tag not in ("img", "small", "br")]
    loose_text = (p.text or "") + "".join(el.tail or "" for el in p)
    return not others and not loose_text.strip()


def _normalize_body_figures(root: HtmlElement) -> tuple[Image, ...]:
    """Turn `<p><img><small>` into figures and collect every picture in reading order."""
    images: list[Image] = []
    for element in list(root.iter("p", "figure", "img")):
        if element.tag == "p" and next(element.iter("img"), None) is None:
            continue  # most paragraphs: text alone
        if not any(ancestor is root for ancestor in element.iterancestors()):
            continue  # inside a paragraph or figure replaced earlier in this loop
        if element.tag == "p" and _is_picture_paragraph(element):
            img = next(element.iter("img"))
            caption = plain_text(" ".join(text_of(s) for s in element.iter("small")))
            image = _image_from(img, caption, "")
        elif element.tag == "figure":
            img, caption, credit = _figure_parts(element)
            if img is None or not img.get("src"):
                element.drop_tree()
                continue
            image = _image_from(img, caption, credit)
        elif element.tag == "img" and element.get("src"):
            images.append(_image_from(element, plain_text(element.get("alt") or ""), ""))
            continue
        else:
            continue
        images.append(image)
        element.getparent().replace(element, _figure_element(image, element.tail))
    return tuple(images)


def _figure_element(image: Image, tail: str | None) -> HtmlElement:
    """`<figure><img><figcaption>caption <cite>credit</cite></figcaption></figure>`."""
    figure = lxml.html.Element("figure")
    img = lxml.html.Element("img", src=image.url, alt=image.caption)
    if image.width and image.height:
        img.set("width", str(image.width))
        img.set("height", str(image.height))
    figure.append(img)
    if image.caption or image.credit:
        figcaption = lxml.html.Element("figcaption")
        figcaption.text = image.caption
        if image.credit:
            if image.caption:
                figcaption.text += " "
            cite = lxml.html.Element("cite")
            cite.text = image.credit
            figcaption.append(cite)
        figure.append(figcaption)
    figure.tail = tail
    return figure


# --- footer credits -------------------------------------------------------------------

_REPORTERS = re.compile(
    r"^(?P<names>.+?)\s*(?:对本文有报道贡献|對本文有報道貢獻|对本文亦有贡献|對本文亦有貢獻|"
    r"参与了报道|參與了報道|协助报道|協助報導)"
)
_TRANSLATOR = re.compile(r"^(?:翻译|翻譯)\s*[:：]\s*(?P<name>.+?)\s*$")
_NAME_SPLIT = re.compile(r"\s*(?:[,，、]|和|與|与|及|\band\b)\s*")
_ENGLISH_EDITION = re.compile(r"英文版|English", re.I)


def _take_footer(
    root: HtmlElement,
) -> tuple[str, tuple[Contributor, ...], tuple[str, ...], tuple[Link, ...]]:
    """Credits from `<footer>`: translator, contributors, credit lines and links."""
    translator = ""
    contributors: list[Contributor] = []
    credits: list[str] = []
    links: list[Link] = []
    for footer in list(root.iter("footer")):
        lines = list(footer.iter("p")) or [footer]
        for line in lines:
            for anchor in list(line.iter("a")):
                href = (anchor.get("href") or "").strip()
                label = plain_text(text_of(anchor))
                if is_web_url(href):
                    if _ENGLISH_EDITION.search(label):
                        links.append(Link(url=href, rel="alternate", title=label, language="en"))
                    else:
                        links.append(
                            Link(
                                url=href, rel="author" if "/by/" in href else "related", title=label
                            )
                        )
                anchor.drop_tree()
            text = plain_text(text_of(line))
            if not text:
                continue
            credits.append(text)
            if match := _REPORTERS.match(text):
                contributors.extend(
                    Contributor(name=name, role="reporter")
                    for name in _NAME_SPLIT.split(match.group("names"))
                    if name
                )
            elif match := _TRANSLATOR.match(text):
                translator = match.group("name")
                contributors.append(Contributor(name=translator, role="translator"))
        footer.drop_tree()
    return translator, tuple(contributors), tuple(credits), tuple(links)
