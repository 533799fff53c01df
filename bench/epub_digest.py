"""Benchmark: the 500-article EPUB digest with a warm picture cache, beside ebooklib and pandoc.

    .venv/bin/python bench/epub_digest.py [--articles 500] [--runs 5] [--picture-width 800]

1. Writes N synthetic feedx dumps (distinct Chinese texts of about 10 KB, 3 or 4
   pictures each: JPEG, WebP and PNG with alpha; a few answer 404). The pictures
   are drawn with Pillow and served by a local HTTP server on 127.0.0.1 only.
   The dumps are ingested into a SQLite archive in a temporary folder.
2. Builds the week once with `feedx-convert epub` (cold: fills the picture cache),
   then `--runs` more times with the cache warm, each in a fresh process: wall
   time from the parent, peak memory from that process's own rusage (os.wait4).
3. Baseline A: the same articles' cleaned HTML, pictures removed, one EpubHtml
   chapter each through raw ebooklib (bench/ebooklib_baseline.py).
4. Baseline B: the same HTML as one standalone file per article through
   `pandoc FILES -o x.epub` (installed with apt-get when missing and possible),
   text only; and once more with the served picture files beside the HTML.
5. Prints a table and writes bench/results-epub.json.

Nothing here is reached by the tests; nothing leaves 127.0.0.1 except apt-get.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import io
import json
import logging
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ebooklib
import PIL
from PIL import Image, ImageDraw, ImageOps
from pytest_httpserver import HTTPServer
from rich.console import Console
from rich.table import Table
from werkzeug import Request, Response

import convert
from convert.config import Config, load_config
from convert.fragments import inner_html, parse_fragment
from convert.model import Article
from convert.period import iso_week
from convert.plan import command_plan, settings_of
from convert.run import run_plan

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WEEK = "2024-W21"
NOW = datetime(2024, 5, 27, tzinfo=UTC)
MB = 1_000_000
KINDS = ("jpg", "webp", "png")  # png: with an alpha channel (becomes JPEG in the book)
MISSING_EVERY = 37  # one picture slot in 37 answers 404
SHANGHAI = ZoneInfo("Asia/Shanghai")  # feedx stamps pudate in China time
HOSTS = ("cn.nytimes.com", "www.bbc.com", "cn.wsj.com", "www.zaobao.com.sg")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


# --- the synthetic week -------------------------------------------------------------------

_CONNECTORS = (
    "与此同时",
    "不过",
    "据报道",
    "今年以来",
    "在过去几个月里",
    "按照官方的说法",
    "从长远看",
    "短期内",
    "在许多城市",
    "另一方面",
    "一位不愿具名的官员说",
    "根据最新公布的数据",
)
_PLACES = (
    "长兴县",
    "深圳",
    "哈尔滨",
    "成都",
    "义乌",
    "苏州",
    "武汉",
    "厦门",
    "昆明",
    "兰州",
    "宁波",
    "东莞",
    "青岛",
    "贵阳",
    "南宁",
    "呼和浩特",
)
_PEOPLE = (
    "地方官员",
    "工厂老板",
    "经济学家",
    "外交人士",
    "研究人员",
    "投资者",
    "农民",
    "大学生",
    "医生",
    "工程师",
    "出口商",
    "消费者",
    "分析人士",
    "企业家",
    "居民",
    "银行家",
    "律师",
    "教师",
)
_VERBS = ("表示", "认为", "指出", "担心", "承认", "预计", "强调", "透露", "警告", "希望")
_TOPICS = (
    "产能过剩的压力正在加大",
    "出口订单明显减少",
    "房地产市场仍在调整",
    "新能源汽车的竞争愈发激烈",
    "地方财政面临不小的困难",
    "年轻人的就业形势不容乐观",
    "供应链正在向东南亚转移",
    "消费者信心尚未完全恢复",
    "科技企业加大了研发投入",
    "农村人口持续流向城市",
    "外资企业仍在观望政策走向",
    "物流成本有所下降",
    "利率调整影响了贷款需求",
    "电力供应在夏季可能偏紧",
    "旅游业出现了复苏迹象",
    "中小企业融资依然困难",
    "数据安全的规定更加严格",
    "医疗改革推进得比预期缓慢",
    "教育支出在家庭预算中的占比上升",
    "港口吞吐量创下新高",
    "粮食价格保持基本稳定",
    "城市更新项目吸引了大量资金",
)
_NAMES = ("王丽", "陈建国", "赵明远", "李静", "张伟", "刘洋", "孙悦", "周强", "吴敏", "郑凯")


def _sentence(rng: random.Random, number: int) -> str:
    place, people = rng.choice(_PLACES), rng.choice(_PEOPLE)
    topic, verb = rng.choice(_TOPICS), rng.choice(_VERBS)
    form = rng.randrange(4)
    if form == 0:
        return f"{rng.choice(_CONNECTORS)}，{place}的{people}{verb}，{topic}。"
    if form == 1:
        share = rng.randrange(3, 97)
        return f"在{place}，约有{share}%的{people}{verb}，{topic}，而这一比例在去年还要低得多。"
    if form == 2:
        name = rng.choice(_NAMES)
        age = rng.randrange(22, 70)
        return f"“{topic}，”{age}岁的{name}说。“我们只能一步一步来。”"
    year = rng.randrange(2015, 2025)
    return f"自{year}年以来，{place}第{number}号调查中的{people}一直{verb}，{topic}。"


def article_paragraphs(number: int, target_bytes: int = 10_000) -> list[str]:
    """About `target_bytes` of distinct Chinese text (UTF-8), as paragraphs."""
    rng = random.Random(f"text-{number}")
    paragraphs: list[str] = []
    size = 0
    while size < target_bytes:
        text = "".join(_sentence(rng, number) for _ in range(rng.randrange(5, 9)))
        paragraphs.append(text)
        size += len(text.encode("utf-8"))
    return paragraphs


def picture_slots(number: int) -> list[tuple[str, str, bool]]:
    """(file name, kind, missing) of article `number`'s pictures: the lead one first."""
    slots = []
    for index in range(3 + number % 2):
        kind = KINDS[(number + index) % len(KINDS)]
        missing = (number * 4 + index) % MISSING_EVERY == 5
        slots.append((f"{number:04d}-{index}.{kind}", kind, missing))
    return slots


def draw_picture(name: str, kind: str, width: int) -> bytes:
    """A photo-like picture (soft shapes, gradient, grain), different for every name."""
    rng = random.Random(name)
    if kind == "png":  # graphics are smaller than photos
        width = width * 3 // 5
    height = width * 2 // 3
    small = (max(8, width // 8), max(8, height // 8))
    colours = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(2)]
    gradient = Image.linear_gradient("L").resize(small).rotate(rng.choice((0, 90, 180, 270)))
    image = ImageOps.colorize(gradient, colours[0], colours[1])
    draw = ImageDraw.Draw(image)
    for _ in range(10):
        x, y, r = rng.randrange(small[0]), rng.randrange(small[1]), rng.randrange(2, small[0] // 4)
        fill = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r // 2, x + r, y + r // 2), fill=fill)
    grain = Image.effect_noise(small, 40).convert("RGB")
    image = Image.blend(image, grain, 0.25).resize((width, height), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    if kind == "png":
        alpha = Image.new("L", (width, height), 0)
        ImageDraw.Draw(alpha).ellipse((0, 0, width - 1, height - 1), fill=255)
        image = image.convert("RGBA")
        image.putalpha(alpha)
        image.save(out, "PNG", compress_level=1)
    elif kind == "webp":
        image.save(out, "WEBP", quality=80, method=0)
    else:
        image.save(out, "JPEG", quality=85)
    return out.getvalue()


def feedx_dump(number: int, base_url: str) -> str:
    """One feedx article dump: lead figure, about 10 KB of text, 2 or 3 inline pictures."""
    rng = random.Random(f"dump-{number}")
    day = 20 + number % 7
    published = datetime(2024, 5, day, number % 24, number % 60, tzinfo=SHANGHAI)
    captured_ms = int((published + timedelta(minutes=5 + number % 50)).timestamp() * 1000)
    host = HOSTS[number % len(HOSTS)]
    slots = picture_slots(number)

    def url(slot: tuple[str, str, bool]) -> str:
        name, _kind, missing = slot
        return f"{base_url}/{'missing' if missing else 'pics'}/{name}"

    paragraphs = [f"<p>{p}</p>" for p in article_paragraphs(number)]
    inline = slots[1:]
    for position, slot in enumerate(inline, 1):
        at = position * len(paragraphs) // (len(inline) + 1)
        caption = f"第{number}篇的第{position}张图片。{rng.choice(_PLACES)}街头。"
        paragraphs[at] += (
            f'<p><img src="{url(slot)}"><small style="color: #999;">{caption}</small></p>'
        )
    lead = slots[0]
    title = f"合成文章第{number}篇：{rng.choice(_PLACES)}{rng.choice(_TOPICS)}"
    return (
        f"<!--{captured_ms}-->\n[{title}](https://{host}/a/{number}/)\n"
        f"------\n\n<address>记者{rng.choice(_NAMES)}</address>"
        f'<time pudate="{published:%Y-%m-%d %H:%M:%S}">'
        f"2024年5月{day}日</time>"
        f'<figure><img src="{url(lead)}"><figcaption>图{number}：'
        f"{rng.choice(_PLACES)}的{rng.choice(_PEOPLE)}。<cite>摄影{rng.choice(_NAMES)}</cite>"
        f"</figcaption></figure><section>{''.join(paragraphs)}</section>"
        f"<footer><p>{rng.choice(_NAMES)}对本文有研究贡献。</p></footer>"
        '<hr><div>获取更多RSS：<br><a href="https://feedx.net">https://feedx.net</a></div>'
    )


class PictureServer:
    """Draws /pics/<name> on first request and keeps a copy; /missing/... answers 404."""

    def __init__(self, folder: Path, width: int) -> None:
        self.folder = folder
        self.width = width
        self.requests = 0
        self._lock = threading.Lock()
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.server.expect_request(re.compile(r"/.*")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.requests += 1
        match = re.fullmatch(r"/pics/(\d{4}-\d\.(jpg|webp|png))", request.path)
        if match is None:
            return Response("gone", status=404)
        path = self.folder / match.group(1)
        if not path.exists():
            path.write_bytes(draw_picture(match.group(1), match.group(2), self.width))
        return Response(path.read_bytes(), content_type="application/octet-stream")

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def __enter__(self) -> PictureServer:
        self.server.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.clear_log()
        self.server.stop()


def bench_config(work: Path) -> Path:
    """The shipped config, with pictures from 127.0.0.1 only and the cache in `work`."""
    path = work / "bench-config.yaml"
    path.write_text(
        "download:\n"
        '  allow_networks: ["127.0.0.1/32"]\n'
        "  retries: 0\n"
        "  timeout: 5\n"
        f"  cache_dir: {json.dumps(str(work / 'cache'))}\n"
        f"archive: {json.dumps(str(work / 'archive.sqlite'))}\n",
        "utf-8",
    )
    return path


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Sample:
    """One run in a fresh process."""

    wall_s: float
    peak_mb: float


@dataclass
class Row:
    """One contender: its runs, its book and what it does and does not do."""

    name: str
    includes: str
    samples: list[Sample] = field(default_factory=list)
    epub_bytes: int = 0
    chapters: int = 0
    pictures: int = 0
    skipped: str = ""

    @property
    def times(self) -> list[float]:
        return [s.wall_s for s in self.samples]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times)

    @property
    def peak_mb(self) -> float:
        return max(s.peak_mb for s in self.samples)

    def as_json(self, reference: Row | None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "includes": self.includes}
        if self.skipped:
            return {**out, "skipped": self.skipped}
        out |= {
            "runs": [
                {"wall_s": round(s.wall_s, 4), "peak_mb": round(s.peak_mb, 1)} for s in self.samples
            ],
            "median_s": round(self.median_s, 4),
            "min_s": round(min(self.times), 4),
            "max_s": round(max(self.times), 4),
            "peak_mb": round(self.peak_mb, 1),
            "epub_bytes": self.epub_bytes,
            "epub_mb": round(self.epub_bytes / MB, 2),
            "chapters": self.chapters,
            "pictures": self.pictures,
        }
        if reference is not None and reference.samples:
            out["ratio_to_feedx"] = {
                "time": round(self.median_s / reference.median_s, 3),
                "peak_memory": round(self.peak_mb / reference.peak_mb, 3),
                "epub_size": round(self.epub_bytes / reference.epub_bytes, 3),
            }
        return out


def time_tool() -> str | None:
    """GNU time, installed with apt-get when missing and possible."""
    found = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if found is None and apt_install("time"):
        found = shutil.which("time")
    return found


def measure(command: Sequence[str], cwd: Path | None = None) -> Sample:
    """Wall time of `command` in a fresh process, and that process's own peak RSS.

    The peak comes from GNU time (`%M`, its child's ru_maxrss): os.wait4 from this
    process would count this (large) process's memory, which Linux carries into the
    child's ru_maxrss across the vfork and exec of subprocess.
    """
    timer = time_tool()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "time.txt"
        wrapped = [timer, "-f", "%M", "-o", str(report), *command] if timer else list(command)
        with (Path(folder) / "output.txt").open("w+b") as output:
            start = time.perf_counter()
            done = subprocess.run(wrapped, cwd=cwd, stdout=output, stderr=output, check=False)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                output.seek(0)
                tail = output.read().decode("utf-8", "replace")[-3000:]
                raise RuntimeError(f"{command[0]} exited {done.returncode}:\n{tail}")
        peak_kib = int(report.read_text().split()[-1]) if timer else 0
    return Sample(wall_s=wall, peak_mb=peak_kib * 1024 / MB)  # ru_maxrss: KiB on Linux


def book_contents(path: Path) -> tuple[int, int]:
    """(chapters, pictures) in an EPUB: XHTML files other than nav/cover/contents; images."""
    furniture = re.compile(r"(nav|cover|contents|title_page|titlepage)\.x?html$")
    with zipfile.ZipFile(path) as book:
        names = book.namelist()
    chapters = [n for n in names if n.endswith((".xhtml", ".html")) and not furniture.search(n)]
    pictures = [n for n in names if re.search(r"\.(jpe?g|png|gif|webp)$", n, re.I)]
    return len(chapters), len(pictures)


def run_rounds(
    row: Row, command: Sequence[str], out: Path, runs: int, cwd: Path | None = None
) -> None:
    for number in range(runs):
        out.unlink(missing_ok=True)
        sample = measure(command, cwd)
        row.samples.append(sample)
        console.print(
            f"  {row.name} run {number + 1}/{runs}: {sample.wall_s:.2f} s, {sample.peak_mb:.0f} MB"
        )
    row.epub_bytes = out.stat().st_size
    row.chapters, row.pictures = book_contents(out)


# --- the contenders -----------------------------------------------------------------------


def feedx_command(config_path: Path, archive: Path, out: Path) -> list[str]:
    script = Path(sys.executable).parent / "feedx-convert"
    entry = [str(script)] if script.exists() else [sys.executable, "-m", "convert"]
    return [*entry, "-q", "-c", str(config_path), "epub", "--week", WEEK,
            "--archive", str(archive), "-o", str(out)]  # fmt: skip


def week_articles(archive: Path, config: Config) -> list[Article]:
    """The week's stories as the digest reads them from the archive."""
    zone = ZoneInfo(config.timezone)
    start, end = iso_week(WEEK, NOW.date()).bounds(zone)
    with settings_of(config).open_archive(archive) as opened:
        return opened.stories_between(start, end, language=config.epub.language or None)


def article_html(article: Article, pictures: dict[str, str] | None) -> str:
    """Title, lead figure and cleaned body; each picture local (`pictures`) or removed."""
    parts = [f"<h1>{html.escape(article.title)}</h1>"]
    lead = article.lead_image
    if lead is not None:
        caption = html.escape(" ".join(filter(None, (lead.caption, lead.credit))))
        parts.append(
            f'<figure><img src="{html.escape(lead.url)}" alt=""/>'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    parts.append(article.body)
    root = parse_fragment("".join(parts))
    for img in list(root.iter("img")):
        local = (pictures or {}).get(img.get("src") or "")
        if local:
            img.set("src", local)
        else:
            img.drop_tree()  # keeps the text after it
    return inner_html(root)


def standalone_html(article: Article, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{article.language}"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(article.title)}</title></head><body>{body}</body></html>\n"
    )


def apt_install(package: str) -> bool:
    """`apt-get install -y PACKAGE` (after `apt-get update` if needed), when root."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    console.print(f"{package} not found: apt-get install -y {package} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    for step in (install, ["apt-get", "update", "-qq"], install):
        done = subprocess.run(step, env=env, capture_output=True, check=False, timeout=900)
        if done.returncode == 0 and step is install:
            return True
    return False


def ensure_pandoc() -> tuple[str | None, str]:
    """pandoc's path, installing it with apt-get when missing and possible; else a reason."""
    found = shutil.which("pandoc")
    if found is None and apt_install("pandoc"):
        found = shutil.which("pandoc")
    return (found, "") if found else (None, "skipped: pandoc missing, apt-get could not install it")


def version_of(command: Sequence[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except OSError:
        return ""
    return (
        (done.stdout or done.stderr).splitlines()[0].strip() if done.stdout or done.stderr else ""
    )


def machine_info(pandoc: str | None) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "feedx_convert": convert.__version__,
        "ebooklib": ".".join(map(str, getattr(ebooklib, "VERSION", ()))),
        "pillow": PIL.__version__,
        "pandoc": version_of([pandoc, "--version"]) if pandoc else "",
    }


def profile_build(command: list[str], work: Path, top: int) -> str:
    """cProfile of one warm build, top functions by cumulative time, imports left out.

    cProfile sees the main thread only: the picture workers' decoding and encoding
    shows as the time their caller (fetch_pictures, shrink_to_budget) waits.
    """
    out = work / "profile.prof"
    entry = command.index("-q")
    profiled = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "convert", *command[entry:]]
    start = time.perf_counter()
    subprocess.run(profiled, check=True, capture_output=True)
    wall = time.perf_counter() - start
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    imports = sum(
        entry[3] for key, entry in stats.items() if key[2] == "<module>" and "cli.py" in key[0]
    )
    rows = sorted(
        (
            (entry[3], entry[2], entry[1], key)
            for key, entry in stats.items()
            if key[2] != "<module>"
            and not key[0].startswith("<frozen")
            and "importlib" not in key[0]
            and key[2]
            not in ("<built-in method builtins.exec>", "<built-in method builtins.__import__>")
        ),
        reverse=True,
    )[:top]
    lines = [
        f"cProfile of one warm build: {wall:.2f} s wall under the profiler, "
        f"{imports:.2f} s of it importing convert.cli",
        f"{'cumtime':>8} {'tottime':>8} {'calls':>8}  function",
    ]
    for cumtime, tottime, calls, (file, line, function) in rows:
        where = "/".join(Path(file).parts[-2:]) if file != "~" else ""
        lines.append(f"{cumtime:8.2f} {tottime:8.2f} {calls:8d}  {where}:{line}({function})")
    return "\n".join(lines)


# --- output -------------------------------------------------------------------------------


def print_table(rows: list[Row], title: str) -> None:
    reference = rows[0]
    table = Table(title=title)
    for column in ("", "median s", "min–max s", "peak MB", "EPUB MB", "chapters / pictures",
                   "× feedx time", "× feedx memory", "× feedx size"):  # fmt: skip
        table.add_column(column, justify="left" if not column else "right")
    for row in rows:
        if row.skipped:
            table.add_row(row.name, *["–"] * 8)
            continue
        ratios = ["1.00"] * 3
        if row is not reference:
            ratios = [
                f"{row.median_s / reference.median_s:.2f}",
                f"{row.peak_mb / reference.peak_mb:.2f}",
                f"{row.epub_bytes / reference.epub_bytes:.2f}",
            ]
        table.add_row(
            row.name,
            f"{row.median_s:.2f}",
            f"{min(row.times):.2f}–{max(row.times):.2f}",
            f"{row.peak_mb:.0f}",
            f"{row.epub_bytes / MB:.1f}",
            f"{row.chapters} / {row.pictures}",
            *ratios,
        )
    console.print(table)
    for row in rows:
        console.print(f"[bold]{row.name}[/]: {row.skipped or row.includes}")


# --- main ---------------------------------------------------------------------------------


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="feedx-bench-") as folder:
        yield Path(folder)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=500, help="articles in the week (500)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per contender (5)")
    parser.add_argument(
        "--picture-width",
        type=int,
        default=800,
        help="width of the served JPEG/WebP pictures; PNGs are 3/5 of it (800, as feedx's &w=800)",
    )
    parser.add_argument("--no-pandoc", action="store_true", help="skip the pandoc baselines")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also cProfile one warm build, top N"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the work files here (default: a temp dir)"
    )
    parser.add_argument(
        "--json", type=Path, default=BENCH / "results-epub.json", help="results file to write"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.articles < 1 or args.runs < 1:
        raise SystemExit("--articles and --runs must be at least 1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per picture request
    with workspace(args.workdir) as work:
        served = work / "served"
        served.mkdir(exist_ok=True)
        notes: dict[str, Any] = {}
        with PictureServer(served, args.picture_width) as server:
            week = prepare_week(args.articles, work, server, notes)
            rows = [bench_feedx(week, args.runs, server, notes), bench_ebooklib(week, args.runs)]
            if not args.no_pandoc:
                rows += bench_pandoc(week, args.runs, server)
            if args.profile:
                console.print("profiling one warm build ...")
                notes["profile"] = profile_build(week.command, week.work, args.profile)
    reference = rows[0]
    results = {
        "benchmark": "EPUB digest of a synthetic week, warm picture cache",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "articles": args.articles,
        "runs": args.runs,
        "picture_width": args.picture_width,
        "machine": machine_info(shutil.which("pandoc")),
        "notes": notes,
        "rows": [row.as_json(None if row is reference else reference) for row in rows],
    }
    args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", "utf-8")
    console.print()
    print_table(rows, f"{args.articles}-article digest, median of {args.runs} runs")
    for key, value in notes.items():
        if key != "profile":
            console.print(f"{key}: {value}")
    if "profile" in notes:
        console.print(notes["profile"], markup=False)
    console.print(f"results: {args.json}")
    return 0


@dataclass
class Week:
    """The ingested week and how to build it."""

    work: Path
    articles: list[Article]
    command: list[str]
    out: Path


def prepare_week(count: int, work: Path, server: PictureServer, notes: dict[str, Any]) -> Week:
    """Write the dumps, ingest them, and check the archive gives the week back."""
    config_path = bench_config(work)
    config = load_config(config_path)
    archive = work / "archive.sqlite"
    archive.unlink(missing_ok=True)
    console.print(f"writing {count} feedx dumps and ingesting them into {archive} ...")
    dumps = work / "dumps"
    dumps.mkdir(exist_ok=True)
    for number in range(count):
        (dumps / f"{number:04d}.txt").write_text(feedx_dump(number, server.base_url), "utf-8")
    start = time.perf_counter()
    inputs = tuple(sorted(str(p) for p in dumps.iterdir()))
    report = run_plan(command_plan(config, inputs, None, archive=archive, now=NOW))
    failed = [name for row in report.sources for name in row.failed]
    if failed or report.archive_failed:
        raise RuntimeError(f"ingest failed for {failed[:5]}")
    notes["ingest_s"] = round(time.perf_counter() - start, 2)
    articles = week_articles(archive, config)
    if len(articles) != count:
        raise RuntimeError(f"{len(articles)} stories in the week, expected {count}")
    slots = [s for n in range(count) for s in picture_slots(n)]
    notes["pictures_in_articles"] = len(slots)
    notes["pictures_missing_404"] = sum(missing for _n, _k, missing in slots)
    notes["body_kb_mean"] = round(
        statistics.mean(len(a.body.encode("utf-8")) for a in articles) / 1000, 1
    )
    out = work / "feedx.epub"
    return Week(work, articles, feedx_command(config_path, archive, out), out)


def bench_feedx(week: Week, runs: int, server: PictureServer, notes: dict[str, Any]) -> Row:
    """One cold build fills the picture cache; then the timed warm builds."""
    console.print("cold build (downloads and prepares every picture) ...")
    cold = measure(week.command)
    notes["cold_build_s"] = round(cold.wall_s, 2)
    notes["cold_build_peak_mb"] = round(cold.peak_mb, 1)
    notes["served_picture_mb"] = round(
        sum(p.stat().st_size for p in server.folder.iterdir()) / MB, 1
    )
    first = week.out.read_bytes()
    before = server.requests
    row = Row(
        "feedx-convert (warm cache)",
        "the CLI in a fresh process (interpreter start, imports, archive read, cached pictures "
        "read and checked, re-fetch of the 404s, budget fitting, cover, chapters, zip rewrite); "
        "pictures embedded, converted and scaled",
    )
    run_rounds(row, week.command, week.out, runs)
    notes["requests_during_warm_runs"] = server.requests - before
    notes["warm_output_identical_to_cold"] = week.out.read_bytes() == first
    startup = [measure([week.command[0], "--version"]).wall_s for _ in range(3)]
    notes["cli_startup_s"] = round(statistics.median(startup), 3)
    return row


def bench_ebooklib(week: Week, runs: int) -> Row:
    """Baseline A: the same stories from the same archive, text only, through raw ebooklib."""
    chapters = [
        {"title": a.title, "html": article_html(a, None), "language": a.language}
        for a in week.articles
    ]
    chapters_json = week.work / "chapters.json"
    chapters_json.write_text(json.dumps(chapters, ensure_ascii=False), "utf-8")
    row = Row(
        "raw ebooklib",
        "the same cleaned HTML (title, caption text, body), one EpubHtml per article, flat TOC; "
        "no pictures, no cover, no stylesheet, no day/source grouping; input pre-extracted "
        "from the archive (not timed)",
    )
    out = week.work / "ebooklib.epub"
    command = [sys.executable, str(BENCH / "ebooklib_baseline.py"), str(chapters_json), str(out)]
    run_rounds(row, command, out, runs)
    return row


def bench_pandoc(week: Week, runs: int, server: PictureServer) -> list[Row]:
    """Baseline B: `pandoc FILES -o x.epub`, text only, then with the pictures as files."""
    pandoc, reason = ensure_pandoc()
    text_row = Row(
        "pandoc",
        "`pandoc FILES -o x.epub`, one standalone HTML file per article (the same HTML as "
        "ebooklib); no pictures; pandoc's own title page, nav and CSS",
    )
    pictures_row = Row(
        "pandoc + picture files",
        "as above, with every served picture as a local file beside the HTML (the 404s "
        "removed): embedded as served, not converted or scaled (WebP and alpha PNG stay)",
    )
    if pandoc is None:
        text_row.skipped = pictures_row.skipped = reason
        return [text_row, pictures_row]
    local = {
        f"{server.base_url}/pics/{p.name}": f"pictures/{p.name}" for p in server.folder.iterdir()
    }
    for row, mapping in ((text_row, None), (pictures_row, local)):
        folder = week.work / ("pandoc-pictures" if mapping else "pandoc-text")
        folder.mkdir(exist_ok=True)
        if mapping and not (folder / "pictures").exists():
            (folder / "pictures").symlink_to(server.folder, target_is_directory=True)
        names = []
        for number, article in enumerate(week.articles, 1):
            name = f"{number:04d}.html"
            (folder / name).write_text(
                standalone_html(article, article_html(article, mapping)), "utf-8"
            )
            names.append(name)
        out = folder / "x.epub"
        meta = ["--metadata", f"title=pandoc baseline {WEEK}", "--metadata", "lang=zh-Hans"]
        run_rounds(row, [pandoc, *names, *meta, "-o", str(out)], out, runs, folder)
    return [text_row, pictures_row]


if __name__ == "__main__":
    sys.exit(main())
