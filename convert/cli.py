"""The command line: parse, load the config, call the pipeline. Nothing else lives here.

Exit codes: 0 all good; 1 some input failed (the others were still converted);
2 a usage or config error.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from convert import __version__, pipeline
from convert.config import Config, load_config
from convert.errors import ConfigError, ConvertError
from convert.model import to_json
from convert.period import Period, date_range, iso_week
from convert.readers import sniff_reader
from convert.text import printable
from convert.writers import FEED_WRITERS

if TYPE_CHECKING:
    from convert.job import JobReport

# rich and the job are imported where used: a conversion in a pipe needs neither, and
# start-up is a third of a small run.

EXIT_OK, EXIT_INPUT_FAILED, EXIT_USAGE = 0, 1, 2


class _OneLineFormatter(logging.Formatter):
    """`warning: PATH: reason`, with anything a terminal would act on escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {printable(record.getMessage())}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now, so that a rich progress bar can redirect it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _on_terminal() -> bool:
    """Progress bars only for a person: on a terminal, never in a pipe or a log."""
    return sys.stderr.isatty()


def _progress(items: Sequence[str], label: str) -> Iterable[str]:
    """`items`, with a progress bar on a terminal; plain in a pipe or for one item."""
    if len(items) < 2 or not _on_terminal():
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description=label, console=Console(stderr=True), transient=True)


def _setup_logging(verbosity: int) -> None:
    handler = _StderrHandler()
    handler.setFormatter(_OneLineFormatter())
    root = logging.getLogger("convert")
    root.handlers[:] = [handler]
    root.propagate = False
    levels = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
    root.setLevel(levels.get(verbosity, logging.DEBUG))


def _config(ctx: click.Context) -> Config:
    config = ctx.obj
    assert isinstance(config, Config)
    return config


def _jobs_option(work: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`-j/--jobs N`: how many worker processes share `work` (default: one per core)."""
    return click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        default=None,
        help=f"Worker processes for {work} (default: one per core).",
    )


def _archive_option(verb: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--archive PATH`: the SQLite archive instead of the config's (or the data folder)."""
    what = f"The SQLite archive to {verb}" if verb else "The SQLite archive"
    return click.option(
        "--archive",
        "archive",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"{what} (default: config `archive`, else the data folder).",
    )


def _jobs(jobs: int | None) -> int:
    return jobs or os.cpu_count() or 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedx-convert")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Config file laid over the shipped config.yaml.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Say more.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, quiet: bool, verbose: bool) -> None:
    """Clean feedx.net articles and republish them as Markdown, feeds and EPUB.

    \b
    Example:
      feedx-convert markdown examples/nyt-putin-harbin.txt
    """
    ctx.meta["verbosity"] = -1 if quiet else 1 if verbose else 0
    _setup_logging(ctx.meta["verbosity"])
    ctx.obj = load_config(config_path)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for one .md per article (needed for several inputs).",
)
@click.option(
    "--download-images",
    is_flag=True,
    help="Save pictures in OUTPUT/assets and link them relatively.",
)
@_jobs_option("reading, cleaning and rendering")
@click.pass_context
def markdown(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out_dir: Path | None,
    download_images: bool,
    jobs: int | None,
) -> int:
    """Convert articles to Markdown with YAML front matter (`-` reads standard input).

    \b
    Examples:
      feedx-convert markdown article.txt > article.md
      feedx-convert markdown examples/*.txt -o out/markdown --download-images
    """
    config = _config(ctx)
    if out_dir is None:
        if len(inputs) > 1:
            raise click.UsageError("several inputs need -o/--output DIR")
        if download_images:
            raise click.UsageError("--download-images needs -o/--output DIR")
        outcome = pipeline.markdown_to_stdout(inputs[0], config)
    else:
        tick = _phase("Converting", len(inputs)) if len(inputs) > 1 and _on_terminal() else None
        outcome = pipeline.markdown_to_folder(
            inputs,
            out_dir,
            config,
            download_images=download_images,
            jobs=_jobs(jobs),
            tick=tick,
        )
        logging.getLogger("convert").info("wrote %d files into %s", len(outcome.written), out_dir)
    return EXIT_INPUT_FAILED if outcome.failed else EXIT_OK


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The feed file to write (merged with when it exists).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FEED_WRITERS)),
    help="Feed format; by default from the output's ending (.atom, .json), else rss.",
)
@click.option("--self-url", default="", help="Where the feed will be published.")
@click.option("--title", default="", help="The feed's title (default: the first source's).")
@_jobs_option("reading and cleaning")
@click.pass_context
def feed(
    ctx: click.Context,
    sources: tuple[str, ...],
    out_path: Path,
    fmt: str | None,
    self_url: str,
    title: str,
    jobs: int | None,
) -> int:
    """Republish feeds, feedx articles or HTML pages as one cleaned feed.

    SOURCE is a file, an http(s) URL, an OPML list of feeds, or - for standard input.

    \b
    Examples:
      feedx-convert feed https://feedx.net/rss/nytimes.xml -o public/nytimes.xml
      feedx-convert feed examples/feedx-nytimes.xml examples/*.txt -o out/feed.atom
    """
    config = _config(ctx)
    job = pipeline.FeedJob(
        out_path=out_path,
        format=fmt or _format_from_ending(out_path),
        self_url=self_url,
        title=title,
        jobs=_jobs(jobs),
    )
    outcome = pipeline.publish_feed(_progress(sources, "Reading"), job, config)
    if outcome.written:
        logging.getLogger("convert").info("wrote %s", out_path)
    elif outcome.unchanged:
        logging.getLogger("convert").info("%s is up to date", out_path)
    return EXIT_INPUT_FAILED if outcome.failed or not _produced(outcome) else EXIT_OK


def _produced(outcome: pipeline.Outcome) -> bool:
    """The output exists as asked: written now, or already holding the same bytes."""
    return bool(outcome.written or outcome.unchanged)


def _format_from_ending(path: Path) -> str:
    return {".atom": "atom", ".json": "json"}.get(path.suffix.lower(), "rss")


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@_archive_option()
@_jobs_option("reading and cleaning")
@click.pass_context
def ingest(
    ctx: click.Context, sources: tuple[str, ...], archive: Path | None, jobs: int | None
) -> int:
    """Store the articles of feeds, files or URLs in the archive (run it daily).

    The same article twice is one row; a newer version replaces the old one.

    \b
    Example:
      feedx-convert ingest https://feedx.net/rss/nytimes.xml examples/*.txt
    """
    config = _config(ctx)
    path = pipeline.archive_path(config, archive)
    outcome, counts = pipeline.ingest(
        _progress(sources, "Ingesting"), path, config, jobs=_jobs(jobs)
    )
    logging.getLogger("convert").info(
        "%s: %d new, %d updated, %d unchanged",
        path,
        counts.new,
        counts.updated,
        counts.unchanged,
    )
    return EXIT_INPUT_FAILED if outcome.failed else EXIT_OK


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not a date (YYYY-MM-DD): {value!r}") from None


@cli.command()
@click.argument("inputs", nargs=-1)
@click.option("--week", help="ISO week (2024-W21) or 'last' (the default without inputs).")
@click.option("--since", help="First day, YYYY-MM-DD (with --until).")
@click.option("--until", help="Last day, YYYY-MM-DD, included.")
@_archive_option("read")
@click.option(
    "-o",
    "--output",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The EPUB file to write.",
)
@click.option(
    "--vertical/--horizontal", default=None, help="Vertical writing (config: epub.vertical)."
)
@click.option("--grayscale/--color", default=None, help="Gray pictures (config: epub.grayscale).")
@_jobs_option("reading and cleaning INPUT files, and a large book's pages")
@click.pass_context
def epub(
    ctx: click.Context,
    inputs: tuple[str, ...],
    week: str | None,
    since: str | None,
    until: str | None,
    archive: Path | None,
    out_path: Path,
    vertical: bool | None,
    grayscale: bool | None,
    jobs: int | None,
) -> int:
    """Build an EPUB digest: a week from the archive, or the given INPUT files.

    \b
    Examples:
      feedx-convert epub --week last -o digest.epub
      feedx-convert epub --week 2024-W21 -o 2024-W21.epub
      feedx-convert epub --since 2024-05-20 --until 2024-05-22 -o three-days.epub
      feedx-convert epub examples/*.txt -o examples.epub
    """
    config = _config(ctx)
    first, last = _day(since), _day(until)
    if week and (first or last):
        raise click.UsageError("give --week or --since/--until, not both")
    if (first is None) != (last is None):
        raise click.UsageError("--since and --until go together")
    try:
        if week:
            period: Period | None = iso_week(week, date.today())
        elif first and last:
            period = date_range(first, last)
        else:
            period = None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    job = pipeline.EpubJob(
        out_path=out_path,
        inputs=inputs,
        period=period,
        archive=archive,
        vertical=vertical,
        grayscale=grayscale,
        jobs=_jobs(jobs),
    )
    outcome = pipeline.build_epub(job, config)
    if outcome.written or outcome.unchanged:
        size = out_path.stat().st_size / 1e6
        done = "wrote" if outcome.written else "up to date:"
        logging.getLogger("convert").info("%s %s (%.1f MB)", done, out_path, size)
    return EXIT_INPUT_FAILED if outcome.failed or not _produced(outcome) else EXIT_OK


@cli.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="The job's config file (same as feedx-convert -c).",
)
@_archive_option()
@click.option("--dry-run", is_flag=True, help="Write nothing; show what would change.")
@_jobs_option("reading and cleaning, and a large EPUB's pages")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no summary.")
@click.option("-v", "--verbose", is_flag=True, help="Say more.")
@click.pass_context
def run(
    ctx: click.Context,
    config_path: Path | None,
    archive: Path | None,
    dry_run: bool,
    jobs: int | None,
    quiet: bool,
    verbose: bool,
) -> int:
    """The main job: read the config's sources into the archive, write its outputs.

    Exit code 0 when all went well, 1 when some input or output failed (the rest
    is still written), 2 for a config or usage error.

    \b
    Examples:
      feedx-convert run                       # the shipped job on examples/
      feedx-convert run -c ~/news.yaml -q     # from cron
      feedx-convert run -c ~/news.yaml --dry-run
    """
    if config_path is not None:
        ctx.obj = load_config(config_path)
    # A run tells what it does, phase by phase, unless -q (here or before `run`).
    quiet = quiet or ctx.meta.get("verbosity", 0) < 0
    _setup_logging(-1 if quiet else 2 if verbose else 1)
    config = _config(ctx)
    from convert.job import RunOptions, run_job

    options = RunOptions(archive=archive, dry_run=dry_run, jobs=jobs or 0)
    try:
        report = run_job(config, options, progress=_phase if _on_terminal() else None)
    except ConvertError as error:
        click.echo(f"error: {printable(str(error))}", err=True)
        return EXIT_INPUT_FAILED
    if not quiet:
        _summary(report, dry_run)
    return EXIT_INPUT_FAILED if report.failed else EXIT_OK


def _phase(label: str, total: int) -> Callable[[], None]:
    """A rich progress bar for one phase; returns the function that advances it."""
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=total)
    bar.start()

    def advance() -> None:
        bar.advance(task)
        if bar.finished:
            bar.stop()

    if total == 0:
        bar.stop()
    return advance


def _summary(report: JobReport, dry_run: bool) -> None:
    """Per source: new, updated, unchanged, failed; per output: path, size, what changed."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    sources = Table("source", "new", "updated", "unchanged", "failed", title="sources")
    for row in report.sources:
        sources.add_row(
            row.name, str(row.new), str(row.updated), str(row.unchanged), str(row.failed)
        )
    console.print(sources)
    verb = "would write" if dry_run else "written"
    outputs = Table("output", "path", "size", verb, "unchanged", "status", title="outputs")
    for out in report.outputs:
        outputs.add_row(
            out.kind,
            str(out.path),
            _size(out.size),
            str(out.written),
            str(out.unchanged),
            "failed" if out.failed else "ok",
        )
    console.print(outputs)
    if not report.changed and not report.failed:
        console.print("nothing changed: every output is up to date")


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


@cli.group(name="archive")
def archive_group() -> None:
    """Look into the archive."""


@archive_group.command()
@_archive_option()
@click.pass_context
def stats(ctx: click.Context, archive: Path | None) -> int:
    """Count the archived articles per source and ISO week.

    \b
    Example:
      feedx-convert archive stats
    """
    config = _config(ctx)
    path = pipeline.archive_path(config, archive)
    if not path.exists():
        raise ConvertError(str(path), "no archive yet: run `feedx-convert ingest` first")
    with pipeline.open_archive(path, config) as opened:
        rows = opened.stats()
    from rich.console import Console
    from rich.table import Table

    table = Table("source", "week", "articles", title=str(path))
    for row in rows:
        table.add_row(row.source, row.week, str(row.articles))
    table.add_row("all", "", str(sum(row.articles for row in rows)), style="bold")
    Console(soft_wrap=True).print(table)
    return EXIT_OK


@cli.command()
@click.argument("file")
@click.option("--raw", is_flag=True, help="Show the article as read, before cleaning.")
@click.pass_context
def inspect(ctx: click.Context, file: str, raw: bool) -> int:
    """Print the normalized Article of FILE as JSON.

    \b
    Example:
      feedx-convert inspect examples/nyt-putin-harbin.txt
    """
    config = _config(ctx)
    if raw:
        data = pipeline.read_bytes(file, config)
        articles = list(sniff_reader(data, file)(data, file, config).articles)
    else:
        articles = pipeline.read_articles(file, config)
    shown = [to_json(article) for article in articles]
    json.dump(shown[0] if len(shown) == 1 else shown, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="feedx-convert",
            standalone_mode=False,
        )
    except click.exceptions.Exit as done:  # --help, --version
        return int(done.exit_code)
    except click.ClickException as error:
        error.show()
        return EXIT_USAGE
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_USAGE
    except ConfigError as error:
        click.echo(f"error: {printable(str(error))}", err=True)
        return EXIT_USAGE
    except ConvertError as error:  # from commands that take a single input
        click.echo(f"error: {printable(str(error))}", err=True)
        return EXIT_INPUT_FAILED
    except BrokenPipeError:
        return EXIT_OK  # `feedx-convert markdown a.txt | head` is fine
    return int(result) if isinstance(result, int) else EXIT_OK
