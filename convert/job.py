"""The main job (`feedx-convert run`): read the configured sources into the archive,
then write every configured output. One lock per archive keeps two runs apart.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from convert.config import Config, EpubTarget, FeedTarget, MarkdownTarget, Source
from convert.download import Downloader
from convert.errors import ConvertError
from convert.fsutil import exclusive_lock
from convert.period import Period, date_range, iso_week
from convert.pipeline import (
    EpubJob,
    FeedJob,
    Outcome,
    Writer,
    archive_path,
    iter_reads,
    markdown_files,
    open_archive,
    parallel_map,
    render_epub,
    warn_if_stale,
    write_feed,
    write_output,
)
from convert.readers import Read
from convert.urls import is_web_url
from convert.writers.rss import item_date

log = logging.getLogger(__name__)

Progress = Callable[[str, int], Callable[[], None]]
"""Starts a phase of `total` steps; returns the function that marks one step done."""


@dataclass
class SourceReport:
    """What happened to one configured source."""

    name: str
    """The source's name, or its path."""

    new: int = 0
    """Articles the archive did not have."""

    updated: int = 0
    """Articles whose content changed."""

    unchanged: int = 0
    """Articles the archive already had as they are."""

    failed: int = 0
    """Inputs of this source that could not be read."""


@dataclass
class OutputReport:
    """What happened to one configured output."""

    kind: str
    """feed, markdown or epub."""

    path: Path
    """The file or folder."""

    written: int = 0
    """Files written (or, in a dry run, that would be)."""

    unchanged: int = 0
    """Files left as they were."""

    size: int = 0
    """Bytes of what the output holds (or would hold)."""

    failed: bool = False
    """Something of this output could not be made."""


@dataclass
class JobReport:
    """The summary of a run."""

    sources: list[SourceReport] = field(default_factory=list)
    """One row per enabled source."""

    outputs: list[OutputReport] = field(default_factory=list)
    """One row per output."""

    archive_failed: bool = False
    """The archive could not take this run's articles (a full disk, say); the
    outputs were still written from what was read."""

    @property
    def failed(self) -> bool:
        """Some input, the archive, or some output failed."""
        return (
            self.archive_failed
            or any(s.failed for s in self.sources)
            or any(o.failed for o in self.outputs)
        )

    @property
    def changed(self) -> bool:
        """Some file was (or would be) written."""
        return any(o.written for o in self.outputs)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How `feedx-convert run` was called."""

    archive: Path | None = None
    """The archive; the config's when None."""

    dry_run: bool = False
    """Work on a copy of the archive, write nothing, report what would change."""

    jobs: int = 0
    """Worker processes for reading (and a large EPUB's pages); 0: one per core."""

    now: datetime | None = None
    """The time the run takes as now (tests fix it)."""


def run_job(config: Config, options: RunOptions, progress: Progress | None = None) -> JobReport:
    """Ingest every enabled source, then write every output."""
    now = options.now or datetime.now(UTC)
    jobs = options.jobs or os.cpu_count() or 1
    report = JobReport()
    path = archive_path(config, options.archive)
    # The lock makes the archive's folder, or says in one line why it cannot.
    with exclusive_lock(path.with_name(path.name + ".lock")):
        sources = [s for s in config.sources if s.enabled]
        if not sources:
            log.warning("the config names no enabled source")
        reads = _read_sources(sources, config, jobs, now, report, progress)
        articles = sum(len(r.articles) for _row, source_reads in reads for r in source_reads)
        log.info("read %d articles from %d sources", articles, len(sources))
        with _working_archive(path, options.dry_run) as working:
            try:
                _ingest(working, reads, config, now)
            except ConvertError as error:  # a full disk, say: the outputs are still due
                log.error("%s", error)
                report.archive_failed = True
            else:
                copy = " (a copy, for the dry run)" * options.dry_run
                log.info("archive %s%s updated", path, copy)
            fresh = [(row.name, r) for row, source_reads in reads for r in source_reads]
            write: Writer = would_write if options.dry_run else write_output
            for output in config.outputs:
                if output.feed is not None:
                    report.outputs.append(_feed(output.feed, fresh, config, write))
                elif output.markdown is not None:
                    report.outputs.append(_markdown(output.markdown, fresh, config, write))
                elif output.epub is not None:
                    report.outputs.append(_epub(output.epub, working, config, write, now, jobs))
    return report


def _ingest(
    archive_file: Path, reads: list[tuple[SourceReport, list[Read]]], config: Config, now: datetime
) -> None:
    """Store each source's articles, one transaction per source, counting in its row."""
    with open_archive(archive_file, config) as archive:
        for row, source_reads in reads:
            counts = archive.ingest((a for r in source_reads for a in r.articles), now=now)
            row.new, row.updated, row.unchanged = counts.new, counts.updated, counts.unchanged


def expand_source(source: Source) -> list[str]:
    """The inputs a source names: a URL, a file, a folder's files, or a glob's matches."""
    if is_web_url(source.path):
        return [source.path]
    path = Path(source.path)
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if glob.has_magic(source.path):
        matches = sorted(p for p in glob.glob(source.path) if Path(p).is_file())
        if not matches:
            raise ConvertError(source.path, "matches no file")
        return matches
    return [source.path]


def would_write(path: Path, data: bytes | str, outcome: Outcome) -> bool:
    """A dry run's writer: note whether `path` would change, touch nothing."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        same = path.read_bytes() == payload
    except OSError:
        same = False
    (outcome.unchanged if same else outcome.written).append(path)
    return True


def read_input(task: tuple[str, Config], now: datetime) -> tuple[list[Read], int]:
    """Read one input with its source's config (in a worker process): the reads, and
    how many inputs failed (an OPML list's feeds are read with it)."""
    one, config = task
    outcome = Outcome()
    reads: list[Read] = []
    with Downloader(config.download) as downloader:
        for name, read in iter_reads([one], config, outcome, downloader):
            warn_if_stale(name, read, config, now)
            reads.append(read)
    return reads, len(outcome.failed)


def _read_sources(
    sources: list[Source],
    config: Config,
    jobs: int,
    now: datetime,
    report: JobReport,
    progress: Progress | None,
) -> list[tuple[SourceReport, list[Read]]]:
    """Read every source; many inputs are spread over worker processes."""
    tasks: list[tuple[Source, SourceReport, str]] = []
    for source in sources:
        row = SourceReport(name=source.name or source.path)
        report.sources.append(row)
        try:
            tasks.extend((source, row, one) for one in expand_source(source))
        except ConvertError as error:
            log.error("%s", error)
            row.failed += 1
    step = progress("Reading", len(tasks)) if progress else None
    workers = min(jobs, len(tasks))
    done = []
    work = ((one, config.for_source(source)) for source, _row, one in tasks)
    for result in parallel_map(partial(read_input, now=now), work, workers):
        done.append(result)
        if step:
            step()
    collected: dict[int, list[Read]] = {id(row): [] for row in report.sources}
    for (_source, row, _one), (source_reads, failed) in zip(tasks, done, strict=True):
        collected[id(row)].extend(source_reads)
        row.failed += failed
    limits = {id(row): source.max_items for source, row, _one in tasks}
    return [(row, _newest(collected[id(row)], limits.get(id(row), 0))) for row in report.sources]


def _newest(reads: list[Read], limit: int) -> list[Read]:
    """Keep only the newest `limit` articles over all reads (0 keeps all)."""
    if not limit:
        return reads
    everything = sorted((a for r in reads for a in r.articles), key=item_date, reverse=True)
    kept = {a.id for a in everything[:limit]}
    return [
        dataclasses.replace(r, articles=tuple(a for a in r.articles if a.id in kept)) for r in reads
    ]


@contextmanager
def _working_archive(path: Path, dry_run: bool) -> Iterator[Path]:
    """The archive itself, or for a dry run a private copy that is thrown away."""
    if not dry_run:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="feedx-dry-run-") as folder:
        copy = Path(folder) / path.name
        if path.exists():
            # SQLite's backup API copies a WAL database consistently; a file copy may not.
            with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
                source.backup(target)
        yield copy


def _finish(report: OutputReport, outcome: Outcome, sizes: dict[Path, int]) -> OutputReport:
    report.written = len(outcome.written)
    report.unchanged = len(outcome.unchanged)
    report.failed = bool(outcome.failed)
    report.size = sum(sizes.values())
    return report


def _sizes(write: Writer, sizes: dict[Path, int]) -> Writer:
    """`write`, noting the size of everything that passes through it."""

    def noting(path: Path, data: bytes | str, outcome: Outcome) -> bool:
        sizes[path] = len(data.encode("utf-8") if isinstance(data, str) else data)
        return write(path, data, outcome)

    return noting


def _feed(
    target: FeedTarget, fresh: list[tuple[str, Read]], config: Config, write: Writer
) -> OutputReport:
    out = Path(target.path)
    outcome, sizes = Outcome(), dict[Path, int]()
    job = FeedJob(out_path=out, format=target.format, self_url=target.self_url, title=target.title)
    if fresh:
        write_feed(
            fresh, job, config, outcome, max_items=target.max_items, write=_sizes(write, sizes)
        )
    return _finish(OutputReport(kind="feed", path=out), outcome, sizes)


def _markdown(
    target: MarkdownTarget, fresh: list[tuple[str, Read]], config: Config, write: Writer
) -> OutputReport:
    folder = Path(target.folder)
    outcome, sizes = Outcome(), dict[Path, int]()
    articles = [a for _name, read in fresh for a in read.articles]
    noting = _sizes(write, sizes)
    with Downloader(config.download) as downloader:
        pictures = downloader if target.download_images and write is write_output else None
        for path, text in markdown_files(articles, folder, pictures, outcome):
            noting(path, text, outcome)
    return _finish(OutputReport(kind="markdown", path=folder), outcome, sizes)


def _epub(
    target: EpubTarget, archive: Path, config: Config, write: Writer, now: datetime, jobs: int
) -> OutputReport:
    out = Path(target.path)
    outcome, sizes = Outcome(), dict[Path, int]()
    if target.budget_mb:
        config = dataclasses.replace(
            config, epub=dataclasses.replace(config.epub, budget_mb=target.budget_mb)
        )
    try:
        period = _period(target, archive, config, now)
        out = Path(target.path.replace("{period}", period.label.replace(" – ", "_")))
        job = EpubJob(
            out_path=out,
            period=period,
            archive=archive,
            vertical=target.vertical,
            grayscale=target.grayscale,
            pictures=target.pictures,
            jobs=jobs,  # page workers, for a large book
        )
        rendered = render_epub(job, config, outcome, now=now)
    except ConvertError as error:  # the archive it reads is unusable (a full disk, say)
        log.error("%s: not written: %s", out, error)
        outcome.failed.append(str(out))
        rendered = None
    if rendered is not None:
        _sizes(write, sizes)(out, rendered[0], outcome)
    return _finish(OutputReport(kind="epub", path=out), outcome, sizes)


def _period(target: EpubTarget, archive: Path, config: Config, now: datetime) -> Period:
    """The digest's days: a window, the newest article's week, or a named week."""
    zone = ZoneInfo(config.timezone)
    if target.since:
        return date_range(date.fromisoformat(target.since), date.fromisoformat(target.until))
    if target.week == "latest":
        with open_archive(archive, config) as opened:
            newest = opened.newest_published()
        day = (newest or now).astimezone(zone).date()
        year, week, _ = day.isocalendar()
        return iso_week(f"{year}-W{week:02d}", day)
    return iso_week(target.week, now.astimezone(zone).date())
