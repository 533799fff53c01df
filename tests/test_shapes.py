"""Input shapes met in the world: one self-describing YAML file per case in tests/shapes/.

A case gives an input file (its name, its text, its line endings) and the command it
goes through, and says what must come out:

    description: why this case exists
    file: page.html                # the input's name (its ending can matter)
    line_endings: crlf             # lf (default), crlf, cr or mixed
    input: |
      <p>...</p>
    command: markdown              # markdown (stdout) | feed | atom | json | inspect | epub
    config: {...}                  # optional: laid over the shipped config
    expect:
      exit: 0                      # the exit code (default 0)
      contains: [...]              # pieces of the output (the feed file, the Markdown,
      absent: [...]                #   the JSON, the book's pages)
      stderr: [...]                # pieces of what was said on stderr
      stderr_absent: [...]
      items: 3                     # a feed's items (feedparser, bozo 0) or a book's chapters
      article: {title: ...}        # inspect: fields of the one article, as JSON
      image_urls: [...]            # inspect: the one article's picture addresses, in order
      distinct: updated            # a feed: every <updated> (of the feed and its entries)
                                   #   holds a value of its own
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import feedparser
import pytest
import yaml

from convert.cli import main

CASES = sorted((Path(__file__).parent / "shapes").glob("*.yaml"))
KEYS = {"description", "file", "line_endings", "input", "command", "config", "expect"}
EXPECT = {
    "exit",
    "contains",
    "absent",
    "stderr",
    "stderr_absent",
    "items",
    "article",
    "image_urls",
    "distinct",
}
SELF_URL = "https://example.org/feeds/shapes.xml"


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert not set(case) - KEYS, f"{path.name}: unknown keys {set(case) - KEYS}"
    assert not set(case.get("expect", {})) - EXPECT, f"{path.name}: unknown expectations"
    assert case.get("description"), f"{path.name}: say what the case is for"
    return case


def with_line_endings(text: str, kind: str) -> str:
    if kind == "crlf":
        return text.replace("\n", "\r\n")
    if kind == "cr":
        return text.replace("\n", "\r")
    if kind == "mixed":  # CRLF, CR and LF in turn, line by line
        ends = ("\r\n", "\r", "\n")
        return "".join(line + ends[n % 3] for n, line in enumerate(text.split("\n")))
    assert kind == "lf", kind
    return text


def command_of(case: dict[str, Any], work: Path) -> tuple[list[str], Path]:
    """The case's input written into `work`; the command line for it, and its output file."""
    source = work / case["file"]
    text = with_line_endings(case["input"], case.get("line_endings", "lf"))
    source.write_bytes(text.encode("utf-8"))
    argv: list[str] = []
    if case.get("config"):
        overlay = work / "overlay.yaml"
        overlay.write_text(yaml.safe_dump(case["config"], allow_unicode=True), "utf-8")
        argv += ["-c", str(overlay)]
    command = case["command"]
    out = work / "out"
    if command == "markdown":
        argv += ["markdown", str(source)]
    elif command in ("feed", "atom", "json"):
        out = work / {"feed": "out.xml", "atom": "out.atom", "json": "out.json"}[command]
        argv += ["feed", str(source), "-o", str(out), "--self-url", SELF_URL]
    elif command == "inspect":
        argv += ["inspect", str(source)]
    elif command == "epub":
        out = work / "out.epub"
        argv += ["epub", str(source), "-o", str(out)]
    else:
        raise AssertionError(f"unknown command {command}")
    return argv, out


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_shape(
    path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = load_case(path)
    monkeypatch.chdir(tmp_path)
    argv, out = command_of(case, tmp_path)
    code = main(argv)
    captured = capsys.readouterr()
    expect = case.get("expect", {})
    assert code == expect.get("exit", 0), captured.err
    assert "Traceback" not in captured.err
    command = case["command"]
    if command in ("markdown", "inspect"):
        output = captured.out
    elif command == "epub":
        output = ""
        if out.exists():
            with zipfile.ZipFile(out) as book:
                pages = [n for n in book.namelist() if n.endswith(".xhtml")]
                output = "".join(book.read(n).decode("utf-8") for n in pages)
    else:
        output = out.read_text("utf-8") if out.exists() else ""
    for piece in expect.get("contains", ()):
        assert piece in output, f"{piece!r} not in the output"
    for piece in expect.get("absent", ()):
        assert piece not in output, f"{piece!r} in the output"
    for piece in expect.get("stderr", ()):
        assert piece in captured.err
    for piece in expect.get("stderr_absent", ()):
        assert piece not in captured.err
    if "items" in expect:
        if command == "json":
            assert len(json.loads(output)["items"]) == expect["items"]
        elif command == "epub":
            with zipfile.ZipFile(out) as book:
                chapters = [n for n in book.namelist() if n.startswith("EPUB/a")]
            assert len(chapters) == expect["items"]
        else:
            parsed = feedparser.parse(output.encode("utf-8"))
            assert parsed.bozo == 0, parsed.get("bozo_exception")
            assert len(parsed.entries) == expect["items"]
    if "distinct" in expect:
        tag = expect["distinct"]
        values = re.findall(rf"<{tag}>([^<]*)</{tag}>", output)
        assert len(values) > 1, f"fewer than two <{tag}>"
        entries = values[1:]  # the feed's own may equal its newest entry's
        assert len(set(entries)) == len(entries), f"entries share a <{tag}>: {entries}"
    if "article" in expect or "image_urls" in expect:
        article = json.loads(output)
        for key, value in expect.get("article", {}).items():
            assert article[key] == value, key
        if "image_urls" in expect:
            assert [image["url"] for image in article["images"]] == expect["image_urls"]


def test_every_command_has_a_case() -> None:
    assert {load_case(p)["command"] for p in CASES} >= {"markdown", "feed", "inspect", "epub"}
