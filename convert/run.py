"""The one orchestrator: every command and the main job run a plan through `run_plan`.

    sources → inputs → read + clean + prepare (here or in workers) → archive → outputs

Each input is read and cleaned once, whatever the outputs; each output takes every
input's articles in order (a Markdown folder writes them as they come), then writes
its file(s) once reading is done. A bad input is one error line and the others go on;
an archive that cannot take the articles (a full disk) is one error line and the
outputs are still written. Two runs that store into one archive never overlap.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from convert.config import Filtering, MarkdownTarget, Target
from convert.errors import ConvertError
from convert.filters import ArticleFilter
from convert.fsutil import exclusive_lock, sweep_stale_temps
from convert.model import Article, newest_first
from convert.net.client import Downloader
from convert.outputs import open_output
from convert.outputs.base import STDOUT, Output, OutputContext, Progress, Taken
from convert.plan import Plan, Settings
from convert.read import (
    InputDone,
    ReadInput,
    ReadStage,
    SourceOptions,
    read_in_worker,
    read_input,
    read_one,
)
from convert.report import OutputReport, RunReport, SourceReport
from convert.sources import expand_source
from convert.workers import POOL_THRESHOLD, parallel_map

if TYPE_CHECKING:
    from convert.archive import Archive

log = logging.getLogger(__name__)


def run_plan(plan: Plan, progress: Progress | None = None) -> RunReport:
    """Read every source once, store it in the archive (if any), write every output."""
    settings = plan.settings
    now = plan.now or datetime.now(UTC)
    report = RunReport(archive=plan.archive, dry_run=plan.dry_run)
    storing = plan.archive is not None and bool(plan.sources)
    with ExitStack() as stack:
        if storing:
            assert plan.archive is not None
            # The lock makes the archive's folder, or says in one line why it cannot.
            stack.enter_context(exclusive_lock(plan.archive.with_name(plan.archive.name + ".lock")))
        downloader = stack.enter_context(Downloader(settings.net))
        working = None
        if plan.archive is not None:
            working = stack.enter_context(_working_archive(plan.archive, plan.dry_run))
        options, option_of = _distinct_options(plan)
        reading = ReadStage(
            sources=options,
            max_input_bytes=settings.max_input_bytes,
            net=settings.net,
            stale_after_days=settings.stale_after_days,
            now=now,
            clean=plan.clean,
            downloads_end=downloader.ends_at,
        )
        context = OutputContext(
            identity=settings.identity,
            zone=settings.zone,
            now=now,
            downloader=downloader,
            picture_cache=settings.picture_cache,
            picture_memory=settings.picture_memory,
            mailer=settings.mailer,
            archive=working,
            # A feed merged with: read as any input, without a source's own rules.
            read_back=partial(
                _read_back,
                stage=dataclasses.replace(reading, sources=(settings.source(None),)),
                downloader=downloader,
            ),
            progress=progress,
            jobs=plan.jobs,
            dry_run=plan.dry_run,
        )
        if not plan.dry_run:
            for folder in _output_folders(plan.targets):
                sweep_stale_temps(folder)  # even when nothing is to be written there
        outputs = [
            open_output(kind, target, settings.sections.get(kind), context)
            for kind, target in plan.targets
        ]
        stage = dataclasses.replace(reading, prepares=tuple(o.prepare() for o in outputs))
        archive = _Storing(working, settings.open_archive, report, now) if storing else None
        _read_everything(plan, stage, option_of, downloader, outputs, archive, report, progress)
        if archive is not None:
            archive.close()
        for (kind, target), output in zip(plan.targets, outputs, strict=True):
            report.outputs.append(_produce(output, kind, target, progress))
    return report


def _distinct_options(plan: Plan) -> tuple[tuple[SourceOptions, ...], list[int]]:
    """The ways the plan's sources are read, each once, and each source's among them.

    Sources without rules of their own share one: a worker is sent these with every
    batch of inputs, and a thousand copies of one cost more than the reading saves.
    """
    options: list[SourceOptions] = []
    index_of: dict[tuple[int | None, ArticleFilter], int] = {}
    option_of = []
    for source in plan.sources:
        taken = source.article_filter()
        key = (id(source.rules) if source.rules is not None else None, taken)
        if key not in index_of:
            index_of[key] = len(options)
            options.append(plan.settings.source(source.rules, taken))
        option_of.append(index_of[key])
    return tuple(options), option_of


def _read_everything(
    plan: Plan,
    stage: ReadStage,
    option_of: list[int],
    downloader: Downloader,
    outputs: list[Output],
    archive: _Storing | None,
    report: RunReport,
    progress: Progress | None,
) -> None:
    """Every source's inputs read in order, each source handed on when it is done."""
    tasks: list[tuple[str, int]] = []
    for number, source in enumerate(plan.sources):
        report.sources.append(
            SourceReport(name=source.name or source.path, filtering=source.article_filter().active)
        )
        try:
            tasks.extend((name, number) for name in expand_source(source.path))
        except ConvertError as error:
            log.error("%s", error)
            report.sources[number].failed.append(source.path)
    last_of = {number: index for index, (_name, number) in enumerate(tasks)}
    taken_by = [
        target.article_filter() if isinstance(target, Filtering) else ArticleFilter()
        for _kind, target in plan.targets
    ]
    step = progress("Reading", len(tasks)) if progress and tasks else None
    held: list[ReadInput] = []  # the source's reads so far, when it is handed on whole
    work = [(name, option_of[number]) for name, number in tasks]
    done_inputs = _inputs_done(work, stage, downloader, plan.jobs)
    for index, ((_name, number), done) in enumerate(zip(tasks, done_inputs, strict=True)):
        row = report.sources[number]
        row.failed.extend(done.failed)
        limit = plan.sources[number].max_items
        # A source keeping its newest articles, or stored in one transaction, is handed
        # on once all its inputs are read; any other, input by input as they come.
        if not limit and archive is None:
            _hand_on(list(done.reads), row, outputs, taken_by, stage.now)
        else:
            held.extend(done.reads)
            if last_of[number] == index:
                reads = _newest(held, limit) if limit else held
                _hand_on(reads, row, outputs, taken_by, stage.now)
                if archive is not None:
                    archive.store(row, [item.article for read in reads for item in read.items])
                held = []
        if step:
            step()
    log.info(
        "read %d articles from %d sources",
        sum(row.read for row in report.sources),
        len(plan.sources),
    )


def _inputs_done(
    tasks: list[tuple[str, int]], stage: ReadStage, downloader: Downloader, jobs: int
) -> Iterator[InputDone]:
    """Each input (a name, and how it is read: an index of `stage.sources`) read, in
    order: over worker processes for many inputs, else here."""
    if jobs > 1 and len(tasks) >= POOL_THRESHOLD:
        yield from parallel_map(partial(read_in_worker, stage=stage), tasks, min(jobs, len(tasks)))
        return
    for name, number in tasks:
        yield read_input(name, number, stage, downloader)


def _hand_on(
    reads: list[ReadInput],
    row: SourceReport,
    outputs: list[Output],
    taken_by: list[ArticleFilter],
    now: datetime,
) -> None:
    """One source's (or input's) reads to every output, in order, each output's filter
    (`taken_by`, in the outputs' order) applied."""
    for read in reads:
        row.read += len(read.items)
        row.filtered += read.filtered
        row.stale = row.stale or read.stale
        if read.newest is not None and (row.newest is None or read.newest > row.newest):
            row.newest = read.newest
        for index, output in enumerate(outputs):
            taken = taken_by[index]
            items = [
                item
                for item in read.items
                if not taken.active or taken.refusal(item.article, now) is None
            ]
            articles = [item.article for item in items]
            output.take(
                Taken(read.name, read.channel, articles, [item.prepared[index] for item in items])
            )


def _newest(reads: list[ReadInput], limit: int) -> list[ReadInput]:
    """Only the newest `limit` articles over all reads (their order kept)."""
    everything = sorted(
        (item for read in reads for item in read.items),
        key=lambda item: newest_first(item.article),
        reverse=True,
    )
    kept = {id(item) for item in everything[:limit]}
    return [
        dataclasses.replace(read, items=tuple(i for i in read.items if id(i) in kept))
        for read in reads
    ]


class _Storing:
    """The archive the run stores into, one transaction per source; after a failure (a
    full disk) it takes nothing more and the run goes on to its outputs."""

    def __init__(
        self,
        path: Path | None,
        opener: Callable[[Path], Archive],
        report: RunReport,
        now: datetime,
    ) -> None:
        self._path = path
        self._opener = opener
        self._report = report
        self._now = now
        self._archive: Archive | None = None

    def store(self, row: SourceReport, articles: list[Article]) -> None:
        """Store one source's articles, counting them in its row."""
        if self._report.archive_failed or self._path is None:
            return
        try:
            if self._archive is None:
                self._archive = self._opener(self._path)
            counts = self._archive.ingest(articles, now=self._now)
        except ConvertError as error:
            log.error("%s", error)
            self._report.archive_failed = True
            return
        row.new, row.updated, row.unchanged = counts.new, counts.updated, counts.unchanged

    def close(self) -> None:
        """Close the archive (the last connection folds its WAL back into the file)."""
        if self._archive is not None:
            self._archive.close()
            if not self._report.archive_failed:
                copy = " (a copy, for the dry run)" * self._report.dry_run
                log.info("archive %s%s updated", self._report.archive, copy)


def _produce(output: Output, kind: str, target: object, progress: Progress | None) -> OutputReport:
    """Write one output, within a progress phase named after it."""
    where = str(getattr(target, "path", getattr(target, "folder", "")))
    step = progress(f"Writing {where}", 1) if progress else None
    try:
        return output.produce()
    except ConvertError as error:  # what the output could not guard itself
        log.error("%s", error)
        return OutputReport(kind=kind, path=where, failed=[where])
    finally:
        if step:
            step()


def _output_folders(targets: Iterable[tuple[str, Target]]) -> list[Path]:
    """The folders the outputs write into (a Markdown folder, a file's folder)."""
    folders = []
    for _kind, target in targets:
        if isinstance(target, MarkdownTarget):
            if target.folder and target.folder != STDOUT:
                folders.append(Path(target.folder))
        elif target.path != STDOUT:
            folders.append(Path(target.path).parent)
    return folders


def _read_back(name: str, stage: ReadStage, downloader: Downloader) -> ReadInput:
    """A file this tool wrote, read and cleaned as any input (ConvertError when it cannot be)."""
    return read_one(name, stage.sources[0], stage, downloader, ours=True)


def read_articles(name: str, settings: Settings, *, now: datetime | None = None) -> ReadInput:
    """One input read and cleaned here, as a run reads it, without outputs or a source's
    rules: ConvertError when it cannot be read. (For a library's caller, and the tests.)"""
    stage = ReadStage(
        sources=(settings.source(None),),
        max_input_bytes=settings.max_input_bytes,
        net=settings.net,
        stale_after_days=settings.stale_after_days,
        now=now or datetime.now(UTC),
    )
    with Downloader(settings.net) as downloader:
        return read_one(name, stage.sources[0], stage, downloader)


@contextmanager
def _working_archive(path: Path, dry_run: bool) -> Iterator[Path]:
    """The archive itself, or for a dry run a private copy that is thrown away."""
    if not dry_run:
        yield path
        return
    import sqlite3  # noqa: PLC0415 - only a dry run copies the archive

    with tempfile.TemporaryDirectory(prefix="feedx-dry-run-") as folder:
        copy = Path(folder) / path.name
        if path.exists():
            # SQLite's backup API copies a WAL database consistently; a file copy may not.
            with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
                source.backup(target)
        yield copy
