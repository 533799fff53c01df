"""Benchmark: peak memory of `epub` with pictures at the pixel cap, in every format taken.

    .venv/bin/python bench/picture_memory.py [--runs 3] [--count 8] [--memory-mb 500]

For each row, `--count` distinct pictures (one pixel differs, so that no two share a
decode) are drawn with Pillow at the largest size the format and `MAX_PIXELS` allow,
served by a local HTTP server on 127.0.0.1, and put in one feedx article; a fresh
`feedx-convert epub` process builds the book with an empty picture cache, so that
every picture is downloaded and decoded. Its peak RSS comes from GNU time (`%M`), its
wall time from here. The baseline row, in the same run, is the same book with
ordinary 1-megapixel JPEGs. Rows are run round-robin; medians are printed and
written to bench/results-picture-memory.json.

A picture that would not fit the memory budget is refused (a warning): the table
counts those, and the pictures that reached the book.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from convert.media.prepare import MAX_PIXELS

sys.path.insert(0, str(Path(__file__).parent))
from epub_digest import machine_info, time_tool

console = Console(width=150)
HERE = Path(__file__).parent
SIDE = int(MAX_PIXELS**0.5)  # 8944: the largest square under the cap
WEBP_SIDES = (16383, MAX_PIXELS // 16383)  # WebP's largest side, as in the issue


@dataclass(frozen=True)
class Kind:
    """One row's pictures."""

    name: str
    format: str
    mode: str
    size: tuple[int, int]
    options: tuple[tuple[str, object], ...] = ()
    memory_mb: int | None = None  # None: the command line's


KINDS = (
    Kind("baseline: JPEG 1 Mpx", "JPEG", "RGB", (1200, 800)),
    Kind("JPEG RGB", "JPEG", "RGB", (SIDE, SIDE)),
    Kind("JPEG CMYK", "JPEG", "CMYK", (SIDE, SIDE)),
    Kind("PNG RGB", "PNG", "RGB", (SIDE, SIDE)),
    Kind("PNG RGBA", "PNG", "RGBA", (SIDE, SIDE)),
    Kind("PNG palette", "PNG", "P", (SIDE, SIDE)),
    Kind("PNG 16-bit grey", "PNG", "I;16", (SIDE, SIDE)),
    Kind("GIF", "GIF", "P", (SIDE, SIDE)),
    Kind("WebP lossless", "WEBP", "RGBA", WEBP_SIDES, (("lossless", True),)),
    Kind("WebP lossy", "WEBP", "RGB", WEBP_SIDES),
    Kind("AVIF", "AVIF", "RGB", (SIDE, SIDE)),
    Kind("PNG RGB, memory_mb 900", "PNG", "RGB", (SIDE, SIDE), memory_mb=900),
    Kind("WebP lossless, memory_mb 1600", "WEBP", "RGBA", WEBP_SIDES, (("lossless", True),), 1600),
)


@dataclass
class Row:
    kind: Kind
    picture_bytes: int = 0
    peaks_mb: list[float] = field(default_factory=list)
    walls_s: list[float] = field(default_factory=list)
    embedded: int = 0
    refused: int = 0


def draw(kind: Kind, number: int) -> bytes:
    """A flat picture of `kind` in a shade of its own: distinct bytes, and distinct
    pictures in the book."""
    bands = len(Image.new(kind.mode, (1, 1)).getbands())
    shade = 100 + 10 * number
    fill: int | tuple[int, ...] = shade if bands == 1 else (shade, 120, 60, 200)[:bands]
    if kind.mode == "I;16":
        fill = shade * 256
    image = Image.new(kind.mode, kind.size, fill)
    if kind.mode == "RGBA":
        image.putpixel((1, 0), (0, 0, 0, 0))  # transparent somewhere: flattened
    buffer = io.BytesIO()
    image.save(buffer, kind.format, **dict(kind.options))
    return buffer.getvalue()


def article(urls: list[str]) -> str:
    """One feedx dump showing each URL."""
    figures = "".join(
        f'<figure><img src="{url}"><figcaption>图 {n}</figcaption></figure>'
        for n, url in enumerate(urls)
    )
    return (
        "<!--1716540598000-->\n[图片内存测试](https://cn.nytimes.com/china/20240524/memory/)\n------\n\n"
        '<address>测试</address><time pudate="2024-05-24 16:08:33">2024年5月24日</time>'
        f"{figures}<p>每张图片都在像素上限。</p>"
    )


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def run_once(row: Row, work: Path, number: int, default_memory: int) -> None:
    """One fresh `epub` process over the row's article, cold cache."""
    slug = re.sub(r"\W+", "-", row.kind.name).strip("-").lower()
    cache = work / "cache" / f"{slug}-{number}"
    config = work / f"{slug}.yaml"
    memory = row.kind.memory_mb or default_memory
    config.write_text(
        f"memory_mb: {memory}\ndownload:\n  allow_private: true\n  cache_dir: {cache}\n"
        "  max_bytes: 15000000\n"
    )
    book = work / f"{slug}.epub"
    book.unlink(missing_ok=True)
    report = work / "time.txt"
    timer = time_tool()
    command = [
        sys.executable,
        "-m",
        "convert",
        "-c",
        str(config),
        "epub",
        str(work / f"{slug}.txt"),
    ]
    command += ["-o", str(book), "--week", "all"]
    wrapped = [timer, "-f", "%M", "-o", str(report), *command] if timer else command
    start = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, text=True, check=False)
    row.walls_s.append(time.perf_counter() - start)
    if done.returncode != 0 or not book.exists():
        raise RuntimeError(f"{row.kind.name}: exit {done.returncode}\n{done.stderr[-2000:]}")
    row.peaks_mb.append(int(report.read_text().split()[-1]) * 1024 / 1e6 if timer else 0.0)
    row.refused = done.stderr.count("too large to decode")
    with zipfile.ZipFile(book) as opened:
        pictures = [n for n in opened.namelist() if re.search(r"\.(jpe?g|png|gif)$", n)]
        row.embedded = sum(1 for n in pictures if "cover" not in n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=8, help="pictures per book")
    parser.add_argument("--memory-mb", type=int, default=500)
    parser.add_argument("--rows", default="", help="only rows whose name contains this")
    parser.add_argument("--json", type=Path, default=HERE / "results-picture-memory.json")
    args = parser.parse_args()
    Image.init()
    kinds = [k for k in KINDS if args.rows.lower() in k.name.lower() and k.format in Image.SAVE]
    rows = [Row(kind) for kind in kinds]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = serve(work)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for row in rows:
            slug = re.sub(r"\W+", "-", row.kind.name).strip("-").lower()
            urls = []
            for number in range(args.count):
                name = f"{slug}-{number}.{row.kind.format.lower()}"
                data = draw(row.kind, number)
                (work / name).write_bytes(data)
                row.picture_bytes = len(data)
                urls.append(f"{base}/{name}")
            (work / f"{slug}.txt").write_text(article(urls))
            console.print(f"drew {row.kind.name}: {args.count} × {row.picture_bytes:,} bytes")
        for number in range(args.runs):  # round-robin: a busy moment slows every row alike
            for row in rows:
                run_once(row, work, number, args.memory_mb)
                peak, wall = row.peaks_mb[-1], row.walls_s[-1]
                console.print(f"  {row.kind.name} run {number + 1}: {peak:.0f} MB, {wall:.1f} s")
        server.shutdown()
    report(rows, args)


def report(rows: list[Row], args: argparse.Namespace) -> None:
    base = (
        statistics.median(rows[0].peaks_mb)
        if rows and rows[0].kind.name.startswith("baseline")
        else None
    )
    table = Table(
        title=f"epub, {args.count} pictures at the cap per book, median of {args.runs} runs"
    )
    for column in (
        "pictures",
        "pixels each",
        "bytes each",
        "memory_mb",
        "peak RSS MB",
        "÷ baseline",
        "seconds",
        "in book",
        "refused",
    ):
        table.add_column(column, justify="right" if column != "pictures" else "left")
    results = []
    for row in rows:
        peak = statistics.median(row.peaks_mb)
        wall = statistics.median(row.walls_s)
        memory = row.kind.memory_mb or args.memory_mb
        ratio = f"{peak / base:.2f}" if base else "-"
        w, h = row.kind.size
        table.add_row(
            row.kind.name,
            f"{w}×{h}",
            f"{row.picture_bytes:,}",
            str(memory),
            f"{peak:.0f}",
            ratio,
            f"{wall:.1f}",
            str(row.embedded),
            str(row.refused),
        )
        results.append(
            {
                "pictures": row.kind.name,
                "size": [w, h],
                "bytes_each": row.picture_bytes,
                "memory_mb": memory,
                "peak_mb": round(peak, 1),
                "peaks_mb": [round(p, 1) for p in row.peaks_mb],
                "seconds": round(wall, 2),
                "embedded": row.embedded,
                "refused": row.refused,
            }
        )
    console.print(table)
    args.json.write_text(
        json.dumps(
            {
                "machine": machine_info(None),
                "count": args.count,
                "runs": args.runs,
                "rows": results,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )
    console.print(f"written to {args.json}")


if __name__ == "__main__":
    main()
