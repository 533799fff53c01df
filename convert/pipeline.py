"""The pipeline: read each input, clean it, write it. One bad input never stops the rest."""

from __future__ import annotations

import codecs
import dataclasses
import io
import itertools
import logging
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from convert.config import Config
from convert.download import Downloader, user_cache_dir
from convert.errors import ConvertError
from convert.fragments import read_fragment, text_of
from convert.fsutil import FileBatch, write_if_changed
from convert.model import Article, Channel, Digest, Feed
from convert.period import Period, covering, iso_week
from convert.readers import Read, sniff_reader
from convert.text import printable
from convert.transforms import clean
from convert.urls import host_of, is_web_url, stable_id, story_key
from convert.workers import worker_pool
from convert.writers import feed_writer
from convert.writers.html import article_summary
from convert.writers.rss import item_date

if TYPE_CHECKING:
    from convert.archive import Archive, IngestCounts
    from convert.pictures import Picture

# Each command imports only its own writer where it is used (Markdown: bs4; EPUB:
# ebooklib and Pillow; the archive: sqlite3): start-up is a third of a small run.

log = logging.getLogger(__name__)

STDIN = "-"
ASSETS = "assets"
# Picture formats a Markdown viewer shows, by Pillow's name, with their file ending.
_PICTURE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}


@dataclass
class Outcome:
    """What a run did: files written and inputs that failed."""

    written: list[Path] = field(default_factory=list)
    """Files written, in order."""

    unchanged: list[Path] = field(default_factory=list)
    """Files that already held exactly what would be written, left untouched."""

    failed: list[str] = field(default_factory=list)
    """Inputs (or downloads) that could not be converted, as named by the user."""


# --- reading --------------------------------------------------------------------------


def read_bytes(source: str, config: Config, downloader: Downloader | None = None) -> bytes:
    """The bytes of a file, a URL, or standard input for `-`, within the size limit."""
    limit = config.max_input_bytes
    if is_web_url(source):
        if downloader is None:
            raise ConvertError(source, "URLs are not read here")
        data = downloader.get(source, max_bytes=limit, cache=True).content
    else:
        try:
            if source == STDIN:
                data = sys.stdin.buffer.read(limit + 1)
            else:
                with open(source, "rb") as handle:
                    data = handle.read(limit + 1)
        except FileNotFoundError:
            raise ConvertError(source, "no such file") from None
        except IsADirectoryError:
            raise ConvertError(source, "is a folder, not a file") from None
        except OSError as error:
            raise ConvertError(source, f"cannot read: {error.strerror}") from None
        if len(data) > limit:
            raise ConvertError(source, f"larger than max_input_bytes ({limit} bytes)")
    if not _without_bom(data).replace(b"\x00", b"").strip():  # UTF-16 white space has NULs
        raise ConvertError(source, "empty file")
    return data


def _without_bom(data: bytes) -> bytes:
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16):
        if data.startswith(bom):
            return data[len(bom) :]
    return data


def read_source(
    source: str,
    config: Config,
    downloader: Downloader | None = None,
    *,
    ours: bool = False,
    finish: Callable[[Article], Article] | None = None,
) -> Read:
    """Read one input with the reader its content calls for, and clean every article.

    `ours` marks a file this tool wrote (a feed merged with): what was said about its
    articles when they were read the first time is not said again. `finish` is applied
    to each article right after its cleaning, while its parsed body is still at hand.
    """
    where = "<stdin>" if source == STDIN else source
    data = read_bytes(source, config, downloader)
    read = sniff_reader(data, where)(data, where, config)
    articles = []
    for raw in read.articles:
        article = clean(raw, config)
        if not ours and not _has_content(article):
            log.warning(
                "%s: %r has no text after cleaning; kept with its title only",
                where,
                article.title[:60],
            )
        articles.append(finish(article) if finish else article)
    return dataclasses.replace(read, articles=tuple(articles))


def read_articles(source: str, config: Config) -> list[Article]:
    """The cleaned articles of one local input."""
    return list(read_source(source, config).articles)


def _has_content(article: Article) -> bool:
    return bool(article.images) or bool(text_of(read_fragment(article.body)).strip())


def iter_reads(
    sources: Iterable[str],
    config: Config,
    outcome: Outcome,
    downloader: Downloader,
    *,
    jobs: int = 1,
    finish: Callable[[Article], Article] | None = None,
) -> Iterator[tuple[str, Read]]:
    """Every input read and cleaned, in order; a failing input is reported and skipped.

    The feeds an OPML list names are read in its place (one level: a list inside a
    list is not followed). With `jobs` above 1, inputs are read over that many worker
    processes (each with its own downloader). `finish`, when given, is applied to each
    cleaned article where it was read (see `read_source`): in the worker.
    """
    if jobs > 1:
        task = partial(_reads_of, config=config, finish=finish)
        for reads, failed in parallel_map(task, sources, jobs):
            outcome.failed.extend(failed)
            yield from reads
        return
    for source in sources:
        read = _read_or_report(source, config, outcome, downloader, finish)
        if read is None:
            continue
        yield source, read
        for named in read.sources:
            inner = _read_or_report(named, config, outcome, downloader, finish)
            if inner is not None:
                if inner.sources:
                    log.warning("%s: an OPML list inside an OPML list is not followed", named)
                yield named, inner


def _reads_of(
    source: str, config: Config, finish: Callable[[Article], Article] | None = None
) -> tuple[list[tuple[str, Read]], list[str]]:
    """One input's reads (in a worker process), and what failed."""
    outcome = Outcome()
    with Downloader(config.download) as downloader:
        reads = list(iter_reads([source], config, outcome, downloader, finish=finish))
    return reads, outcome.failed


def _read_or_report(
    source: str,
    config: Config,
    outcome: Outcome,
    downloader: Downloader,
    finish: Callable[[Article], Article] | None = None,
) -> Read | None:
    try:
        return read_source(source, config, downloader, finish=finish)
    except ConvertError as error:
        log.error("%s", error)
        outcome.failed.append(source)
        return None


def iter_articles(
    sources: Iterable[str],
    config: Config,
    outcome: Outcome,
    downloader: Downloader,
    *,
    jobs: int = 1,
) -> Iterator[Article]:
    """Every article of every input."""
    for _source, read in iter_reads(sources, config, outcome, downloader, jobs=jobs):
        yield from read.articles


# --- Markdown -------------------------------------------------------------------------


def markdown_to_stdout(source: str, config: Config) -> Outcome:
    """Convert one input and print its Markdown."""
    from convert.writers.markdown import render_markdown

    outcome = Outcome()
    with Downloader(config.download) as downloader:
        articles = list(iter_articles([source], config, outcome, downloader))
    if len(articles) > 1:
        log.error(
            "%s: holds %d articles; give -o DIR to write one file each", source, len(articles)
        )
        outcome.failed.append(source)
    elif articles:
        text = render_markdown(articles[0])
        # On a terminal, what the article brings must not act on it (bidi overrides).
        sys.stdout.write(printable(text, keep_lines=True) if sys.stdout.isatty() else text)
    return outcome


def markdown_to_folder(
    sources: Iterable[str],
    out_dir: Path,
    config: Config,
    *,
    download_images: bool = False,
    jobs: int = 1,
    tick: Callable[[], None] | None = None,
) -> Outcome:
    """Write one `.md` per article into `out_dir`, pictures into `out_dir/assets`.

    With `jobs` above 1 and no pictures to download, reading, cleaning and rendering
    are spread over that many processes; names and writes stay in this one, in order.
    `tick` is called once per input done (a progress bar).
    """
    from convert.writers.markdown import unique_file_name

    outcome = Outcome()
    inputs = list(sources)
    if jobs > 1 and not download_images:
        taken: set[str] = set()
        first_of: dict[str, str] = {}  # copy_key → the first article's address
        with FileBatch() as batch:
            for rendered, failed in parallel_map(
                partial(_render_markdown, config=config), inputs, jobs
            ):
                outcome.failed.extend(failed)
                for one in rendered:
                    if _is_copy(one.key, one, first_of):
                        continue
                    path = out_dir / unique_file_name(one.stem, taken)
                    write_output(path, one.text, outcome, batch)
                    _commit(batch, outcome, at_least=256)
                if tick:
                    tick()
            _commit(batch, outcome)
        return outcome
    with Downloader(config.download) as downloader, FileBatch() as batch:
        read = iter_articles(_ticking(inputs, tick), config, outcome, downloader)
        firsts: dict[str, str] = {}
        articles = (a for a in read if not _is_copy(copy_key(a, config), a, firsts))
        pictures = downloader if download_images else None
        for path, text in markdown_files(articles, out_dir, pictures, outcome):
            write_output(path, text, outcome, batch)
            _commit(batch, outcome, at_least=256)
        _commit(batch, outcome)
    return outcome


def _commit(batch: FileBatch, outcome: Outcome, at_least: int = 0) -> None:
    """Move the batch's files into place once it holds `at_least` files (so that they
    appear as the run goes on); a file that cannot be moved is a failed output."""
    if len(batch) < max(at_least, 1):
        return
    for path, error in batch.commit():
        log.error("%s: cannot write: %s", path, error.strerror or error)
        if path in outcome.written:
            outcome.written.remove(path)
        outcome.failed.append(str(path))


# Below this many inputs, starting worker processes costs more than it saves.
POOL_THRESHOLD = 8


def _ticking(items: list[str], tick: Callable[[], None] | None) -> Iterator[str]:
    for item in items:
        yield item
        if tick:
            tick()


_T = TypeVar("_T")
_I = TypeVar("_I")


def parallel_map(task: Callable[[_I], _T], inputs: Iterable[_I], jobs: int) -> Iterator[_T]:
    """`task(input)` for every input over `jobs` processes, results in input order.

    Inputs go out in small batches, a few per worker ahead of the results taken, so
    that an input iterable with a progress bar advances as the work does. With one
    job or few inputs the work is done here: starting workers would cost more.
    """
    items = iter(inputs)
    first = list(itertools.islice(items, POOL_THRESHOLD))
    if jobs <= 1 or len(first) < POOL_THRESHOLD:
        yield from map(task, itertools.chain(first, items))
        return
    with worker_pool(jobs) as pool:
        pending: deque[Future[tuple[list[_T], list[logging.LogRecord]]]] = deque(
            [pool.submit(_each, task, first)]
        )
        for batch in _batches(items, _BATCH):
            pending.append(pool.submit(_each, task, batch))
            if len(pending) > 2 * jobs:
                yield from _told(pending.popleft().result())
        while pending:
            yield from _told(pending.popleft().result())


def _told(done: tuple[list[_T], list[logging.LogRecord]]) -> list[_T]:
    results, records = done
    replay_logs(records)
    return results


# Inputs per task sent to a worker: enough to amortize the round trip, few enough to
# keep both workers busy to the end.
_BATCH = 8


def _batches(items: Iterator[_I], size: int) -> Iterator[list[_I]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _each(task: Callable[[_I], _T], items: list[_I]) -> tuple[list[_T], list[logging.LogRecord]]:
    return with_logs(lambda: [task(item) for item in items])


def with_logs(work: Callable[[], _T]) -> tuple[_T, list[logging.LogRecord]]:
    """`work()` in a worker process, with what it logged kept to be told by the parent.

    A worker's own stderr is not the parent's when that was redirected, and its lines
    would cut through the parent's progress bar; `replay_logs` tells them in order.
    """
    records: list[logging.LogRecord] = []
    handler = _KeepRecords(records)
    logger = logging.getLogger("convert")
    saved = logger.handlers[:], logger.propagate
    logger.handlers[:], logger.propagate = [handler], False
    try:
        return work(), records
    finally:
        logger.handlers[:], logger.propagate = saved


def replay_logs(records: Iterable[logging.LogRecord]) -> None:
    """Tell what a worker logged, through this process's handlers."""
    for record in records:
        logging.getLogger(record.name).handle(record)


class _KeepRecords(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        # Formatted here: the arguments may not survive pickling back to the parent.
        record.msg, record.args, record.exc_info, record.exc_text = (
            record.getMessage(),
            None,
            None,
            None,
        )
        self.records.append(record)


@dataclass(frozen=True, slots=True)
class _Rendered:
    """What a worker sends back for one article: only what the writing side needs."""

    key: str
    """`copy_key`: two articles with one key are one article."""
    url: str
    """The article's address (named when a copy is skipped)."""
    title: str
    """Its title, named instead of an empty address."""
    stem: str
    """The file name before it is made unique (`markdown_file_stem`)."""
    text: str
    """The whole Markdown file."""


def _render_markdown(source: str, config: Config) -> tuple[list[_Rendered], list[str]]:
    """One input's articles as Markdown (in a worker process), and what failed."""
    from convert.writers.markdown import markdown_file_stem, render_markdown

    outcome = Outcome()
    with Downloader(config.download) as downloader:
        articles = list(iter_articles([source], config, outcome, downloader))
    rendered = [
        _Rendered(
            key=copy_key(article, config),
            url=article.url,
            title=article.title,
            stem=markdown_file_stem(article),
            text=render_markdown(article),
        )
        for article in articles
    ]
    return rendered, outcome.failed


def copy_key(article: Article, config: Config) -> str:
    """What two copies of one article share: the canonical URL without its scheme (http
    and https copies are one), every feedx mirror counting as one host."""
    key = article.canonical_url or article.id
    host = host_of(key)
    if not host:
        return key
    rest = key.split(host, 1)[1]
    if any(host == h or host.endswith(f".{h}") for h in config.promo.hosts):
        return f"feedx{rest}"
    return f"{host}{rest}"


def _is_copy(key: str, article: Article | _Rendered, first_of: dict[str, str]) -> bool:
    """True, with a warning, when an article with the same `copy_key` came before.

    `first_of` maps each key to the first article's address (not to the article: at
    10,000 articles, holding them all would cost hundreds of MB).
    """
    if key not in first_of:
        first_of[key] = article.url
        return False
    log.warning(
        "%s: the same article as %s; written once", article.url or article.title, first_of[key]
    )
    return True


def markdown_files(
    articles: Iterable[Article], out_dir: Path, downloader: Downloader | None, outcome: Outcome
) -> Iterator[tuple[Path, str]]:
    """Each article's Markdown file and text; with a downloader, pictures go to assets/."""
    from convert.writers.markdown import markdown_file_name, render_markdown

    taken: set[str] = set()  # names given in this run; a rerun overwrites its own files
    for article in articles:
        local = _download_pictures(article, out_dir, downloader, outcome) if downloader else {}
        yield out_dir / markdown_file_name(article, taken), render_markdown(article, local)


Writer = Callable[[Path, bytes | str, "Outcome"], bool]
"""How outputs reach the disk: `write_output`, or a dry run's stand-in."""


def write_output(
    path: Path, data: bytes | str, outcome: Outcome, batch: FileBatch | None = None
) -> bool:
    """Write `path` unless it already holds `data` (a rerun touches nothing); False on error.

    With `batch`, the file appears when the batch is committed.
    """
    try:
        changed = write_if_changed(path, data, batch)
    except OSError as error:
        log.error("%s: cannot write: %s", path, error.strerror or error)
        outcome.failed.append(str(path))
        return False
    (outcome.written if changed else outcome.unchanged).append(path)
    return True


def _download_pictures(
    article: Article, out_dir: Path, downloader: Downloader, outcome: Outcome
) -> dict[str, str]:
    """Fetch the article's pictures into `assets/`; map each URL to its relative path."""
    local: dict[str, str] = {}
    for image in article.images:
        if image.url in local:
            continue
        try:
            fetched = downloader.get(image.url)
            ending = picture_ending(fetched.content, image.url)
        except ConvertError as error:
            # The Markdown keeps the web address, so the article is still whole.
            log.error("%s (picture of %s; its web address is kept)", error, article.url)
            outcome.failed.append(image.url)
            continue
        name = f"{stable_id(image.url)}{ending}"
        if not write_output(out_dir / ASSETS / name, fetched.content, outcome):
            continue
        local[image.url] = f"{ASSETS}/{name}"
    return local


def picture_ending(content: bytes, url: str) -> str:
    """The file ending for a downloaded picture, judged by its bytes, not its name."""
    import PIL.Image

    try:
        with PIL.Image.open(io.BytesIO(content)) as picture:
            kind = picture.format or ""
    except (OSError, PIL.Image.DecompressionBombError, ValueError):
        kind = ""
    if kind not in _PICTURE_FORMATS:
        raise ConvertError(url, "not a JPEG, PNG, GIF or WebP picture")
    return _PICTURE_FORMATS[kind]


# --- feeds ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedJob:
    """What `feedx-convert feed` was asked to write."""

    out_path: Path
    """The feed file to write (and to merge with when it exists)."""

    format: str
    """A name from `writers.FEED_WRITERS`: `rss`, `atom` or `json`."""

    self_url: str = ""
    """Where the feed will be published; the config's `feed.self_url` when empty."""

    title: str = ""
    """The feed's title; the first source's own title when empty."""

    jobs: int = 1
    """Worker processes that read and clean the sources."""


def publish_feed(
    sources: Iterable[str], job: FeedJob, config: Config, *, now: datetime | None = None
) -> Outcome:
    """Read every source, merge with the existing output, and write the feed."""
    outcome = Outcome()
    now = now or datetime.now(UTC)
    reads: list[tuple[str, Read]] = []
    with Downloader(config.download) as downloader:
        for source, read in iter_reads(
            sources, config, outcome, downloader, jobs=job.jobs, finish=with_summary
        ):
            warn_if_stale(source, read, config, now)
            reads.append((source, read))
    if reads:
        write_feed(reads, job, config, outcome)
    return outcome


def with_summary(article: Article) -> Article:
    """The article with the summary its feed item shows.

    Made where the article was read (in a worker process, with the body's parsed tree
    still at hand) instead of by the feed writer, which works alone after all reading.
    """
    if article.summary:
        return article
    return dataclasses.replace(article, summary=article_summary(article))


def write_feed(
    reads: list[tuple[str, Read]],
    job: FeedJob,
    config: Config,
    outcome: Outcome,
    *,
    max_items: int = 0,
    write: Writer | None = None,
) -> None:
    """Merge the articles of `reads` with the feed at `job.out_path` and write it."""
    fresh = [article for _source, read in reads for article in read.articles]
    old = _existing_items(job.out_path, config)
    limit = max_items or config.feed.max_items
    # Each article's key is worked out once (it parses the URL), by the article's
    # identity: every article here stays alive until the feed is written.
    keys = {id(article): copy_key(article, config) for article in (*old, *fresh)}
    articles = merge_items(fresh, old, limit, key=lambda article: keys[id(article)])
    written = {keys[id(article)] for article in articles}
    left_out = {k: a for a in fresh if (k := keys[id(a)]) not in written}
    if left_out:
        newest = max(item_date(article) for article in left_out.values())
        log.warning(
            "%s: %d items of the sources beyond max_items (%d) left out, the newest from %s",
            job.out_path,
            len(left_out),
            limit,
            newest.date().isoformat(),
        )
    try:
        channel = _channel(reads, job, config, articles)
    except ConvertError as error:
        log.error("%s", error)
        outcome.failed.append(str(job.out_path))
        return
    data = feed_writer(job.format)(Feed(channel=channel, articles=articles))
    (write or write_output)(job.out_path, data, outcome)


def warn_if_stale(source: str, read: Read, config: Config, now: datetime) -> None:
    """Warn when a feed's newest item is older than `feed.stale_after_days`."""
    if read.channel is None or not read.articles:
        return
    newest = max(item_date(article) for article in read.articles)
    age = now - newest
    if age > timedelta(days=config.feed.stale_after_days):
        log.warning(
            "%s: stale source: the newest item is %d days old (%s)",
            source,
            age.days,
            newest.date().isoformat(),
        )


def merge_items(
    fresh: Iterable[Article],
    old: Iterable[Article],
    max_items: int,
    key: Callable[[Article], str] | None = None,
) -> tuple[Article, ...]:
    """Newest first, one item per canonical URL or `key` (a fresh copy wins), max_items at most."""
    same = key or (lambda article: article.canonical_url or article.id)
    merged: dict[str, Article] = {}
    for article in old:
        merged[same(article)] = article
    for article in fresh:
        merged[same(article)] = article
    ordered = sorted(merged.values(), key=lambda a: (item_date(a), a.id), reverse=True)
    return tuple(ordered[:max_items])


def _existing_items(path: Path, config: Config) -> list[Article]:
    """The items of the feed already at `path`, to keep those the sources dropped."""
    if not path.exists():
        return []
    try:
        return list(read_source(str(path), config, ours=True).articles)
    except ConvertError as error:
        log.warning("%s; not merged with it, it will be replaced", error)
        return []


def _channel(
    reads: list[tuple[str, Read]], job: FeedJob, config: Config, articles: tuple[Article, ...]
) -> Channel:
    """The output channel: the first source's own, with fallbacks for what it lacks."""
    source, first = reads[0]
    own = first.channel or Channel(title="")
    home = own.link or (source if is_web_url(source) else "")
    if not home and articles and articles[0].source_host:
        home = f"https://{host_of(articles[0].url)}/"
    # A feed without a title is named after its address or file; article files
    # (no channel at all) after their publication.
    publication = articles[0].source_name if first.channel is None and articles else ""
    named_after = source if is_web_url(source) else PurePath(source).stem
    title = job.title or own.title or publication or named_after
    home = home or job.self_url or config.feed.self_url
    if not home:
        raise ConvertError(str(job.out_path), "no home page for the feed: give --self-url URL")
    languages = Counter(a.language for a in articles if a.language != "und")
    # Most common first; ties by name, so that the output does not depend on set order.
    common = sorted(languages.items(), key=lambda pair: (-pair[1], pair[0]))
    return Channel(
        title=title,
        link=home,
        description=own.description or title,
        language=own.language or (common[0][0] if common else ""),
        self_url=job.self_url or config.feed.self_url,
        updated=max((item_date(a) for a in articles), default=None),
    )


# --- archive and EPUB digest ------------------------------------------------------------


def archive_path(config: Config, override: Path | None = None) -> Path:
    """The archive file: `--archive`, else the config's, else the user's data folder."""
    from convert.archive import default_archive_path

    if override is not None:
        return override
    return Path(config.archive).expanduser() if config.archive else default_archive_path()


def open_archive(path: Path, config: Config) -> Archive:
    """The archive at `path`, with the job's zone and feedx's domains."""
    from convert.archive import Archive

    return Archive(path, zone=ZoneInfo(config.timezone), feedx_hosts=config.promo.hosts)


def ingest(
    sources: Iterable[str],
    path: Path,
    config: Config,
    *,
    now: datetime | None = None,
    jobs: int = 1,
) -> tuple[Outcome, IngestCounts]:
    """Read every source and store its articles in the archive, one transaction per source."""
    from convert.archive import IngestCounts

    outcome = Outcome()
    now = now or datetime.now(UTC)
    totals = IngestCounts(new=0, updated=0, unchanged=0)
    with open_archive(path, config) as archive, Downloader(config.download) as downloader:
        for source, read in iter_reads(sources, config, outcome, downloader, jobs=jobs):
            warn_if_stale(source, read, config, now)
            counts = archive.ingest(read.articles, now=now)
            totals = IngestCounts(
                new=totals.new + counts.new,
                updated=totals.updated + counts.updated,
                unchanged=totals.unchanged + counts.unchanged,
            )
    return outcome, totals


@dataclass(frozen=True, slots=True, kw_only=True)
class EpubJob:
    """What `feedx-convert epub` was asked to build."""

    out_path: Path
    """The EPUB file to write."""

    inputs: tuple[str, ...] = ()
    """Article files, feeds or URLs; when empty, the archive is read instead."""

    period: Period | None = None
    """The days to take from the archive (or to keep of the inputs)."""

    archive: Path | None = None
    """The archive to read; the config's when None."""

    vertical: bool | None = None
    """Vertical writing; the config's when None."""

    grayscale: bool | None = None
    """Gray pictures; the config's when None."""

    pictures: bool = True
    """Fetch and embed pictures; False leaves each as a link to the original."""

    jobs: int = 1
    """Worker processes that read and clean the inputs (see `iter_reads`), and that
    make a large book's pages (see `writers.epub`)."""


def build_epub(job: EpubJob, config: Config, *, now: datetime | None = None) -> Outcome:
    """Collect the period's stories, fetch their pictures, and write the digest."""
    outcome = Outcome()
    rendered = render_epub(job, config, outcome, now=now or datetime.now(UTC))
    if rendered is not None:
        write_output(job.out_path, rendered[0], outcome)
    return outcome


def render_epub(
    job: EpubJob, config: Config, outcome: Outcome, *, now: datetime
) -> tuple[bytes, Period] | None:
    """The digest's bytes and period; None (with the error logged) when there is nothing."""
    from convert.writers.cover import find_cjk_font
    from convert.writers.epub import EpubOptions, write_epub

    zone = ZoneInfo(config.timezone)
    settings = config.epub
    with Downloader(config.download) as downloader:
        if job.inputs:
            articles = list(iter_articles(job.inputs, config, outcome, downloader, jobs=job.jobs))
            articles = one_per_story(articles, settings.language, config)
        else:
            path = archive_path(config, job.archive)
            if not path.exists():
                log.error("%s: no archive yet: run `feedx-convert ingest` first", path)
                outcome.failed.append(str(path))
                return None
            with open_archive(path, config) as archive:
                period = job.period or iso_week("last", now.astimezone(zone).date())
                start, end = period.bounds(zone)
                articles = archive.stories_between(start, end, language=settings.language or None)
        dated = [a for a in articles if a.published or a.captured]
        for article in articles:
            if not (article.published or article.captured):
                log.warning("%s: no date; left out of the digest", article.url or article.title)
        if job.inputs and job.period is not None:
            dated = [a for a in dated if job.period.start <= _local_day(a, zone) <= job.period.end]
        if not dated:
            where = str(job.out_path)
            label = job.period.label if job.period else "the inputs"
            log.error("%s: no articles for %s; no digest written", where, label)
            outcome.failed.append(where)
            return None
        period = job.period or covering(_local_day(a, zone) for a in dated)
        digest = _digest(dated, period, settings.name, settings.language)
        pictures = _digest_pictures(digest, config, downloader, job) if job.pictures else {}
    font = Path(settings.font) if settings.font else find_cjk_font()
    vertical = settings.vertical if job.vertical is None else job.vertical
    data = write_epub(
        digest, pictures, EpubOptions(vertical=vertical, font_path=font, jobs=job.jobs)
    )
    budget = int(settings.budget_mb * 1_000_000)
    if len(data) > budget:
        log.warning(
            "%s: %.1f MB, over the %.0f MB budget even with pictures recompressed",
            job.out_path,
            len(data) / 1e6,
            settings.budget_mb,
        )
    return data, period


def _local_day(article: Article, zone: ZoneInfo) -> date:
    moment = article.published or article.captured
    assert moment is not None
    return moment.astimezone(zone).date()


def one_per_story(articles: Iterable[Article], language: str, config: Config) -> list[Article]:
    """Each story once: the edition in `language` when there is one, else the first seen."""
    chosen: dict[str, Article] = {}
    for article in articles:
        key = story_key(article.canonical_url or article.id, config.promo.hosts)
        if key not in chosen or (
            language and article.language == language and chosen[key].language != language
        ):
            chosen[key] = article
    return list(chosen.values())


def _digest(articles: list[Article], period: Period, name: str, language: str) -> Digest:
    """The digest in reading order: by day, then source, then time."""
    from convert.writers.epub import digest_identifier

    def order(article: Article) -> tuple[date, str, datetime]:
        moment = article.published or article.captured
        assert moment is not None
        return moment.date(), article.source_name, moment

    ordered = tuple(sorted(articles, key=lambda a: (*order(a), a.id)))
    languages = Counter(a.language for a in ordered if a.language != "und")
    common = sorted(languages.items(), key=lambda pair: (-pair[1], pair[0]))
    book_language = language or (common[0][0] if common else "und")
    return Digest(
        name=name,
        label=period.label,
        start=period.start,
        end=period.end,
        language=book_language,
        identifier=digest_identifier(name, period.label),
        modified=max(item_date(a) for a in ordered),
        articles=ordered,
    )


def _digest_pictures(
    digest: Digest, config: Config, downloader: Downloader, job: EpubJob
) -> dict[str, Picture]:
    """Every picture of the digest, fetched once, prepared, and fitted to the budget."""
    from convert.pictures import PictureOptions, fetch_to_budget

    settings = config.epub
    urls = list(dict.fromkeys(image.url for a in digest.articles for image in a.images))
    options = PictureOptions(
        max_width=settings.picture_width,
        max_height=settings.picture_height,
        grayscale=settings.grayscale if job.grayscale is None else job.grayscale,
        max_count=settings.max_pictures,
    )
    cache = Path(config.download.cache_dir) if config.download.cache_dir else user_cache_dir()
    # Text, styles and the cover are small beside the pictures; keep 2 MB for them.
    room = int(settings.budget_mb * 1_000_000) - 2_000_000
    return fetch_to_budget(urls, downloader, cache / "pictures", options, room)
