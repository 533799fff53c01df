"""Write the hostile inputs that are too large (or too odd) to commit, into a folder.

    python tests/hostile/generate.py OUT_DIR

The test harness calls `generate(folder, canary_url, canary_file)` once per session;
every file it writes is named in `cases.yaml` with `generated: true`. Large inputs are
written in pieces, never built whole in memory twice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOOD = HERE.parent.parent / "examples" / "nyt-putin-harbin.txt"
GOOD_URL = "https://cn.nytimes.com/world/20240520/putin-xi-china-russia-military-ties/"
STAMP = "<!--1716170821000-->"
PUDATE = '<time pudate="2024-05-20 09:52:45">2024年5月20日</time>'
PARA = "<p>正文第一段：这是一篇用来测试的文章，内容平常。</p>"
MB = 1_000_000
DEPTH = 100_000
IMAGES = 10_000


def url(name: str) -> str:
    return f"https://news.example.test/2024/05/20/{name}/"


def _feedx_head(name: str, title: str = "测试文章") -> str:
    return f"{STAMP}\n[{title}]({url(name)})\n------\n\n"


def _rss_head(name: str, title: str = "测试条目") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Hostile</title>'
        "<link>https://news.example.test/</link><description>hostile</description>"
        f"<item><title>{title}</title><link>{url(name)}</link>"
        "<pubDate>Mon, 20 May 2024 09:52:45 +0800</pubDate><description><![CDATA["
    )


_RSS_TAIL = "]]></description></item></channel></rss>\n"


def _html_head(name: str, title: str = "测试页面") -> str:
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta property="og:url" content="{url(name)}">'
        '<meta property="article:published_time" content="2024-05-20T09:52:45+08:00">'
        "</head><body><article>"
    )


_HTML_TAIL = "</article></body></html>\n"


def _write(path: Path, pieces: Iterator[str]) -> None:
    with path.open("wb") as out:
        for piece in pieces:
            out.write(piece.encode("utf-8"))


def _shapes(name: str) -> dict[str, tuple[str, str, str]]:
    """feedx, RSS and HTML wrappers: (file name, head, tail)."""
    return {
        "feedx": (f"size-feedx-{name}.txt", _feedx_head(name), "\n"),
        "rss": (f"size-rss-{name}.xml", _rss_head(name), _RSS_TAIL),
        "html": (f"size-html-{name}.html", _html_head(name), _HTML_TAIL),
    }


def _fifty_mb_line(folder: Path) -> None:
    """50 MB on one line: over max_input_bytes (10 MB), so it must be refused unread."""
    chunk = "<b>五十兆字节的一行</b>" * 10_000
    for file_name, head, tail in _shapes("50mb-line").values():

        def pieces(head: str = head, tail: str = tail) -> Iterator[str]:
            yield head + "<p>"
            written = 0
            while written < 50 * MB:
                yield chunk
                written += len(chunk.encode("utf-8"))
            yield "</p>" + tail

        _write(folder / file_name, pieces())


def _deep(folder: Path) -> None:
    """100,000 nested elements, with text at every 10,000th level and at the bottom."""
    tags = {"feedx": "div", "rss": "b", "html": "blockquote"}
    for shape, (file_name, head, tail) in _shapes("deep-nesting").items():
        tag = tags[shape]

        def pieces(head: str = head, tail: str = tail, tag: str = tag) -> Iterator[str]:
            yield head + PARA
            for level in range(DEPTH):
                yield f"<{tag}>" + (f"第{level}层。" if level % 10_000 == 0 else "")
            yield "<p>最深处的文字。</p>"
            yield f"</{tag}>" * DEPTH
            yield "<p>嵌套之后的文字。</p>" + tail

        _write(folder / file_name, pieces())
    # The same depth as XML elements of the feed itself, not inside the item's HTML.
    head = _rss_head("deep-xml").removesuffix("<description><![CDATA[")
    _write(
        folder / "size-rss-deep-xml.xml",
        iter(
            [
                head,
                "<x>" * DEPTH,
                "深处",
                "</x>" * DEPTH,
                f"<description><![CDATA[{PARA}]]></description></item></channel></rss>\n",
            ]
        ),
    )


def _images(folder: Path) -> None:
    """10,000 pictures in one article, half of them behind an image proxy."""

    def picture(number: int) -> str:
        if number % 2:
            src = f"https://images.weserv.nl/?url=img.example.test/p/{number}.jpg&w=800"
        else:
            src = f"https://img.example.test/p/{number}.jpg"
        return f'<p><img src="{src}" width="800" height="600"><small>第{number}张图</small></p>'

    for file_name, head, tail in _shapes("10k-images").values():
        body = (
            PUDATE + PARA + "".join(picture(n) for n in range(IMAGES)) + "<p>图片之后的文字。</p>"
        )
        (folder / file_name).write_text(head + body + tail, encoding="utf-8")


def _near_limit(folder: Path) -> None:
    """An article just under max_input_bytes (10 MB): accepted, so it must be fast enough."""
    paragraph = "<p>" + "接近上限的长文章，" * 40 + "</p>\n"
    count = (9_500_000) // len(paragraph.encode("utf-8"))
    _write(
        folder / "size-feedx-near-limit.txt",
        iter([_feedx_head("near-limit"), PUDATE, paragraph * count, "<p>文章的最后一句。</p>\n"]),
    )
    # One text node of 9.6 MB: near libxml2's 10 MB limit for a node (huge_tree lifts it).
    _write(
        folder / "size-feedx-huge-text-node.txt",
        iter([_feedx_head("huge-text-node"), "<p>", "巨" * 3_200_000, "文本节点的结尾。</p>\n"]),
    )


def _huge_title(folder: Path) -> None:
    title = "非常长的标题" * 50_000  # 900 kB on the wrapper's title line
    (folder / "size-feedx-huge-title.txt").write_text(
        _feedx_head("huge-title", title) + PUDATE + PARA + "\n", encoding="utf-8"
    )


def _many_items(folder: Path) -> None:
    """300 items: more than feed.max_items (100)."""
    head = _rss_head("many-0").split("<item>")[0]
    items = "".join(
        f"<item><title>第{n}条</title><link>{url(f'many-{n}')}</link>"
        f"<pubDate>Mon, 20 May 2024 {n // 60 % 24:02d}:{n % 60:02d}:00 +0800</pubDate>"
        f"<description><![CDATA[<p>第{n}条的正文。</p>]]></description></item>"
        for n in range(300)
    )
    (folder / "size-rss-many-items.xml").write_text(
        head + items + "</channel></rss>\n", encoding="utf-8"
    )


def _quadratic(folder: Path) -> None:
    """One 50 kB entity referenced 50,000 times: 2.5 GB if anything expands it."""
    subset = '<!DOCTYPE x [<!ENTITY a "' + "A" * 50_000 + '">]>\n'
    references = "&a;" * 50_000
    (folder / "xml-rss-quadratic.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + subset.replace("x [", "rss [")
        + '<rss version="2.0"><channel><title>q</title><link>https://news.example.test/</link>'
        f"<description>q</description><item><title>quadratic</title><link>{url('quadratic')}</link>"
        f"<description>{references}</description></item></channel></rss>\n",
        encoding="utf-8",
    )
    (folder / "xml-feedx-quadratic.txt").write_text(
        _feedx_head("quadratic") + subset + f"<p>{references}</p>" + PARA + "\n", encoding="utf-8"
    )
    (folder / "xml-html-quadratic.html").write_text(
        subset.replace("x [", "html [")
        + _html_head("quadratic").removeprefix("<!DOCTYPE html>\n")
        + f"<p>{references}</p>{PARA}{_HTML_TAIL}",
        encoding="utf-8",
    )


def _utf16(folder: Path, substitute: Callable[[str], str]) -> None:
    """External entities hidden behind UTF-16, with and without a byte-order mark."""
    rss = substitute((HERE / "xml-rss-xxe-file.xml").read_text(encoding="utf-8"))
    declared = rss.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    (folder / "xml-rss-xxe-utf16le-bom.xml").write_bytes(b"\xff\xfe" + declared.encode("utf-16-le"))
    (folder / "xml-rss-xxe-utf16be-nobom.xml").write_bytes(declared.encode("utf-16-be"))
    (folder / "xml-rss-xxe-utf16le-nobom.xml").write_bytes(declared.encode("utf-16-le"))
    feedx = substitute((HERE / "xml-feedx-xxe.txt").read_text(encoding="utf-8"))
    (folder / "xml-feedx-xxe-utf16.txt").write_bytes(b"\xff\xfe" + feedx.encode("utf-16-le"))
    html = substitute((HERE / "xml-html-xxe.html").read_text(encoding="utf-8"))
    (folder / "xml-html-xxe-utf16.html").write_bytes(
        b"\xfe\xff" + html.replace('charset="utf-8"', 'charset="utf-16"').encode("utf-16-be")
    )


def _hostile_file_name(folder: Path) -> None:
    """Terminal escapes and a bidi override in the input's own name (printed in messages)."""
    name = "paths-feedx-\x1b[31m\u202egnp.exe\x1b]0;pwned\x07.txt"
    text = f"[文件名里有控制字符]({url('file-name')})\n------\n\n{PUDATE}{PARA}\n"  # no stamp
    (folder / name).write_text(text, encoding="utf-8")


def _duplicates(folder: Path) -> None:
    """The good example again: as is, with tracking parameters, and on feedx mirrors."""
    good = GOOD.read_text(encoding="utf-8")
    (folder / "dup-feedx-same-as-good.txt").write_text(good, encoding="utf-8")
    tracked = good.replace(GOOD_URL, GOOD_URL + "?utm_source=feedx&utm_medium=rss&smid=tw#top", 1)
    (folder / "dup-feedx-tracking-params.txt").write_text(tracked, encoding="utf-8")
    http_mobile = good.replace(GOOD_URL, GOOD_URL.replace("https://cn.", "http://m.cn."), 1)
    (folder / "dup-feedx-http-mobile.txt").write_text(http_mobile, encoding="utf-8")
    for host in ("feedx.net", "feedx.site"):
        mirrored = good.replace(GOOD_URL, f"https://{host}/nytimes/2024/putin-harbin.html", 1)
        (folder / f"dup-feedx-on-{host.replace('.', '-')}.txt").write_text(
            mirrored, encoding="utf-8"
        )
    body = good.split("------", 1)[1]
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        "<title>普京访问哈工大，中俄加强军事联系令西方担忧</title>"
        f'<meta property="og:url" content="{GOOD_URL}?utm_campaign=x">'
        f"</head><body><article>{body}</article></body></html>\n"
    )
    (folder / "dup-html-same-as-good.html").write_text(page, encoding="utf-8")


def generate(folder: Path, canary_url: str, canary_file: str) -> None:
    """Write every generated case into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)

    def substitute(text: str) -> str:
        return text.replace("@CANARY_URL@", canary_url).replace("@CANARY_FILE@", canary_file)

    _fifty_mb_line(folder)
    _deep(folder)
    _images(folder)
    _near_limit(folder)
    _huge_title(folder)
    _many_items(folder)
    _quadratic(folder)
    _utf16(folder, substitute)
    _hostile_file_name(folder)
    _duplicates(folder)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py OUT_DIR")
    generate(Path(sys.argv[1]), "http://127.0.0.1:9", "file:///nonexistent/canary.txt")
