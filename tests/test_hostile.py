"""Hostile inputs through the real command line, each in a forked child with hard limits.

Every case of `tests/hostile/cases.yaml` is converted together with a good example,
to Markdown (and, for feeds, pages and some articles, to an RSS feed and an EPUB),
each run in a child process forked from this one (no imports paid again), under a
1 GiB address-space limit and 10 s of CPU time (RLIMIT_CPU: SIGXCPU ends it). The
parent kills a child still running after 30 s of wall-clock time (a hang, or a
machine so busy that the 10 s could not be judged). CPU time rather than the clock
is the budget because the machine is shared: other test runs and benchmarks may keep
both cores busy. A case passes when:

- the child exits 0 or 1 (1 exactly when it printed an `error:` line), within budget;
- every stderr line is `error: `, `warning: ` or `info: ` and holds no raw control
  character or bidi override, and no line is a traceback;
- the expected `error:` or `warning:` text is there (or, for a clean case, no error);
- the good example was still converted;
- the outputs are inert: Markdown rendered by markdown-it-py (raw HTML on, link
  validation off) holds only plain elements and web links; the feed parses with
  bozo 0 and its HTML holds no active content; the EPUB's zip names stay inside the
  book and its XHTML parses as XML without scripts, handlers or odd URL schemes;
- nothing reached the canary: no connection to its port, no text of its file.

The children of all cases run two at a time (one per core) from one session fixture,
which checks each child's outputs as soon as it ends (while the next ones run); the
tests then only report what was found.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import feedparser
import httpx
import httpx._transports.default as httpx_transports
import lxml.etree
import lxml.html
import pytest
import yaml
from markdown_it import MarkdownIt

import convert.cli as cli_module
from convert.cli import main
from convert.net.client import Downloader
from convert.text import printable
from convert.writers.cover import find_cjk_font

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "hostile"
_spec = importlib.util.spec_from_file_location("hostile_generate", CORPUS / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)

GOOD = HERE.parent / "examples" / "nyt-putin-harbin.txt"
GOOD_URL = "https://cn.nytimes.com/world/20240520/putin-xi-china-russia-military-ties/"
GOOD_TITLE = "普京访问哈工大"
SELF_URL = "https://example.org/f.xml"
TIME_LIMIT = 10
WALL_LIMIT = 30.0
MEMORY_LIMIT = 1 << 30
PARALLEL = max(2, os.cpu_count() or 2)
COMMANDS = ("markdown", "feed", "epub")
EXTRA_COMMANDS = ("atom",)  # the feed as Atom: only where a case asks for it
CANARY_TEXT = "CANARY-FILE-CONTENT-7f3a9c"
CLASSES = {"xml", "structure", "encoding", "size", "active", "paths", "dates", "duplicates"}
CASE_KEYS = {
    "class",
    "why",
    "generated",
    "also",
    "commands",
    "error",
    "warning",
    "forbid",
    "require",
    "items",
    "chapters",
    "markdown_files",
    "per_command",
}

# Messages may hold anything but these (printable() escapes them).
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Text in files may keep bidi marks inside a paragraph (which ends them), never controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_MESSAGE = re.compile(r"^(error|warning|info): ")
# Elements that never belong in cleaned output, in any format.
_ACTIVE = {
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "svg",
    "math",
    "style",
    "template",
    "noscript",
    "link",
    "meta",
    "xmp",
    "plaintext",
    "listing",
    "noembed",
    "marquee",
    "isindex",
    "video",
    "audio",
    "source",
    "animate",
    "set",
    "use",
    "foreignobject",
}
# What Markdown may render to: nothing but CommonMark's own elements.
_MARKDOWN_ELEMENTS = {
    "html",
    "body",
    "div",
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "img",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "hr",
    "br",
}
_MARKDOWN_ATTRIBUTES = {"href", "src", "alt", "title", "start", "class"}
_URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "background",
    "data",
    "srcset",
    "lowsrc",
    "dynsrc",
    "codebase",
    "cite",
    "longdesc",
    "xlink:href",
    "{http://www.w3.org/1999/xlink}href",
}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")


# --- the corpus -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One entry of cases.yaml."""

    name: str
    spec: dict[str, Any]

    @property
    def commands(self) -> tuple[str, ...]:
        """Feedx files go to Markdown unless told; feeds, pages and JSON also to a feed,
        and to an EPUB where the book is what the class attacks (names, markup, text)."""
        if self.name.endswith(".txt"):
            default: tuple[str, ...] = ("markdown",)
        elif self.spec.get("class") in ("xml", "structure"):
            default = ("markdown", "feed")
        else:
            default = COMMANDS
        return tuple(self.spec.get("commands", default))

    def expect(self, command: str) -> dict[str, Any]:
        """The expectations for one command: the case's, with its per-command overrides."""
        merged = {k: v for k, v in self.spec.items() if k != "per_command"}
        merged.update((self.spec.get("per_command") or {}).get(command, {}))
        return merged


def _load_cases() -> list[Case]:
    spec = yaml.safe_load((CORPUS / "cases.yaml").read_text(encoding="utf-8"))
    # Keys starting with `_` are YAML anchors for the cases, not cases.
    cases = [Case(name, body or {}) for name, body in spec.items() if not name.startswith("_")]
    for case in cases:
        unknown = set(case.spec) - CASE_KEYS
        assert not unknown, f"{case.name!r}: unknown keys {unknown}"
        assert case.spec.get("class") in CLASSES, f"{case.name!r}: class?"
        assert case.spec.get("why"), f"{case.name!r}: say what the case attacks"
        assert set(case.commands) <= {*COMMANDS, *EXTRA_COMMANDS}, case.name
    return cases


# HOSTILE_CASES=regex runs only the matching cases (while working on a fix).
CASES = [c for c in _load_cases() if re.search(os.environ.get("HOSTILE_CASES", ""), c.name)]


def _case_id(case: Case) -> str:
    return printable(case.name)


# --- children ---------------------------------------------------------------------------


@dataclass
class Run:
    """What one child did."""

    case: Case
    command: str
    out: Path
    returncode: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    max_rss_mb: float = 0.0
    timed_out: bool = False
    stderr: str = ""
    stdout: str = ""
    problems: list[str] = field(default_factory=list)
    started: float = field(default=0.0, repr=False)


def _child(argv: list[str], out: Path) -> None:
    """In the forked child: limits, redirected output, the CLI, and a hard exit."""
    code = 70
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        resource.setrlimit(resource.RLIMIT_CPU, (TIME_LIMIT, TIME_LIMIT + 2))
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX: threads share arenas
        for number, name in ((1, "stdout"), (2, "stderr")):
            handle = os.open(out / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, number)
            os.close(handle)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        # Like a real terminal's streams: UTF-8, escapes for what cannot be encoded.
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), encoding="utf-8")  # noqa: SIM115
        sys.stderr = io.TextIOWrapper(
            open(2, "wb", closefd=False),  # noqa: SIM115
            encoding="utf-8",
            errors="backslashreplace",
            line_buffering=True,
        )
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = main(argv)
    except BaseException:  # a traceback is what the test looks for
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


_FEED_FILES = {"feed": "feed.xml", "atom": "feed.atom"}


def _argv(run: Run, inputs: list[str], overlay: Path) -> list[str]:
    good = str(GOOD)
    common = ["-c", str(overlay)]
    if run.command == "markdown":
        return [*common, "markdown", *inputs, good, "-o", str(run.out / "md")]
    if run.command in ("feed", "atom"):
        out = run.out / _FEED_FILES[run.command]
        return [*common, "feed", *inputs, good, "-o", str(out), "--self-url", SELF_URL]
    return [*common, "epub", *inputs, good, "-o", str(run.out / "book.epub")]


def _run_all(jobs: list[tuple[Run, list[str]]]) -> None:
    """Fork every job, PARALLEL at a time; kill any that outlives WALL_LIMIT; check each."""
    pending = list(jobs)
    running: dict[int, Run] = {}
    while pending or running:
        while pending and len(running) < PARALLEL:
            run, argv = pending.pop(0)
            run.out.mkdir(parents=True, exist_ok=True)
            sys.stdout.flush()
            sys.stderr.flush()
            run.started = time.monotonic()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                _child(argv, run.out)
            running[pid] = run
        time.sleep(0.005)
        for pid, run in list(running.items()):
            done, status, usage = os.wait4(pid, os.WNOHANG)
            now = time.monotonic()
            if done == 0:
                if now - run.started > WALL_LIMIT and not run.timed_out:
                    run.timed_out = True
                    os.kill(pid, signal.SIGKILL)
                continue
            run.seconds = now - run.started
            run.cpu_seconds = usage.ru_utime + usage.ru_stime
            run.max_rss_mb = usage.ru_maxrss / 1024
            run.returncode = os.waitstatus_to_exitcode(status)
            run.stderr = (run.out / "stderr").read_text(encoding="utf-8", errors="replace")
            run.stdout = (run.out / "stdout").read_text(encoding="utf-8", errors="replace")
            del running[pid]
            # Checked now, while the other children run, and its outputs let go.
            try:
                run.problems = _problems(run)
            except Exception:  # a check that breaks fails its own test, not the session
                run.problems = [f"the check itself failed:\n{traceback.format_exc()}"]
            shutil.rmtree(run.out, ignore_errors=True)


class _Canary:
    """A port that records every connection, and a file whose text must never show."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "canary.txt"
        self.file.write_text(CANARY_TEXT + "\n", encoding="utf-8")
        self.connections = 0
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._server.accept()
                self.connections += 1
                connection.close()

    def close(self) -> None:
        self._server.close()


def _corpus_folder(folder: Path, canary: _Canary) -> Path:
    """The committed cases with the canary filled in, and the generated ones beside them."""
    folder.mkdir()
    for path in CORPUS.iterdir():
        if path.suffix in (".py", ".yaml", ".md") or not path.is_file():
            continue
        data = path.read_bytes()
        data = data.replace(b"@CANARY_URL@", canary.url.encode())
        data = data.replace(b"@CANARY_FILE@", canary.file.as_uri().encode())
        (folder / path.name).write_bytes(data)
    generate.generate(folder, canary.url, canary.file.as_uri())
    return folder


def _overlay(folder: Path) -> Path:
    """Pictures all go to a closed local port: no request leaves the machine."""
    overlay = folder / "overlay.yaml"
    settings = {
        "image_mirror": "http://127.0.0.1:9/{host}{path}",
        "download": {
            "allow_networks": ["127.0.0.1/32"],
            "retries": 0,
            "timeout": 1,
            "backoff": 0.1,
            "cache_dir": str(folder / "cache"),
        },
        "archive": str(folder / "archive.sqlite"),
    }
    font = find_cjk_font()
    if font is not None:  # searched once here, not in every child
        settings["epub"] = {"font": str(font)}
    overlay.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return overlay


def _warm_up(patch: pytest.MonkeyPatch, overlay: Path) -> None:
    """Pay once, here, the fixed costs that every child would pay again.

    Loading the config (pure-Python YAML, 0.1 s) and building the downloader's TLS
    contexts (0.18 s) have nothing to do with the input; the children inherit both,
    already made. The config is a frozen dataclass, and no child speaks TLS.
    """
    load = functools.cache(cli_module.load_config)
    patch.setattr(cli_module, "load_config", load)
    contexts = functools.cache(httpx_transports.create_ssl_context)
    patch.setattr(httpx_transports, "create_ssl_context", contexts)
    patch.setattr(httpx, "create_ssl_context", contexts)
    Downloader(load(overlay).download).close()


@dataclass
class Session:
    runs: dict[tuple[str, str], Run]
    corpus: Path
    canary: _Canary
    wall: float


@pytest.fixture(scope="session")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    # In memory when the machine has it: every output is written with fsync, which on a
    # busy disk costs more than the conversion of a small case.
    shm = Path("/dev/shm")
    in_memory = shm.is_dir() and os.access(shm, os.W_OK)
    root = (
        Path(tempfile.mkdtemp(prefix="feedx-hostile-", dir=shm))
        if in_memory
        else tmp_path_factory.mktemp("hostile")
    )
    canary = _Canary(root)
    corpus = _corpus_folder(root / "corpus", canary)
    overlay = _overlay(root)
    jobs: list[tuple[Run, list[str]]] = []
    runs: dict[tuple[str, str], Run] = {}
    for number, case in enumerate(CASES):
        inputs = [str(corpus / case.name)] + [
            str(corpus / extra) for extra in case.spec.get("also", [])
        ]
        for command in case.commands:
            run = Run(case=case, command=command, out=root / "runs" / f"{number:03d}-{command}")
            runs[(case.name, command)] = run
            jobs.append((run, _argv(run, inputs, overlay)))
    # The slowest first, so that two of them do not end up last together.
    jobs.sort(key=lambda job: not job[0].case.name.startswith("size-"))
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        _warm_up(patch, overlay)
        _run_all(jobs)
    result = Session(runs=runs, corpus=corpus, canary=canary, wall=time.monotonic() - started)
    report = os.environ.get("HOSTILE_REPORT")
    if report:
        Path(report).write_text(
            json.dumps(
                [
                    {
                        "case": r.case.name,
                        "command": r.command,
                        "seconds": round(r.seconds, 2),
                        "cpu": round(r.cpu_seconds, 2),
                        "start": round(r.started - started, 2),
                        "max_rss_mb": round(r.max_rss_mb),
                        "returncode": r.returncode,
                        "problems": r.problems,
                        "stderr": [
                            line
                            for line in r.stderr.splitlines()
                            if "download failed" not in line and "stale source" not in line
                        ][:8],
                    }
                    for r in runs.values()
                ],
                ensure_ascii=False,
                indent=1,
            ),
            encoding="utf-8",
        )
    yield result
    canary.close()
    shutil.rmtree(root if in_memory else root / "runs", ignore_errors=True)


# --- checks -----------------------------------------------------------------------------


def _bad_url(value: str, *, allow_relative: bool) -> str | None:
    """The scheme of a URL that must not be in output, or None when it is fine."""
    cleaned = re.sub(r"[\x00-\x20]+", "", value).lower()
    match = _SCHEME.match(cleaned)
    if match is None:
        if not allow_relative and cleaned and not cleaned.startswith("#"):
            return f"relative {value[:80]!r}"
        return None
    return None if match.group(1) in ("http", "https", "mailto") else value[:80]


def _active_content(root: Any, where: str, *, allow_relative: bool) -> list[str]:
    """Everything in a parsed tree that could act: elements, handlers, URL schemes, CSS."""
    found = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        tag = lxml.etree.QName(element).localname.lower()
        if tag in _ACTIVE:
            found.append(f"{where}: <{tag}>")
        for name, value in element.attrib.items():
            local = (
                lxml.etree.QName(name).localname.lower() if name.startswith("{") else name.lower()
            )
            if local.startswith("on"):
                found.append(f"{where}: <{tag} {name}=...>")
            if local == "style" and re.search(r"expression|url\(|behavior|binding", value, re.I):
                found.append(f"{where}: <{tag} style={value[:60]!r}>")
            if local in _URL_ATTRIBUTES or name in _URL_ATTRIBUTES:
                bad = _bad_url(value, allow_relative=allow_relative)
                if bad:
                    found.append(f"{where}: <{tag} {name}={bad!r}>")
    return found


def _same_story(url: str, other: str) -> bool:
    """Two copies of one article (scheme, `m.`, query and fragment aside)."""

    def core(value: str) -> str:
        return re.sub(r"^https?://(m\.)?|[?#].*$", "", value)

    return core(url) == core(other)


def _markdown_html(text: str) -> str:
    """The Markdown body as a renderer would show it: raw HTML on, no link filter."""
    renderer = MarkdownIt("commonmark")
    renderer.validateLink = lambda url: True  # type: ignore[method-assign]
    return str(renderer.render(text))


def _check_markdown(run: Run, problems: list[str]) -> tuple[str, list[dict[str, Any]]]:
    folder = run.out / "md"
    texts = []
    fronts: list[dict[str, Any]] = []
    files = sorted(folder.rglob("*")) if folder.exists() else []
    for path in files:
        relative = path.relative_to(folder)
        if path.is_dir():
            problems.append(f"markdown: unexpected folder {relative}")
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.md", relative.as_posix()):
            problems.append(f"markdown: unsafe file name {printable(str(relative))!r}")
        text = path.read_text(encoding="utf-8")
        if _CONTROL.search(text):
            problems.append(f"markdown: raw control character in {relative}")
        head, sep, body = text.partition("\n---\n")
        heading = body.lstrip("\n").partition("\n")[0]
        if _RAW_CONTROL.search(head + heading):
            problems.append(f"markdown: raw bidi or control character in the title of {relative}")
        if not (text.startswith("---\n") and sep):
            problems.append(f"markdown: no front matter in {relative}")
            continue
        try:
            front = yaml.safe_load(head.removeprefix("---\n"))
        except yaml.YAMLError as error:
            problems.append(f"markdown: front matter of {relative} is not YAML: {error}")
            continue
        expected_keys = {
            "title",
            "authors",
            "translator",
            "published",
            "source",
            "url",
            "english_url",
            "language",
            "lead_image",
            "tags",
        }
        if not isinstance(front, dict) or not set(front) <= expected_keys:
            problems.append(f"markdown: front matter of {relative} has keys {list(front or {})}")
            continue
        for key in ("url", "english_url", "lead_image"):
            if front.get(key) and _bad_url(str(front[key]), allow_relative=False):
                problems.append(f"markdown: front matter {key} {front[key]!r}")
        fronts.append(front)
        html = _markdown_html(body)
        root = lxml.html.fragment_fromstring(html, create_parent="div") if html.strip() else None
        if root is not None:
            problems.extend(_active_content(root, f"markdown {relative}", allow_relative=True))
            for element in root.iter():
                if isinstance(element.tag, str) and element.tag not in _MARKDOWN_ELEMENTS:
                    problems.append(f"markdown {relative}: raw HTML <{element.tag}> got through")
                for name in element.attrib:
                    if name not in _MARKDOWN_ATTRIBUTES:
                        problems.append(f"markdown {relative}: attribute {name} on <{element.tag}>")
        texts.append(text)
    if not any(_same_story(str(front.get("url")), GOOD_URL) for front in fronts):
        problems.append("markdown: the good example was not written")
    return "\n".join(texts), fronts


def _check_feed(run: Run, problems: list[str]) -> tuple[str, int]:
    path = run.out / _FEED_FILES[run.command]
    if not path.exists():
        problems.append("feed: not written")
        return "", 0
    data = path.read_bytes()
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    if parsed.bozo:
        problems.append(f"feed: bozo {parsed.get('bozo_exception')}")
    texts = [data.decode("utf-8", errors="replace")]
    if _CONTROL.search(texts[0]):
        problems.append("feed: raw control character")
    links = []
    for number, entry in enumerate(parsed.entries, 1):
        if _RAW_CONTROL.search(entry.get("title", "")):
            problems.append(f"feed item {number}: raw bidi or control character in the title")
        link = entry.get("link", "")
        links.append(link)
        if link and not link.startswith("urn:") and _bad_url(link, allow_relative=False):
            problems.append(f"feed item {number}: link {link[:80]!r}")
        for media in entry.get("media_content", []):
            if _bad_url(media.get("url", ""), allow_relative=False):
                problems.append(f"feed item {number}: media {media.get('url', '')[:80]!r}")
        # HTML parts are checked as HTML; Atom's type="text" parts are plain text to any
        # reader (RSS has no such type: its description is always taken for HTML).
        details = [*entry.get("content", []), entry.get("summary_detail") or {}]
        for detail in details:
            part = detail.get("value", "")
            texts.append(part)
            if part.strip() and detail.get("type", "text/html") != "text/plain":
                root = lxml.html.fragment_fromstring(part, create_parent="div")
                problems.extend(_active_content(root, f"feed item {number}", allow_relative=False))
    if GOOD_URL not in links:
        problems.append("feed: the good example is not an item")
    return "\n".join(texts), len(parsed.entries)


def _check_epub(run: Run, problems: list[str]) -> tuple[str, int]:
    path = run.out / "book.epub"
    if not path.exists():
        problems.append("epub: not written")
        return "", 0
    texts = []
    chapters = 0
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    with zipfile.ZipFile(path) as book:
        for name in book.namelist():
            parts = name.split("/")
            if (
                name.startswith("/")
                or "\\" in name
                or ".." in parts
                or ":" in name
                or _RAW_CONTROL.search(name)
                or not (name == "mimetype" or parts[0] in ("EPUB", "META-INF"))
            ):
                problems.append(f"epub: unsafe entry name {printable(name)!r}")
            if not name.endswith((".xhtml", ".opf", ".ncx", ".xml")):
                continue
            data = book.read(name)
            try:
                root = lxml.etree.fromstring(data, parser=parser)
            except lxml.etree.XMLSyntaxError as error:
                problems.append(f"epub: {name} is not XML: {error}")
                continue
            # The head's <meta> and <link> are the book's own; the articles are in the body.
            for body in root.iter("{http://www.w3.org/1999/xhtml}body"):
                problems.extend(_active_content(body, f"epub {name}", allow_relative=True))
            text = data.decode("utf-8", errors="replace")
            texts.append(text)
            # Titles and names (the navigation, the package) hold no bidi override either.
            if (_RAW_CONTROL if name.endswith((".opf", ".ncx", "nav.xhtml")) else _CONTROL).search(
                text
            ):
                problems.append(f"epub: raw control or bidi character in {name}")
            if re.fullmatch(r"EPUB/a\d+\.xhtml", name):
                chapters += 1
    joined = "\n".join(texts)
    if GOOD_TITLE not in joined:
        problems.append("epub: the good example is not in the book")
    return joined, chapters


def _check_messages(run: Run, expect: dict[str, Any], problems: list[str]) -> None:
    stderr = run.stderr
    if "Traceback" in stderr or "Logging error" in stderr:
        problems.append("stderr holds a traceback")
    lines = stderr.splitlines()
    for line in lines:
        if not _MESSAGE.match(line):
            problems.append(f"stderr line not 'error:/warning:/info:': {line[:160]!r}")
        if _RAW_CONTROL.search(line.replace("\t", "")):
            problems.append(f"stderr line with a raw control character: {line[:160]!r}")
    errors = [line for line in lines if line.startswith("error: ")]
    warnings = [line for line in lines if line.startswith("warning: ")]
    if run.returncode not in (0, 1):
        problems.append(f"exit code {run.returncode}")
    elif (run.returncode == 1) != bool(errors):
        problems.append(f"exit code {run.returncode} with {len(errors)} error lines")
    wanted_error = expect.get("error")
    if wanted_error:
        hostile = printable(run.case.name)
        if not any(wanted_error in line and hostile in line for line in errors):
            problems.append(f"no 'error: {hostile}: ...{wanted_error}...' line")
    elif errors:
        problems.append(f"unexpected error: {errors[0][:200]}")
    wanted = expect.get("warning") or []
    for text in [wanted] if isinstance(wanted, str) else wanted:
        if not any(text in line for line in warnings):
            problems.append(f"no warning with {text!r}")


def _problems(run: Run) -> list[str]:
    expect = run.case.expect(run.command)
    problems: list[str] = []
    if run.timed_out:
        return [f"killed after {WALL_LIMIT:.0f} s of wall-clock time; stderr: {run.stderr[-500:]}"]
    if run.returncode == -signal.SIGXCPU or run.cpu_seconds > TIME_LIMIT:
        return [f"over {TIME_LIMIT} s of CPU time ({run.cpu_seconds:.1f} s)"]
    _check_messages(run, expect, problems)
    if run.command == "markdown":
        text, fronts = _check_markdown(run, problems)
        count = expect.get("markdown_files")
        if count is not None and len(fronts) != count:
            problems.append(f"markdown: {len(fronts)} files, expected {count}")
    elif run.command in _FEED_FILES:
        text, items = _check_feed(run, problems)
        if expect.get("items") is not None and items != expect["items"]:
            problems.append(f"feed: {items} items, expected {expect['items']}")
    else:
        text, chapters = _check_epub(run, problems)
        if expect.get("chapters") is not None and chapters != expect["chapters"]:
            problems.append(f"epub: {chapters} chapters, expected {expect['chapters']}")
    everything = text + run.stderr + run.stdout
    for forbidden in [CANARY_TEXT, *expect.get("forbid", [])]:
        if forbidden in everything:
            problems.append(f"{run.command}: forbidden {forbidden!r} in the output")
    for required in expect.get("require", []):
        if required not in text:
            problems.append(f"{run.command}: text lost: {required!r}")
    return problems


@pytest.mark.parametrize(
    ("case", "command"),
    [
        pytest.param(case, command, id=f"{_case_id(case)}-{command}")
        for case in CASES
        for command in case.commands
    ],
)
def test_hostile_input(session: Session, case: Case, command: str) -> None:
    run = session.runs[(case.name, command)]
    problems = run.problems
    assert not problems, (
        f"{printable(case.name)} ({command}, {run.cpu_seconds:.1f} s CPU, {run.seconds:.1f} s, "
        f"exit {run.returncode}):\n  "
        + "\n  ".join(printable(p) for p in problems)
        + f"\nstderr:\n{printable(run.stderr[:3000])}"
    )


def test_nothing_reached_the_canary(session: Session) -> None:
    assert session.canary.connections == 0


def test_the_corpus_is_small_and_complete() -> None:
    listed = {case.name for case in _load_cases() if not case.spec.get("generated")}
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix not in (".py", ".yaml", ".md")}
    on_disk.discard("__pycache__")
    assert listed == on_disk, (listed - on_disk, on_disk - listed)
    for path in CORPUS.iterdir():
        assert path.stat().st_size < 1_000_000, f"{path.name}: generate it instead"


def test_the_generated_cases_exist(session: Session) -> None:
    made = {p.name for p in session.corpus.iterdir()}
    for case in CASES:
        assert case.name in made, f"{printable(case.name)}: not made by generate.py"
        for extra in case.spec.get("also", []):
            assert extra in made, extra
