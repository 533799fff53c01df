"""`make bench`: throughput of every path, beside the floor and the baselines, in one run.

    .venv/bin/python bench/run.py                          # N = 100 and 1,000, 5 runs
    .venv/bin/python bench/run.py --sizes 100,1000,10000   # + 10,000 (about an hour)
    .venv/bin/python bench/run.py --sizes 100 --runs 3 --no-pandoc

For each size N it writes N seed-shaped feedx dumps (bench/corpus.py: distinct
texts of about 10 KB, 3 or 4 pictures each, served by a local HTTP server on
127.0.0.1) and measures, as medians of --runs runs taken round-robin (run 1 of
every row, then run 2 of every row, ...) so that the ratios hold on a noisy machine:

1. the floor: read + lxml parse + serialize of the same bodies;
2. our reader and cleaning (read_articles, to the Article model), in process;
3. each writer: `feedx-convert markdown` (files, --jobs 1 and the default jobs),
   `feed` (one RSS feed, cleaning included), `epub` (pictures from the local
   server, cache cold and warm), `ingest` (the archive); in process: the Markdown
   render and the RSS writer alone;
4. baselines on the same bodies: markdownify alone, html2text alone, raw
   ebooklib, pandoc one process per file, pandoc on one batched file, pandoc EPUB
   (text only, and with the picture files).

Our commands run as the CLI in a fresh process each run (interpreter start and
imports count: that is what users pay; our modules' bytecode is compiled first, as
an installed package's is: see `compile_our_package`); wall time is taken by this process and
peak memory by GNU time (`%M`, the child's getrusage ru_maxrss). The in-process
stages run in one child (bench/stage.py) that times each stage once per round.

Prints the tables (articles per second, time ÷ floor, time ÷ each baseline, peak
MB, the issue's targets met or missed, linearity across sizes) and writes
bench/results.json. Nothing leaves 127.0.0.1 except apt-get and pip when a tool
is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import fnmatch
import importlib.util
import json
import operator
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from itertools import pairwise
from pathlib import Path
from typing import Any

from corpus import PictureServer, picture_names, split_dump, write_corpus
from epub_digest import book_contents, ensure_pandoc, machine_info, time_tool
from rich.console import Console
from rich.table import Table

from convert.config import load_config
from convert.plan import settings_of
from convert.run import read_articles

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MB = 1_000_000
SELF_URL = "https://example.org/f.xml"

console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


# --- rows and samples ----------------------------------------------------------------------


@dataclass
class Sample:
    """One run: wall seconds (scaled when extrapolated) and peak resident MB."""

    wall_s: float
    peak_mb: float


@dataclass
class Row:
    """One measured path at one size."""

    key: str
    name: str
    kind: str  # "process": a fresh process per run; "stage": timed inside one process
    group: str  # "floor", "ours" or "baseline"
    includes: str
    samples: list[Sample] = field(default_factory=list)
    skipped: str = ""
    note: str = ""
    scale: float = 1.0  # > 1: timed on a sample of the inputs and scaled up

    @property
    def ok(self) -> bool:
        return bool(self.samples) and not self.skipped

    @property
    def median_s(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def peak_mb(self) -> float:
        return max(s.peak_mb for s in self.samples)

    def as_json(self, articles: int, floor: Row | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "group": self.group,
            "includes": self.includes,
        }
        if self.note:
            out["note"] = self.note
        if not self.ok:
            return {**out, "skipped": self.skipped or "no runs"}
        times = [s.wall_s for s in self.samples]
        out |= {
            "runs": [
                {"wall_s": round(s.wall_s, 4), "peak_mb": round(s.peak_mb, 1)} for s in self.samples
            ],
            "median_s": round(self.median_s, 4),
            "min_s": round(min(times), 4),
            "max_s": round(max(times), 4),
            "articles_per_s": round(articles / self.median_s, 1),
            "peak_mb": round(self.peak_mb, 1),
        }
        if self.scale != 1:
            out["extrapolated_from_sample_of"] = round(articles / self.scale)
        if floor is not None and floor.ok and floor is not self:
            out["ratio_to_floor"] = round(ratio(self, floor), 3)
        return out


def ratio(row: Row, base: Row) -> float:
    """row's time ÷ base's: the median of the per-round ratios when both ran every round.

    Rounds are taken round-robin, so run i of every row saw about the same machine; the
    ratio within a round cancels most of a busy machine's drift. Else: ratio of medians.
    """
    if len(row.samples) == len(base.samples) > 1:
        return statistics.median(
            r.wall_s / b.wall_s for r, b in zip(row.samples, base.samples, strict=True)
        )
    return row.median_s / base.median_s


@dataclass
class Contender:
    """A process row: its command, its folder, and what to undo before each run."""

    row: Row
    command: list[str]
    cwd: Path
    before: Callable[[], None] = lambda: None
    after: Callable[[], None] = lambda: None


def measure(command: Sequence[str], cwd: Path) -> tuple[Sample | None, str]:
    """Wall time of `command` in a fresh process and its peak RSS (GNU time's %M).

    The peak comes from GNU time, a small parent: os.wait4 from this process would
    report this process's own memory too (Linux carries ru_maxrss across the vfork
    and exec of subprocess). Returns (None, output tail) when the command fails.
    """
    timer = time_tool()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "time.txt"
        wrapped = [timer, "-f", "%M", "-o", str(report), *command] if timer else list(command)
        with (Path(folder) / "output.txt").open("w+b") as output:
            start = time.perf_counter()
            done = subprocess.run(wrapped, cwd=cwd, stdout=output, stderr=output, check=False)
            wall = time.perf_counter() - start
            output.seek(0)
            tail = output.read().decode("utf-8", "replace")[-2000:]
        if done.returncode != 0:
            return None, f"exit {done.returncode}: {tail.strip()[-600:]}"
        peak_kib = int(report.read_text().split()[-1]) if timer else 0
    return Sample(wall_s=wall, peak_mb=peak_kib * 1024 / MB), tail


# --- the setup of one size -----------------------------------------------------------------


@dataclass
class Tools:
    """What this machine has: our CLI, its options, and the baselines' programs."""

    cli: list[str]
    jobs_option: bool
    pandoc: str | None
    pandoc_reason: str
    html2text: bool
    html2text_reason: str


def cli_entry() -> list[str]:
    script = Path(sys.executable).parent / "feedx-convert"
    return [str(script)] if script.exists() else [sys.executable, "-m", "convert"]


def compile_our_package() -> None:
    """Write the bytecode of `convert/`, as an installed package has it.

    pip compiles a wheel's modules and Python caches them on first import, so users do
    not pay for compiling. An editable checkout run with PYTHONDONTWRITEBYTECODE (set on
    some machines, this one included) would compile its ~40 modules in every run, ~60 ms
    of start-up that no user pays, while the baselines' packages are compiled already.
    """
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "convert")],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )


def has_jobs_option(cli: list[str]) -> bool:
    """Whether `feedx-convert markdown` takes --jobs yet (read from its --help)."""
    done = subprocess.run([*cli, "markdown", "--help"], capture_output=True, text=True, check=False)
    return re.search(r"(^|\s)--jobs\b", done.stdout) is not None


def ensure_html2text(install: bool) -> tuple[bool, str]:
    """html2text importable, installed with pip into this interpreter when missing."""
    if importlib.util.find_spec("html2text") is not None:
        return True, ""
    if not install:
        return (
            False,
            "skipped: html2text is not installed (pip install html2text; or drop --no-install)",
        )
    console.print("html2text not found: pip install html2text ...")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "html2text"],
        capture_output=True,
        text=True,
        check=False,
    )
    importlib.invalidate_caches()
    if done.returncode == 0 and importlib.util.find_spec("html2text") is not None:
        return True, ""
    return False, f"skipped: pip could not install html2text: {done.stderr.strip()[-300:]}"


def write_config(path: Path, cache: Path, archive: Path) -> None:
    """The overlay: pictures from 127.0.0.1 only, a private cache, no item cap on the feed."""
    path.write_text(
        "download:\n"
        '  allow_networks: ["127.0.0.1/32"]\n'
        "  retries: 0\n"
        "  timeout: 10\n"
        f"  cache_dir: {json.dumps(str(cache))}\n"
        "feed:\n"
        "  max_items: 1000000\n"
        f"archive: {json.dumps(str(archive))}\n",
        "utf-8",
    )


def remove(path: Path) -> Callable[[], None]:
    def undo() -> None:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    return undo


def standalone_html(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh-Hans"><head><meta charset="utf-8"/>'
        f"<title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>\n"
    )


_IMG = re.compile(r"<img\b[^>]*>")
_PROXIED_SRC = re.compile(r'src="https://images\.weserv\.nl/\?url=[^"]*/pics/([^"/]+)"')


def prepare_baseline_inputs(corpus: Path, names: list[str]) -> dict[str, Any]:
    """The baselines' inputs, written once and not timed.

    bodies/NNNNN.html (from write_corpus): each raw body, for markdownify, html2text,
    the floor and pandoc to Markdown. all.html: every body in one file. epub-text/:
    one standalone HTML per article, pictures removed (pandoc EPUB; the same HTML in
    chapters.json for ebooklib). epub-pics/: the same with local picture files.
    """
    bodies = [f"bodies/{Path(n).stem}.html" for n in names]
    (corpus / "bodies.list").write_text("\n".join(bodies) + "\n", "utf-8")
    (corpus / "dumps.list").write_text("\n".join(names) + "\n", "utf-8")
    text_dir, pics_dir = corpus / "epub-text", corpus / "epub-pics"
    text_dir.mkdir(exist_ok=True)
    pics_dir.mkdir(exist_ok=True)
    chapters = []
    with (corpus / "all.html").open("w", encoding="utf-8") as batched:
        batched.write('<!DOCTYPE html>\n<html><head><meta charset="utf-8"/></head><body>\n')
        for name in names:
            title, body = split_dump((corpus / name).read_text("utf-8"))
            batched.write(f"<article>\n{body}\n</article>\n")
            plain = _IMG.sub("", body)
            chapters.append({"title": title, "html": plain, "language": "zh-Hans"})
            stem = Path(name).stem
            (text_dir / f"{stem}.html").write_text(standalone_html(title, plain), "utf-8")
            local = _PROXIED_SRC.sub(r'src="pics/\1"', body)
            (pics_dir / f"{stem}.html").write_text(standalone_html(title, local), "utf-8")
        batched.write("</body></html>\n")
    (corpus / "chapters.json").write_text(json.dumps(chapters, ensure_ascii=False), "utf-8")
    return {"bodies": bodies}


@dataclass
class Setup:
    """One size: where its files are and how its rows run."""

    size: int
    work: Path
    corpus: Path
    names: list[str]
    config: Path
    cache: Path
    out: Path
    server: PictureServer
    notes: dict[str, Any]


def process_rows(setup: Setup, tools: Tools, args: argparse.Namespace) -> list[Contender]:
    """Every fresh-process row of this size, in the order each round runs them."""
    corpus, out, cache = setup.corpus, setup.out, setup.cache
    py = sys.executable
    stage = str(BENCH / "stage.py")
    base = [*tools.cli, "-q", "-c", str(setup.config)]
    files = setup.names
    rows: list[Contender] = []

    def add(row: Row, command: list[str], cwd: Path = corpus, **hooks: Any) -> None:
        rows.append(Contender(row, command, cwd, **hooks))

    add(
        Row(
            "floor",
            "floor: read + lxml parse + serialize",
            "process",
            "floor",
            "a fresh Python process: read each raw body, lxml.html.fragment_fromstring, "
            "lxml.html.tostring (no writing)",
        ),
        [py, stage, "once", "floor", "bodies.list"],
    )
    md1, mdd = out / "md-jobs1", out / "md-default"
    jobs1 = Row(
        "markdown_jobs1",
        "feedx-convert markdown --jobs 1",
        "process",
        "ours",
        "the CLI: read, clean, render, one .md file each (output folder removed before each run)",
    )
    default = Row(
        "markdown_default",
        "feedx-convert markdown (default jobs)",
        "process",
        "ours",
        "as --jobs 1, with the default worker count (one per core)",
    )
    if tools.jobs_option:
        add(jobs1, [*base, "markdown", *files, "-o", str(md1), "--jobs", "1"], before=remove(md1))
        add(default, [*base, "markdown", *files, "-o", str(mdd)], before=remove(mdd))
    else:
        jobs1.note = "no --jobs option yet: ran without it (the current default is serial)"
        add(jobs1, [*base, "markdown", *files, "-o", str(md1)], before=remove(md1))
        default.skipped = "skipped: `feedx-convert markdown --help` shows no --jobs option yet"
        rows.append(Contender(default, [], corpus))
    feed = out / "feed.xml"
    add(
        Row(
            "feed_rss",
            "feedx-convert feed (RSS)",
            "process",
            "ours",
            "the CLI: read, clean, dedupe, one RSS 2.0 feed of every article "
            "(feed.max_items lifted; output removed before each run, so no merge)",
        ),
        [*base, "feed", *files, "-o", str(feed), "--self-url", SELF_URL],
        before=remove(feed),
    )
    archive = out / "archive.sqlite"
    add(
        Row(
            "ingest",
            "feedx-convert ingest (archive)",
            "process",
            "ours",
            "the CLI: read, clean, store in a new SQLite archive (removed before each run)",
        ),
        [*base, "ingest", *files, "--archive", str(archive)],
        before=remove(archive),
    )
    book = out / "book.epub"
    add(
        Row(
            "epub_cold",
            "feedx-convert epub (cache cold)",
            "process",
            "ours",
            "the CLI: read, clean, fetch every picture from 127.0.0.1 (cache emptied before "
            "each run), prepare, fit the budget, cover, chapters, zip",
        ),
        [*base, "epub", *files, "-o", str(book)],
        before=lambda: (remove(cache)(), remove(book)()),
    )
    add(
        Row(
            "epub_warm",
            "feedx-convert epub (cache warm)",
            "process",
            "ours",
            "as cold, run right after it: every picture from the cache",
        ),
        [*base, "epub", *files, "-o", str(book)],
        before=remove(book),
    )
    for kind, available, reason in (
        ("markdownify", True, ""),
        ("html2text", tools.html2text, tools.html2text_reason),
    ):
        folder = out / kind
        row = Row(
            kind,
            f"{kind} alone",
            "process",
            "baseline",
            f"a fresh Python process: read each raw body, {kind} with its defaults"
            + (" (body_width=0)" if kind == "html2text" else "")
            + ", write one .md each",
        )
        if not available:
            row.skipped = reason
        add(
            row,
            [py, stage, "once", kind, "bodies.list", "--out", str(folder)],
            before=remove(folder),
        )
    ebook = out / "ebooklib.epub"
    add(
        Row(
            "ebooklib",
            "raw ebooklib",
            "process",
            "baseline",
            "bench/ebooklib_baseline.py: the raw bodies (pictures removed), one EpubHtml "
            "each, flat TOC; no cover, CSS or pictures",
        ),
        [py, str(BENCH / "ebooklib_baseline.py"), "chapters.json", str(ebook)],
        before=remove(ebook),
    )
    rows += pandoc_rows(setup, tools, args)
    return rows


def pandoc_rows(setup: Setup, tools: Tools, args: argparse.Namespace) -> list[Contender]:
    size, corpus, out = setup.size, setup.corpus, setup.out
    per_file = Row(
        "pandoc_per_file",
        "pandoc, one process per file",
        "process",
        "baseline",
        "`pandoc -f html -t gfm --wrap=none BODY -o MD` for each raw body, one after "
        "the other (a shell loop); peak: the largest process",
    )
    batched = Row(
        "pandoc_batched",
        "pandoc, one batched file",
        "process",
        "baseline",
        "every raw body in one HTML file (an <article> each), one pandoc process to gfm",
    )
    epub_text = Row(
        "pandoc_epub",
        "pandoc EPUB (text only)",
        "process",
        "baseline",
        "`pandoc FILES -o x.epub`, one standalone HTML per article, pictures removed",
    )
    epub_pics = Row(
        "pandoc_epub_pictures",
        "pandoc EPUB + picture files",
        "process",
        "baseline",
        "as text only, with every served picture as a local file (embedded as served: "
        "not converted, scaled or capped)",
    )
    rows = [per_file, batched, epub_text, epub_pics]
    if args.no_pandoc or tools.pandoc is None:
        reason = "skipped: --no-pandoc" if args.no_pandoc else tools.pandoc_reason
        for row in rows:
            row.skipped = reason
        return [Contender(row, [], corpus) for row in rows]
    pandoc = tools.pandoc
    sample = min(size, args.pandoc_sample)
    sample_list = corpus / "pandoc-sample.list"
    sample_list.write_text("".join(f"{Path(n).stem}\n" for n in setup.names[:sample]), "utf-8")
    md_out = out / "pandoc-md"
    loop = (
        f'mkdir -p "{md_out}" && while read -r f; do '
        f'"{pandoc}" -f html -t gfm --wrap=none "bodies/$f.html" -o "{md_out}/$f.md" '
        "|| exit 1; done < pandoc-sample.list"
    )
    if sample < size:
        per_file.scale = size / sample
        per_file.note = (
            f"extrapolated: {sample} of {size} files timed, times scaled by {per_file.scale:g}"
        )
    contenders = [
        Contender(per_file, ["sh", "-c", loop], corpus, before=remove(md_out)),
        Contender(
            batched,
            [
                pandoc,
                "-f",
                "html",
                "-t",
                "gfm",
                "--wrap=none",
                "all.html",
                "-o",
                str(out / "all.md"),
            ],
            corpus,
        ),
    ]
    meta = ["--metadata", "title=pandoc baseline", "--metadata", "lang=zh-Hans"]
    html_names = [f"{Path(n).stem}.html" for n in setup.names]
    for row, folder in ((epub_text, "epub-text"), (epub_pics, "epub-pics")):
        target = out / f"{row.key}.epub"
        if size > args.pandoc_epub_max:
            row.skipped = (
                f"skipped: pandoc EPUB only up to --pandoc-epub-max {args.pandoc_epub_max} articles"
            )
            contenders.append(Contender(row, [], corpus))
            continue
        contenders.append(
            Contender(
                row,
                [pandoc, *html_names, *meta, "-o", str(target)],
                corpus / folder,
                before=remove(target),
            )
        )
    return contenders


# --- running one size ----------------------------------------------------------------------


class StageChild:
    """bench/stage.py serve: times the in-process stages once per `round()`."""

    def __init__(self, corpus: Path, config: Path) -> None:
        command = [sys.executable, str(BENCH / "stage.py"), "serve", "dumps.list"]
        self.process = subprocess.Popen(
            [*command, "--config", str(config)],
            cwd=corpus,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("bench/stage.py serve stopped early")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def round(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("round\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


STAGES: tuple[tuple[str, str, str, str], ...] = (
    (
        "stage_floor",
        "floor (in process)",
        "floor",
        "read each dump, lxml parse the body, serialize",
    ),
    (
        "stage_read_clean",
        "read + clean (in process)",
        "ours",
        "convert.run.read_articles per dump: read, feedx reader, every cleaning step",
    ),
    (
        "stage_markdown_render",
        "Markdown render (in process)",
        "ours",
        "render_markdown of each cleaned article (no file writing)",
    ),
    (
        "stage_rss_writer",
        "RSS writer (in process)",
        "ours",
        "merge_items + write_rss of one feed of all the cleaned articles",
    ),
    (
        "stage_clean_render",
        "read + clean + render (sum)",
        "ours",
        "the two stages above added up, per round: Markdown without process start or writing",
    ),
    ("stage_markdownify", "markdownify (in process)", "baseline", "markdownify of each raw body"),
    ("stage_html2text", "html2text (in process)", "baseline", "html2text of each raw body"),
)


def stage_rows(rounds: list[dict[str, Any]], tools: Tools) -> list[Row]:
    rows = []
    for key, name, group, includes in STAGES:
        row = Row(key, name, "stage", group, includes)
        stage = key.removeprefix("stage_")
        for answer in rounds:
            if stage == "clean_render":
                read, render = answer["read_clean"], answer["markdown_render"]
                peak = max(read["peak_mb"], render["peak_mb"])
                row.samples.append(Sample(read["s"] + render["s"], peak))
            elif stage in answer:
                row.samples.append(Sample(answer[stage]["s"], answer[stage]["peak_mb"]))
        if not rounds:
            row.skipped = "skipped: not in --rows"
        elif not row.samples:
            row.skipped = tools.html2text_reason or "skipped"
        rows.append(row)
    return rows


def run_size(size: int, work: Path, tools: Tools, args: argparse.Namespace) -> dict[str, Any]:
    """Write the corpus of `size` articles, then every row's runs, round-robin."""
    corpus, out, cache = work / f"corpus-{size}", work / f"out-{size}", work / f"cache-{size}"
    for folder in (corpus, out):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    config = work / f"config-{size}.yaml"
    write_config(config, cache, out / "config-archive.sqlite")
    with PictureServer(work / "served", args.picture_width) as server:
        console.rule(f"N = {size}")
        setup = Setup(size, work, corpus, [], config, cache, out, server, {})
        contenders = prepare_size(setup, tools, args)
        stages = any(selected(key, args.rows) for key, *_rest in STAGES)
        rounds = run_rounds(setup, contenders, args.runs, stages=stages)
        check_outputs(setup, setup.notes)
        if args.profile and size == profile_size(args):
            setup.notes["profile"] = profile(setup, tools)
    rows = [c.row for c in contenders] + stage_rows(rounds, tools)
    return {"size": size, "rows": rows, "notes": setup.notes}


def prepare_size(setup: Setup, tools: Tools, args: argparse.Namespace) -> list[Contender]:
    """The corpus, the baselines' inputs, the pictures; one untimed EPUB build to prime."""
    size, corpus, notes, server = setup.size, setup.corpus, setup.notes, setup.server
    started = time.perf_counter()
    setup.names = write_corpus(corpus, size, server.base_url)
    prepare_baseline_inputs(corpus, setup.names)
    sizes = [(corpus / n).stat().st_size for n in setup.names]
    notes["dump_kb_mean"] = round(statistics.mean(sizes) / 1000, 2)
    pictures = [p for n in range(size) for p in picture_names(n)]
    notes["pictures_in_articles"] = len(pictures)
    notes["corpus_s"] = round(time.perf_counter() - started, 2)
    contenders = process_rows(setup, tools, args)
    for contender in contenders:
        if not selected(contender.row.key, args.rows) and not contender.row.skipped:
            contender.row.skipped = "skipped: not in --rows"
    pictures_row = next(c for c in contenders if c.row.key == "pandoc_epub_pictures")
    if pictures_row.command and not pictures_row.row.skipped:  # every picture as a file
        started = time.perf_counter()
        server.draw_all(pictures, os.cpu_count() or 1)
        link = corpus / "epub-pics" / "pics"
        if not link.exists():
            link.symlink_to(server.folder, target_is_directory=True)
        notes["drawing_pictures_s"] = round(time.perf_counter() - started, 2)
    prime = next(c for c in contenders if c.row.key == "epub_cold")
    if not any(c.row.key.startswith("epub") and not c.row.skipped for c in contenders):
        return contenders
    console.print(f"{size} dumps in {corpus}; priming the picture server (untimed) ...")
    prime.before()
    primed, tail = measure(prime.command, prime.cwd)
    if primed is None:
        raise RuntimeError(f"the priming EPUB build failed: {tail}")
    notes["priming_epub_build_s"] = round(primed.wall_s, 2)
    notes["served_picture_mb"] = round(
        sum(p.stat().st_size for p in server.folder.glob("*-*.*")) / MB, 1
    )
    return contenders


def selected(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def run_rounds(
    setup: Setup, contenders: list[Contender], runs: int, *, stages: bool
) -> list[dict[str, Any]]:
    """`runs` rounds: each process row once, then (with `stages`) each in-process stage once."""
    server, notes = setup.server, setup.notes
    child = StageChild(setup.corpus, setup.config) if stages else None
    rounds: list[dict[str, Any]] = []
    first_book: bytes | None = None
    notes["picture_requests_during_warm_runs"] = 0
    try:
        for number in range(runs):
            for contender in contenders:
                row = contender.row
                if row.skipped or not contender.command:
                    continue
                contender.before()
                requests = server.requests
                sample, tail = measure(contender.command, contender.cwd)
                if sample is None:
                    row.skipped = f"failed: {tail}"
                    console.print(f"  [red]{row.name} failed[/]: {tail}", markup=False)
                    continue
                sample.wall_s *= row.scale
                row.samples.append(sample)
                if row.key == "epub_warm":
                    notes["picture_requests_during_warm_runs"] += server.requests - requests
                    book = (setup.out / "book.epub").read_bytes()
                    first_book = first_book or book
                    notes["epub_warm_output_identical_across_runs"] = book == first_book
                console.print(
                    f"  run {number + 1}/{runs} {row.name}: {sample.wall_s:.2f} s, "
                    f"{sample.peak_mb:.0f} MB" + (" (extrapolated)" if row.scale != 1 else "")
                )
            if child is not None:
                rounds.append(child.round())
                stage_s = ", ".join(f"{k} {v['s']:.2f} s" for k, v in rounds[-1].items())
                console.print(f"  run {number + 1}/{runs} stages: {stage_s}")
    finally:
        if child is not None:
            child.close()
    return rounds


def check_outputs(setup: Setup, notes: dict[str, Any]) -> None:
    """What the outputs hold, so that a fast row is not a broken one."""
    out = setup.out
    for key in ("md-jobs1", "md-default"):
        folder = out / key
        if folder.exists():
            notes[f"{key}_files"] = len(list(folder.glob("*.md")))
    one, many = out / "md-jobs1", out / "md-default"
    if one.exists() and many.exists():
        notes["markdown_jobs1_equals_default"] = all(
            (many / p.name).exists() and (many / p.name).read_bytes() == p.read_bytes()
            for p in one.glob("*.md")
        )
    feed = out / "feed.xml"
    if feed.exists():
        notes["feed_items"] = feed.read_text("utf-8").count("<item>")
        notes["feed_mb"] = round(feed.stat().st_size / MB, 2)
    book = out / "book.epub"
    if book.exists():
        chapters, pictures = book_contents(book)
        notes["epub_chapters"] = chapters
        notes["epub_pictures_including_cover"] = pictures
        notes["epub_mb"] = round(book.stat().st_size / MB, 1)
    cache = setup.cache / "pictures"
    if cache.exists():
        notes["picture_cache_mb"] = round(
            sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / MB, 1
        )
    for row in ("pandoc_epub", "pandoc_epub_pictures"):
        path = out / f"{row}.epub"
        if path.exists():
            notes[f"{row}_mb"] = round(path.stat().st_size / MB, 1)


# --- profiles ------------------------------------------------------------------------------


def profile_size(args: argparse.Namespace) -> int:
    return 1000 if 1000 in args.sizes else max(args.sizes)


def profile(setup: Setup, tools: Tools) -> dict[str, Any]:
    """cProfile of `markdown --jobs 1` (one fresh process) and of read+clean in process."""
    console.print("profiling `markdown --jobs 1` and read+clean ...")
    md_prof, rc_prof = setup.work / "markdown.prof", setup.work / "read_clean.prof"
    target = setup.out / "md-profile"
    shutil.rmtree(target, ignore_errors=True)
    jobs = ["--jobs", "1"] if tools.jobs_option else []
    command = [sys.executable, "-m", "cProfile", "-o", str(md_prof), "-m", "convert"]
    command += ["-q", "-c", str(setup.config), "markdown", *setup.names, "-o", str(target), *jobs]
    subprocess.run(command, cwd=setup.corpus, check=True, capture_output=True)
    settings = settings_of(load_config(setup.config))
    paths = [str(setup.corpus / n) for n in setup.names]
    for path in paths[:3]:
        read_articles(path, settings)  # warm-up, as the stage child does
    profiler = cProfile.Profile()
    profiler.enable()
    for path in paths:
        read_articles(path, settings)
    profiler.disable()
    profiler.dump_stats(str(rc_prof))
    return {
        "markdown_jobs1": summarize_profile(md_prof, setup.size),
        "read_clean": summarize_profile(rc_prof, setup.size),
    }


# Built-in functions (file "~") by what they belong to; the first match wins.
_BUILTINS = (
    (("marshal.loads", "_imp.", "builtins.exec", "__build_class__", "posix."), "imports and I/O"),
    (("builtins.compile",), "compile() (regex and code)"),
    (("re.Pattern", "re.Match", "_sre"), "re (C matching)"),
    (("_ssl.",), "ssl (certificates)"),
    (("lxml", "etree"), "lxml (C)"),
    (("nh3",), "nh3 (Rust)"),
    (("of 'str' objects",), "str methods"),
    (("sqlite3",), "sqlite3"),
    (("zlib", "_io.", "'_io"), "zlib and I/O"),
)


def _package(file: str, function: str) -> str:
    """Which package a profiled function belongs to, for the time-by-package summary."""
    if file == "~":
        return next(
            (name for needles, name in _BUILTINS if any(n in function for n in needles)),
            "builtins (other)",
        )
    if file.startswith("<frozen") or "/importlib/" in file:
        return "imports and I/O"
    if "/convert/" in file:
        inner = file.split("/convert/", 1)[1]
        return "convert." + inner.split("/", 1)[0].removesuffix(".py")
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/re/" in file or file.endswith("/sre_compile.py"):
        return "re (compiling patterns)"
    return "python stdlib" if "/python3" in file else Path(file).name


def summarize_profile(path: Path, articles: int) -> dict[str, Any]:
    """Total, time by package (own time), top functions by own and by cumulative time."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    packages: dict[str, float] = {}
    for (file, _line, function), entry in raw.items():
        name = _package(file, function)
        packages[name] = packages.get(name, 0.0) + entry[2]

    def label(key: tuple[str, int, str]) -> str:
        file, line, function = key
        where = "/".join(Path(file).parts[-2:]) if file != "~" else ""
        return f"{where}:{line}({function})" if where else function

    own = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:25]
    cumulative = sorted(
        (
            item
            for item in raw.items()
            if item[0][2] not in ("<module>", "<built-in method builtins.exec>")
            and not item[0][0].startswith("<frozen")
        ),
        key=lambda item: item[1][3],
        reverse=True,
    )[:30]
    return {
        "articles": articles,
        "total_s": round(total, 3),
        "ms_per_article": round(total / articles * 1000, 3),
        "by_package_pct": {
            k: round(v / total * 100, 1)
            for k, v in sorted(packages.items(), key=lambda kv: -kv[1])
            if v / total >= 0.005
        },
        "top_own_time": [
            {
                "function": label(k),
                "calls": e[1],
                "own_s": round(e[2], 3),
                "own_pct": round(e[2] / total * 100, 1),
            }
            for k, e in own
        ],
        "top_cumulative": [
            {
                "function": label(k),
                "calls": e[1],
                "cum_s": round(e[3], 3),
                "cum_pct": round(e[3] / total * 100, 1),
            }
            for k, e in cumulative
        ],
        "file": str(path),
    }


# --- targets and linearity -----------------------------------------------------------------


def _row(result: dict[str, Any], key: str) -> Row | None:
    row = next((r for r in result["rows"] if r.key == key), None)
    return row if row is not None and row.ok else None


_TESTS: dict[str, Callable[[float, float], bool]] = {
    "≤": operator.le,
    "<": operator.lt,
    "≥": operator.ge,
}


def evaluate_targets(results: list[dict[str, Any]], nproc: int) -> list[dict[str, Any]]:
    """The issue's targets, each met, missed or not measured, with the numbers."""
    targets: list[dict[str, Any]] = []

    def add(
        name: str, size: int, value: float | None, test: str, bound: float, unit: str = ""
    ) -> None:
        """One target: `value` `test` (≤, < or ≥) `bound`, or not measured."""
        met = None if value is None else _TESTS[test](value, bound)
        targets.append(
            {
                "target": name,
                "size": size,
                "measured": None if value is None else round(value, 3),
                "limit": f"{test} {bound:g}{unit}",
                "status": "not measured" if met is None else "met" if met else "missed",
            }
        )

    def ratio_of(row: Row | None, base: Row | None) -> float | None:
        return ratio(row, base) if row and base else None

    for result in results:
        size = result["size"]
        one, many = _row(result, "markdown_jobs1"), _row(result, "markdown_default")
        mdf = _row(result, "markdownify")
        per_file, batched = _row(result, "pandoc_per_file"), _row(result, "pandoc_batched")
        add("markdown --jobs 1 time ÷ markdownify alone", size, ratio_of(one, mdf), "≤", 1.3)
        add(
            f"markdown default jobs ({nproc} cores) throughput ÷ --jobs 1",
            size,
            ratio_of(one, many),
            "≥",
            1.7,
        )
        speed_up = "markdown default jobs speed-up over pandoc"
        add(f"{speed_up} per file", size, ratio_of(per_file, many), "≥", 8)
        add(f"{speed_up} batched", size, ratio_of(batched, many), "≥", 2)
        if size == 1000:
            feed, warm = _row(result, "feed_rss"), _row(result, "epub_warm")
            add(
                "RSS feed of 1,000 items, cleaning included (s)",
                size,
                feed.median_s if feed else None,
                "<",
                1.5,
                " s",
            )
            add(
                "EPUB of 1,000, warm cache (s)", size, warm.median_s if warm else None, "<", 3, " s"
            )
            add(
                "EPUB of 1,000, warm cache, peak MB",
                size,
                warm.peak_mb if warm else None,
                "<",
                300,
                " MB",
            )
    return targets


def linearity(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Time at the larger size ÷ time at the smaller one, for each pair of sizes, each row."""
    out = []
    ordered = sorted(results, key=lambda r: r["size"])
    for small, large in pairwise(ordered):
        factor = large["size"] / small["size"]
        for row in large["rows"]:
            before = _row(small, row.key)
            if not row.ok or before is None:
                continue
            ratio = row.median_s / before.median_s
            entry = {
                "key": row.key,
                "name": row.name,
                "sizes": [small["size"], large["size"]],
                "time_ratio": round(ratio, 2),
                "size_ratio": factor,
            }
            if small["size"] == 1000 and large["size"] == 10000:
                entry["target"] = "≤ 11"
                entry["status"] = "met" if ratio <= 11 else "missed"
            if row.scale != 1 or before.scale != 1:
                entry["note"] = "extrapolated times"
            out.append(entry)
    return out


# --- output --------------------------------------------------------------------------------


PROCESS_BASELINES = (
    ("markdownify", "markdownify"),
    ("html2text", "html2text"),
    ("ebooklib", "ebooklib"),
    ("pandoc_per_file", "pandoc/file"),
    ("pandoc_batched", "pandoc batch"),
    ("pandoc_epub", "pandoc EPUB"),
    ("pandoc_epub_pictures", "pandoc EPUB+pics"),
)
STAGE_BASELINES = (("stage_markdownify", "markdownify"), ("stage_html2text", "html2text"))


def print_size(result: dict[str, Any], runs: int) -> None:
    size, rows = result["size"], result["rows"]
    floors = {r.kind: r for r in rows if r.group == "floor"}
    table = Table(title=f"N = {size}: median of {runs} runs")
    for column in ("", "median s", "min–max s", "articles/s", "peak MB", "× floor"):
        table.add_column(column, justify="left" if not column else "right")
    for row in rows:
        if not row.ok:
            table.add_row(row.name, "–", "–", "–", "–", "–")
            continue
        floor = floors.get(row.kind)
        times = [s.wall_s for s in row.samples]
        mark = " *" if row.scale != 1 else ""
        table.add_row(
            row.name + mark,
            f"{row.median_s:.3f}",
            f"{min(times):.2f}–{max(times):.2f}",
            f"{size / row.median_s:,.0f}",
            f"{row.peak_mb:.0f}",
            f"{ratio(row, floor):.2f}" if floor and floor.ok else "–",
        )
    console.print(table)
    for kind, baselines in (("process", PROCESS_BASELINES), ("stage", STAGE_BASELINES)):
        ours = [r for r in rows if r.kind == kind and r.group == "ours" and r.ok]
        present = [(k, n) for k, n in baselines if _row(result, k)]
        if not ours or not present:
            continue
        title = f"N = {size}, {kind} rows: our time ÷ the baseline's (below 1: we are faster)"
        ratios = Table(title=title)
        ratios.add_column("")
        for _key, name in present:
            ratios.add_column(name, justify="right")
        for row in ours:
            cells = []
            for key, _name in present:
                base = _row(result, key)
                assert base is not None
                cells.append(f"{ratio(row, base):.2f}")
            ratios.add_row(row.name, *cells)
        console.print(ratios)
    for row in rows:
        extra = f" [{row.note}]" if row.note else ""
        console.print(f"  [bold]{row.name}[/]: {row.skipped or row.includes}{extra}")
    console.print("  * extrapolated from a sample of the files")
    for key, value in result["notes"].items():
        if key != "profile":
            console.print(f"  {key}: {value}")


def print_targets(targets: list[dict[str, Any]], lines: list[dict[str, Any]]) -> None:
    table = Table(title="targets (2-core machine)")
    for column in ("target", "N", "measured", "limit", "status"):
        table.add_column(column, justify="left" if column in ("target", "status") else "right")
    for t in targets:
        colour = {"met": "green", "missed": "red"}.get(t["status"], "yellow")
        measured = "–" if t["measured"] is None else f"{t['measured']:.2f}"
        table.add_row(
            t["target"], str(t["size"]), measured, t["limit"], f"[{colour}]{t['status']}[/]"
        )
    console.print(table)
    if not lines:
        return
    table = Table(title="linearity: time at the larger N ÷ time at the smaller N")
    for column in ("row", "sizes", "time ratio", "size ratio", "status"):
        table.add_column(column, justify="left" if column in ("row", "status") else "right")
    for line in lines:
        status = line.get("status", "")
        colour = {"met": "green", "missed": "red"}.get(status, "white")
        table.add_row(
            line["name"] + (" *" if "note" in line else ""),
            "→".join(f"{s:,}" for s in line["sizes"]),
            f"{line['time_ratio']:.2f}",
            f"{line['size_ratio']:g}",
            f"[{colour}]{status or '(info)'}[/]",
        )
    console.print(table)


def print_profile(summary: dict[str, Any]) -> None:
    for name, part in summary.items():
        console.print(
            f"[bold]cProfile {name}[/]: {part['total_s']:.2f} s own time in total, "
            f"{part['ms_per_article']:.2f} ms per article ({part['file']})"
        )
        shares = ", ".join(f"{k} {v}%" for k, v in part["by_package_pct"].items())
        console.print(f"  own time by package: {shares}", markup=False)
        console.print("  top functions by own time:")
        for entry in part["top_own_time"][:15]:
            console.print(
                f"    {entry['own_pct']:5.1f}% {entry['own_s']:7.3f} s {entry['calls']:>8}  "
                f"{entry['function']}",
                markup=False,
            )
        console.print("  top functions by cumulative time:")
        for entry in part["top_cumulative"][:20]:
            console.print(
                f"    {entry['cum_pct']:5.1f}% {entry['cum_s']:7.3f} s {entry['calls']:>8}  "
                f"{entry['function']}",
                markup=False,
            )


# --- main ----------------------------------------------------------------------------------


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="feedx-bench-") as folder:
        yield Path(folder)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be at least 1")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[100, 1000],
        help="article counts, comma-separated (e.g. 100,1000,10000)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row (median)")
    parser.add_argument("--no-pandoc", action="store_true", help="skip the pandoc rows")
    parser.add_argument(
        "--pandoc-sample",
        type=int,
        default=1000,
        metavar="FILES",
        help="pandoc per file: time at most this many files, scale up",
    )
    parser.add_argument(
        "--pandoc-epub-max",
        type=int,
        default=1000,
        metavar="N",
        help="pandoc EPUB rows only up to this many articles",
    )
    parser.add_argument(
        "--picture-width",
        type=int,
        default=800,
        help="served JPEG/WebP width in pixels (PNGs are 3/5 of it)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip-install html2text when missing (skip its rows)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile `markdown --jobs 1` and read+clean at N=1000 (or the largest size)",
    )
    parser.add_argument(
        "--rows",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=["*"],
        metavar="PATTERNS",
        help="only the rows whose key matches one of these globs, e.g. 'markdown_*,stage_*' "
        "(keys: floor, markdown_jobs1, markdown_default, feed_rss, ingest, epub_cold, "
        "epub_warm, markdownify, html2text, ebooklib, pandoc_*, stage_*)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="RESULTS",
        help="measure nothing: print the tables of a results file again (and rewrite --json "
        "with the ratios, targets and linearity recomputed)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the work files here (default: temp)")
    parser.add_argument(
        "--json", type=Path, default=BENCH / "results.json", help="results file to write"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.pandoc_sample < 1:
        parser.error("--runs and --pandoc-sample must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        return report(args.report, args.json)
    started = time.perf_counter()
    load_before = os.getloadavg()
    cli = cli_entry()
    compile_our_package()
    html2text_ok, html2text_reason = ensure_html2text(not args.no_install)
    pandoc, pandoc_reason = (None, "") if args.no_pandoc else ensure_pandoc()
    tools = Tools(
        cli=cli,
        jobs_option=has_jobs_option(cli),
        pandoc=pandoc,
        pandoc_reason=pandoc_reason,
        html2text=html2text_ok,
        html2text_reason=html2text_reason,
    )
    if not tools.jobs_option:
        console.print("note: `feedx-convert markdown` has no --jobs option yet")
    startup = [measure([*cli, "--version"], ROOT)[0] for _ in range(3)]
    results = []
    with workspace(args.workdir) as work:
        for size in args.sizes:
            results.append(run_size(size, work, tools, args))
    machine = machine_info(pandoc)
    machine["loadavg_before"] = [round(x, 2) for x in load_before]
    machine["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    machine["html2text"] = _version("html2text") if html2text_ok else ""
    machine["markdownify"] = _version("markdownify")
    machine["lxml"] = _version("lxml")
    total = time.perf_counter() - started
    document = {
        "benchmark": "feedx-convert throughput: floor, stages, writers and baselines",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "arguments": {
            "sizes": args.sizes,
            "runs": args.runs,
            "picture_width": args.picture_width,
            "pandoc_sample": args.pandoc_sample,
            "pandoc_epub_max": args.pandoc_epub_max,
            "no_pandoc": args.no_pandoc,
            "rows": args.rows,
        },
        "machine": machine,
        "cli": {
            "jobs_option": tools.jobs_option,
            "startup_s": round(statistics.median(s.wall_s for s in startup if s), 3),
        },
        "total_s": round(total, 1),
    }
    finish(document, results, args.json)
    return 0


def finish(document: dict[str, Any], results: list[dict[str, Any]], path: Path) -> None:
    """Add the rows, targets and linearity to `document`, write it, print the tables."""
    machine = document["machine"]
    nproc = int(machine.get("usable_cpus") or os.cpu_count() or 1)
    document["sizes"] = [
        {
            "size": r["size"],
            "notes": dict(r["notes"]),
            "rows": [row_json(row, r) for row in r["rows"]],
        }
        for r in results
    ]
    document["targets"] = targets = evaluate_targets(results, nproc)
    document["linearity"] = lines = linearity(results)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", "utf-8")
    console.print()
    for result in results:
        print_size(result, document["arguments"]["runs"])
        console.print()
    print_targets(targets, lines)
    console.print(
        f"CLI start-up (`feedx-convert --version`): {document['cli']['startup_s']:.2f} s; "
        f"cores: {nproc}; load average before/after: {machine['loadavg_before']} / "
        f"{machine['loadavg_after']}; total {document['total_s'] / 60:.1f} min"
    )
    for result in results:
        if "profile" in result["notes"]:
            print_profile(result["notes"]["profile"])
    console.print(f"results: {path}")


def row_json(row: Row, result: dict[str, Any]) -> dict[str, Any]:
    """A row's JSON: its runs and medians, its ratio to the floor and to each baseline."""
    floor = next((f for f in result["rows"] if f.group == "floor" and f.kind == row.kind), None)
    out = row.as_json(result["size"], floor)
    if row.ok and row.group == "ours":
        bases = PROCESS_BASELINES if row.kind == "process" else STAGE_BASELINES
        out["ratio_to_baselines"] = {
            key: round(ratio(row, base), 3)
            for key, _name in bases
            if (base := _row(result, key)) is not None
        }
    return out


def report(source: Path, path: Path) -> int:
    """`--report`: the tables, targets and ratios again from a results file's runs."""
    document = json.loads(source.read_text("utf-8"))
    results = []
    for size in document["sizes"]:
        rows = []
        for data in size["rows"]:
            row = Row(data["key"], data["name"], data["kind"], data["group"], data["includes"])
            row.note = data.get("note", "")
            row.skipped = data.get("skipped", "")
            row.samples = [Sample(run["wall_s"], run["peak_mb"]) for run in data.get("runs", [])]
            if "extrapolated_from_sample_of" in data:
                row.scale = size["size"] / data["extrapolated_from_sample_of"]
            rows.append(row)
        results.append({"size": size["size"], "rows": rows, "notes": size["notes"]})
    finish(document, results, path)
    return 0


def _version(module: str) -> str:
    with contextlib.suppress(PackageNotFoundError):
        return version(module)
    return ""


if __name__ == "__main__":
    sys.exit(main())
