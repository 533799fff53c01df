"""The command line: parse, load the config, build the plan, run it, tell what it did.

Every command is a plan (`plan.py`) run by the one orchestrator (`run.run_plan`): the
conversions have one output each, `ingest` none, `run` the config's. Exit codes: 0 all
good; 1 some input or output failed (the others were still done); 2 a usage or config
error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from convert import __version__
from convert.config import Config, load_config
from convert.errors import ConfigError, ConvertError
from convert.fsutil import stdout_is_terminal, write_stdout
from convert.script import SCRIPTS
from convert.text import printable
from convert.writers import FEED_FORMATS

if TYPE_CHECKING:
    from convert.config import Target
    from convert.plan import Plan
    from convert.report import RunReport

# The orchestrator, rich and each output's writers are imported where used: a
# conversion in a pipe needs no rich, and start-up is a third of a small run.

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
STDOUT = "-"


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


_script_option = click.option(
    "--script",
    type=click.Choice(SCRIPTS),
    default="keep",
    show_default=True,
    help="Show Chinese articles in this script, converting the others (OpenCC).",
)


def _jobs(jobs: int | None) -> int:
    return jobs or os.cpu_count() or 1


class _TerminalProgress:
    """Every phase of a run as a bar on one rich display, on a terminal only."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._started = False

    def __call__(self, label: str, total: int) -> Callable[[], None]:
        """A phase of `total` steps; returns what marks one step done."""
        if not self._started:
            self._bars.start()
            self._started = True
        task = self._bars.add_task(label, total=total)
        left = total

        def advance() -> None:
            nonlocal left
            self._bars.advance(task)
            left -= 1
            if left == 0:  # a finished phase makes room for the next one
                self._bars.remove_task(task)

        return advance

    def close(self) -> None:
        """Take the display away (before the summary is printed)."""
        if self._started:
            self._bars.stop()


def _execute(plan: Plan) -> RunReport:
    """Run `plan`, with progress bars on a terminal."""
    from convert.run import run_plan

    progress = _TerminalProgress() if _on_terminal() else None
    try:
        return run_plan(plan, progress)
    finally:
        if progress is not None:
            progress.close()


def _plan(
    ctx: click.Context,
    inputs: tuple[str, ...],
    target: tuple[str, Target] | None,
    *,
    archive: Path | None = None,
    jobs: int | None = None,
    clean: bool = True,
) -> Plan:
    from convert.plan import command_plan

    return command_plan(
        _config(ctx), inputs, target, archive=archive, jobs=_jobs(jobs), clean=clean
    )


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

    An INPUT or SOURCE is a file, a folder (its files), a quoted glob, an http(s) URL,
    an OPML list of feeds, or - for standard input.

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
    help="Folder for one .md per article (needed for several articles); - for stdout.",
)
@click.option(
    "--download-images",
    is_flag=True,
    help="Save pictures in OUTPUT/assets and link them relatively.",
)
@_script_option
@_jobs_option("reading, cleaning and rendering")
@click.pass_context
def markdown(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out_dir: str | None,
    download_images: bool,
    script: str,
    jobs: int | None,
) -> int:
    """Convert articles to Markdown with YAML front matter (`-` reads standard input).

    \b
    Examples:
      feedx-convert markdown article.txt > article.md
      feedx-convert markdown examples/ -o out/markdown --download-images
    """
    from convert.config import MarkdownTarget

    folder = out_dir or STDOUT
    if folder == STDOUT:
        if len(inputs) > 1:
            raise click.UsageError("several inputs need -o/--output DIR")
        if download_images:
            raise click.UsageError("--download-images needs -o/--output DIR")
    target = MarkdownTarget(folder=folder, download_images=download_images, script=script)
    report = _execute(_plan(ctx, inputs, ("markdown", target), jobs=jobs))
    return EXIT_FAILED if report.failed else EXIT_OK


@cli.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "out_path",
    required=True,
    help="The feed file to write (merged with when it exists); - for stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FEED_FORMATS)),
    help="Feed format; by default from the output's ending (.atom, .json), else rss.",
)
@click.option("--self-url", default="", help="Where the feed will be published.")
@click.option(
    "--title",
    default="",
    help="The feed's title (default: the one feed's own, else feedx-convert).",
)
@click.option(
    "--link",
    default="",
    help="The home page it belongs to (default: the one feed's own, else --self-url).",
)
@_script_option
@_jobs_option("reading and cleaning")
@click.pass_context
def feed(
    ctx: click.Context,
    sources: tuple[str, ...],
    out_path: str,
    fmt: str | None,
    self_url: str,
    title: str,
    link: str,
    script: str,
    jobs: int | None,
) -> int:
    """Republish feeds, feedx articles or HTML pages as one cleaned feed.

    \b
    Examples:
      feedx-convert feed https://feedx.net/rss/nytimes.xml -o public/nytimes.xml
      feedx-convert feed examples/feedx-nytimes.xml examples/*.txt -o out/feed.atom
    """
    from convert.config import FeedTarget

    target = FeedTarget(
        path=out_path,
        format=fmt or _format_from_ending(out_path),
        self_url=self_url,
        title=title,
        link=link,
        script=script,
    )
    report = _execute(_plan(ctx, sources, ("feed", target), jobs=jobs))
    return EXIT_FAILED if report.failed or not report.outputs[0].produced else EXIT_OK


def _format_from_ending(path: str) -> str:
    return {".atom": "atom", ".json": "json"}.get(Path(path).suffix.lower(), "rss")


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
    from convert.plan import archive_path

    path = archive_path(_config(ctx), archive)
    report = _execute(_plan(ctx, sources, None, archive=path, jobs=jobs))
    logging.getLogger("convert").info(
        "%s: %d new, %d updated, %d unchanged",
        path,
        sum(row.new for row in report.sources),
        sum(row.updated for row in report.sources),
        sum(row.unchanged for row in report.sources),
    )
    return EXIT_FAILED if report.failed else EXIT_OK


@cli.command()
@click.argument("inputs", nargs=-1)
@click.option(
    "--week",
    help="latest, last, all or an ISO week (2024-W21); default: last, or all of the INPUTs.",
)
@click.option("--since", default="", help="First day, YYYY-MM-DD (with --until).")
@click.option("--until", default="", help="Last day, YYYY-MM-DD, included.")
@_archive_option("read")
@click.option("-o", "--output", "out_path", required=True, help="The EPUB file to write.")
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
    since: str,
    until: str,
    archive: Path | None,
    out_path: str,
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
    from convert.config import EpubTarget
    from convert.period import parse_period
    from convert.plan import archive_path

    if out_path.strip() == STDOUT:
        raise click.UsageError("an EPUB is a file: give its path with -o, not - (standard output)")
    if week is None and not (since or until):
        week = "all" if inputs else "last"
    try:
        parse_period(week or "", since, until)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    target = EpubTarget(
        path=out_path,
        week=week or "",
        since=since,
        until=until,
        vertical=vertical,
        grayscale=grayscale,
    )
    # Without INPUTs the book is the archive's; with them, theirs.
    store = None if inputs else archive_path(_config(ctx), archive)
    report = _execute(_plan(ctx, inputs, ("epub", target), archive=store, jobs=jobs))
    return EXIT_FAILED if report.failed or not report.outputs[0].produced else EXIT_OK


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
    from convert.plan import plan_of_config

    plan = plan_of_config(_config(ctx), archive=archive, dry_run=dry_run, jobs=_jobs(jobs))
    report = _execute(plan)
    if not quiet:
        from convert.summary import print_summary

        print_summary(report, on_terminal=stdout_is_terminal())
    return EXIT_FAILED if report.failed else EXIT_OK


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
    from convert.plan import archive_path, settings_of
    from convert.summary import print_stats

    config = _config(ctx)
    path = archive_path(config, archive)
    if not path.exists():
        raise ConvertError(str(path), "no archive yet: run `feedx-convert ingest` first")
    with settings_of(config).open_archive(path) as opened:
        rows = opened.stats()
    print_stats(path, rows)
    return EXIT_OK


@cli.command()
@click.argument("book", type=click.Path(path_type=Path))
@click.option(
    "--to", "addresses", multiple=True, required=True, help="An address to mail it to (repeatable)."
)
@click.pass_context
def send(ctx: click.Context, book: Path, addresses: tuple[str, ...]) -> int:
    """Mail BOOK (an EPUB) to each address, one message each, through the config's smtp.

    The book is checked first (`check`); a Kindle address takes up to kindle.max_mb,
    others smtp.max_mb. Exit code 0 when every message went, 1 when one did not.

    \b
    Example:
      FEEDX_SMTP_PASSWORD=… feedx-convert -c news.yaml send digest.epub --to me@kindle.com
    """
    from convert.config import check_address
    from convert.delivery.mail import NotSent, mailer

    for address in addresses:
        try:
            check_address(address)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--to") from None
    config = _config(ctx)
    post = mailer(config.smtp, config.kindle)
    failed = False
    for address in dict.fromkeys(addresses):
        try:
            post.send(book, address)
        except NotSent as error:
            click.echo(f"error: {printable(str(error))}", err=True)
            failed = True
            continue
        write_stdout(f"{printable(str(book))}: sent to {address}\n")
    return EXIT_FAILED if failed else EXIT_OK


@cli.command()
@click.argument("books", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def check(ctx: click.Context, books: tuple[Path, ...]) -> int:
    """Check each EPUB BOOK for what Send to Kindle rejects: one line per problem.

    Exit code 0 when every book is ready, 1 when one is not.

    \b
    Example:
      feedx-convert check digest-2024-W21.epub
    """
    from convert.delivery.kindle import BookUnreadable, KindleRules, preflight

    config = _config(ctx).kindle
    rules = KindleRules(frozenset(config.languages), int(config.max_mb * 1_000_000))
    failed = False
    for book in books:
        try:
            problems = preflight(book, rules)
        except (BookUnreadable, OSError) as error:
            problems = [
                str(error) if isinstance(error, BookUnreadable) else error.strerror or str(error)
            ]
        for problem in problems:
            click.echo(f"error: {printable(f'{book}: {problem}')}", err=True)
        if not problems:
            write_stdout(f"{printable(str(book))}: ready for Send to Kindle\n")
        failed = failed or bool(problems)
    return EXIT_FAILED if failed else EXIT_OK


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
    from convert.config import ArticlesTarget

    target = ArticlesTarget(path=STDOUT)
    report = _execute(_plan(ctx, (file,), ("articles", target), jobs=1, clean=not raw))
    return EXIT_FAILED if report.failed else EXIT_OK


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
    except click.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
        # The progress display is gone by now (`_execute`'s finally); what was being
        # written is a temp file that never took its name.
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except ConfigError as error:
        click.echo(f"error: {printable(str(error))}", err=True)
        return EXIT_USAGE
    except ConvertError as error:  # a lock held by another run, an unusable archive
        click.echo(f"error: {printable(str(error))}", err=True)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_OK  # `feedx-convert markdown a.txt | head` is fine
    return int(result) if isinstance(result, int) else EXIT_OK
