"""The tables a person reads after `run` and `archive stats`: rich on a terminal, plain
text elsewhere (cron mail, a log), where no path is ever cut short."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

from convert.archive import StatRow
from convert.fsutil import stdout_is_terminal, write_stdout
from convert.report import RunReport, SourceReport
from convert.text import printable


def print_summary(report: RunReport, *, on_terminal: bool) -> None:
    """Per source: read, new, updated, unchanged, failed; per output: path, size, changes.

    A dry run also names every file that would change.
    """
    verb = "would write" if report.dry_run else "written"
    # Articles left out by a source's filter: a column only when a source has one.
    filtering = any(row.filtering for row in report.sources)
    sources = [
        [
            row.name,
            str(row.read),
            *([str(row.filtered)] * filtering),
            _newest(row),
            str(row.new),
            str(row.updated),
            str(row.unchanged),
            str(len(row.failed)),
        ]
        for row in report.sources
    ]
    source_columns = ["source", "read", *(["filtered"] * filtering), "newest", "new"]
    outputs = [
        [
            out.kind,
            out.path,
            _size(out.size),
            str(len(out.written)),
            str(len(out.unchanged)),
            "failed" if out.failed else "ok",
        ]
        for out in report.outputs
    ]
    tables = [
        ("sources", [*source_columns, "updated", "unchanged", "failed"], sources),
        ("outputs", ["output", "path", "size", verb, "unchanged", "status"], outputs),
    ]
    lines: list[str] = []
    if report.dry_run:
        changing = [path for out in report.outputs for path in out.written]
        if changing:
            lines.append(f"would write {len(changing)} files:")
            lines.extend(f"  {path}" for path in changing)
    if not report.changed and not report.failed:
        lines.append("nothing changed: every output is up to date")
    if on_terminal:
        _rich(tables, lines)
    else:
        _plain(tables, lines)


def print_stats(path: Path, rows: Sequence[StatRow]) -> None:
    """Archived articles per source and ISO week, with the total."""
    body = [[row.source, row.week, str(row.articles)] for row in rows]
    body.append(["all", "", str(sum(row.articles for row in rows))])
    tables = [(str(path), ["source", "week", "articles"], body)]
    if stdout_is_terminal():
        _rich(tables, [])
    else:
        _plain(tables, [])


Table = tuple[str, list[str], list[list[str]]]


def _rich(tables: list[Table], lines: list[str]) -> None:
    from rich.console import Console  # noqa: PLC0415 - a pipe's run never loads rich
    from rich.table import Table as RichTable  # noqa: PLC0415

    console = Console(soft_wrap=True)
    for title, header, rows in tables:
        table = RichTable(*header, title=title)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for line in lines:
        console.print(line, markup=False, highlight=False)


def _plain(tables: list[Table], lines: list[str]) -> None:
    """Columns padded to their widest cell; nothing cut, nothing wrapped."""
    out: list[str] = []
    for title, header, rows in tables:
        cells = [[printable(cell) for cell in row] for row in [header, *rows]]
        widths = [max(_width(row[i]) for row in cells) for i in range(len(header))]
        out.append(f"{title}:")
        for row in cells:
            padded = (c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True))
            out.append("  ".join(padded).rstrip())
        out.append("")
    out.extend(printable(line) for line in lines)
    write_stdout("\n".join(out).rstrip("\n") + "\n")


def _width(text: str) -> int:
    """Columns `text` takes on a terminal or in a fixed-width font: CJK takes two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _newest(row: SourceReport) -> str:
    """The source's newest dated article's day, marked when the feed is stale; `-`."""
    if row.newest is None:
        return "-"
    return row.newest.date().isoformat() + (" (stale)" * row.stale)


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
