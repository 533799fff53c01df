"""The child processes of bench/run.py: one pass of a baseline, or rounds of in-process stages.

    python bench/stage.py once KIND LIST [--out DIR]
    python bench/stage.py serve LIST --config CONFIG

`once` is a baseline as a fresh process, importing only what it needs: `floor`
(read each body, lxml parse, serialize), `markdownify` or `html2text` (read each
body, convert, write DIR/NNNNN.md). LIST names the body files, one a line.

`serve` reads LIST (here: the dumps), warms up on the first few, then for each
`round` line on standard input times every stage once over all of them and
answers with one JSON line: {stage: {"s": seconds, "peak_mb": MB, "articles": n}}.
The stages run in one process so that each sees the same machine state:

- floor: read + lxml parse + serialize of the raw bodies;
- read_clean: `convert.run.read_articles` (read, sniff, feedx reader, cleaning);
- markdown_render: `render_markdown` of the cleaned articles (read_clean's output);
- rss_writer: `write_rss` of one feed of all of them (newest first, no item cap);
- markdownify / html2text: the raw bodies through the library alone (no writing).

After read_clean the articles it made are kept (for the render and RSS stages) and
frozen out of the cyclic GC (`gc.freeze`), so that the stages after it do not pay
for scanning what the bench holds.

peak_mb is the process's resident high-water mark during the stage (VmHWM, reset
before each stage through /proc/self/clear_refs), so it includes what the process
already holds (the articles of the previous rounds' read_clean).
"""

# Imports are made where needed, so that a baseline process loads only its own library.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MB = 1_000_000


def _bodies(paths: list[Path]) -> list[str]:
    """The raw body HTML of each file: a body file as is, a dump after its `------` line."""
    out = []
    for path in paths:
        text = path.read_text("utf-8")
        if path.suffix == ".txt":
            text = text.split("\n------\n", 1)[1]
        out.append(text)
    return out


def _floor_pass(paths: list[Path]) -> int:
    import lxml.html

    total = 0
    for body in _bodies(paths):
        root = lxml.html.fragment_fromstring(body, create_parent="div")
        total += len(lxml.html.tostring(root, encoding="unicode"))
    return total


def _converter(kind: str) -> Callable[[str], str]:
    if kind == "markdownify":
        from markdownify import markdownify

        return markdownify  # type: ignore[no-any-return]
    import html2text

    def convert(body: str) -> str:
        maker = html2text.HTML2Text()
        maker.body_width = 0  # no hard wrapping, as our Markdown
        return str(maker.handle(body))

    return convert


def once(kind: str, paths: list[Path], out: Path | None) -> None:
    if kind == "floor":
        _floor_pass(paths)
        return
    convert = _converter(kind)
    for path, body in zip(paths, _bodies(paths), strict=True):
        text = convert(body)
        if out is not None:
            (out / f"{path.stem}.md").write_text(text, "utf-8")


# --- serve: the in-process stages ----------------------------------------------------------


def _vm_hwm_mb() -> float:
    """This process's peak resident memory since the last reset, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Stages:
    def __init__(self, dumps: list[Path], config_path: Path) -> None:
        from convert.config import load_config
        from convert.plan import settings_of

        self.dumps = dumps
        self.config = load_config(config_path)
        self.settings = settings_of(self.config)
        self.articles: list[Any] = []
        self.has_html2text = True
        try:
            import html2text  # noqa: F401
        except ImportError:
            self.has_html2text = False
        # Warm up (imports, compiled patterns, templates): a few articles, untimed.
        few = dumps[:3]
        self._read_clean(few)
        self._render()
        self._rss()
        _floor_pass(few)
        self._convert("markdownify", few)
        if self.has_html2text:
            self._convert("html2text", few)
        self.articles = []

    def _read_clean(self, paths: list[Path]) -> None:
        from convert.run import read_articles

        self.articles = [a for p in paths for a in read_articles(str(p), self.settings).articles]

    def _render(self) -> None:
        from convert.writers.markdown import render_markdown

        for article in self.articles:
            render_markdown(article)

    def _rss(self) -> None:
        from convert.model import Channel, Feed, item_date
        from convert.outputs.feed import merge_items
        from convert.writers.rss import write_rss

        # Keyed as before the outputs moved (canonical URL): the same work as the baseline.
        articles = merge_items(
            self.articles, [], max(1, len(self.articles)), key=lambda a: a.canonical_url or a.id
        )
        channel = Channel(
            title="bench",
            link="https://cn.nytimes.com/",
            description="bench",
            language="zh-Hans",
            self_url="https://example.org/f.xml",
            updated=max((item_date(a) for a in articles), default=None),
        )
        write_rss(Feed(channel=channel, articles=articles))

    def _convert(self, kind: str, paths: list[Path]) -> None:
        convert = _converter(kind)
        for body in _bodies(paths):
            convert(body)

    def round(self) -> dict[str, dict[str, float]]:
        steps: list[tuple[str, Callable[[], object]]] = [
            ("floor", lambda: _floor_pass(self.dumps)),
            ("read_clean", lambda: self._read_clean(self.dumps)),
            ("markdown_render", self._render),
            ("rss_writer", self._rss),
            ("markdownify", lambda: self._convert("markdownify", self.dumps)),
        ]
        if self.has_html2text:
            steps.append(("html2text", lambda: self._convert("html2text", self.dumps)))
        out: dict[str, dict[str, float]] = {}
        gc.unfreeze()
        self.articles = []
        for name, step in steps:
            gc.collect()
            if name == "markdown_render":
                # The articles read_clean made stay alive for the stages after it. Frozen,
                # the cyclic GC no longer scans them, so a stage's time does not grow with
                # what the bench holds (the CLI's Markdown path holds no articles).
                gc.freeze()
            reset = _reset_peak()
            start = time.perf_counter()
            step()
            elapsed = time.perf_counter() - start
            out[name] = {
                "s": elapsed,
                "peak_mb": _vm_hwm_mb(),
                "peak_reset": float(reset),
                "articles": float(len(self.dumps)),
            }
        return out


def serve(dumps: list[Path], config_path: Path) -> None:
    stages = Stages(dumps, config_path)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        print(json.dumps(stages.round()), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("once")
    one.add_argument("kind", choices=["floor", "markdownify", "html2text"])
    one.add_argument("list", type=Path)
    one.add_argument("--out", type=Path)
    rounds = sub.add_parser("serve")
    rounds.add_argument("list", type=Path)
    rounds.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    base = args.list.parent
    paths = [base / line for line in args.list.read_text("utf-8").split()]
    if args.mode == "once":
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
        once(args.kind, paths, args.out)
    else:
        serve(paths, args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
