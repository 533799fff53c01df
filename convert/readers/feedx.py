"""feedx article dumps: a capture stamp, `[title](url)`, `------`, then the article's HTML.

    <!--1716170821000-->
    [普京访问哈工大，中俄加强军事联系令西方担忧](https://cn.nytimes.com/world/.../)
    ------

    <address>DAVID PIERSON</address><time pudate="2024-05-20 09:52:45">...</time>
    <figure>...</figure><section><p>...</p></section><footer>...</footer><hr><div>获取更多RSS...

`extract.article_from_html` reads the HTML part, as it reads feed items and pages.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from convert.errors import ConvertError
from convert.readers.dates import capture_time
from convert.readers.encoding import decode
from convert.readers.extract import article_from_html
from convert.readers.options import ReadOptions
from convert.readers.result import Read

log = logging.getLogger(__name__)

_STAMP = re.compile(r"\A\s*<!--\s*(-?\d+)\s*-->[ \t]*\r?\n")
_SEPARATOR = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.M)
_URL_IN_PARENS = re.compile(r"\(([a-zA-Z][a-zA-Z0-9+.-]*:[^\s]*)\)\s*$")


def one_newline(text: str) -> str:
    """`text` with CRLF and lone CR line ends as LF (a dump saved on Windows, or an old Mac)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def looks_like_feedx(text: str) -> bool:
    """True when `text` starts like a feedx dump (stamp or `[title](url)` line)."""
    head = one_newline(text.lstrip("\ufeff \t\r\n")[:4096])
    return bool(_STAMP.match(head)) or (
        head.startswith("[") and _SEPARATOR.search(head) is not None
    )


def read_feedx(data: bytes, where: str, options: ReadOptions) -> Read:
    """Read one feedx article dump."""
    # HTML reads CR and CRLF as LF too: the body is unchanged by this.
    text = one_newline(decode(data, where))
    captured, rest = _read_stamp(text, where)
    title, url, html = _split_wrapper(rest, where)
    parsed = article_from_html(
        html, title=title, url=url, captured=captured, where=where, options=options
    )
    return Read(items=(parsed,))


def _read_stamp(text: str, where: str) -> tuple[datetime | None, str]:
    text = text.lstrip("\ufeff")
    match = _STAMP.match(text)
    if not match:
        log.warning("%s: no <!--epoch--> capture stamp on the first line", where)
        return None, text.lstrip()
    return capture_time(match.group(1), where), text[match.end() :]


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
