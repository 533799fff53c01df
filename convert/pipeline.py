"""The pipeline: read each input, clean it, write it. One bad input never stops the rest."""

from __future__ import annotations

import dataclasses
import io
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath

import PIL.Image

from convert.config import Config
from convert.download import Downloader
from convert.errors import ConvertError
from convert.fragments import parse_fragment, text_of
from convert.fsutil import write_atomic
from convert.model import Article, Channel, Feed
from convert.readers import Read, sniff_reader
from convert.transforms import clean
from convert.urls import host_of, is_web_url, stable_id
from convert.writers import feed_writer
from convert.writers.markdown import markdown_file_name, render_markdown
from convert.writers.rss import item_date

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
    if not data.strip():
        raise ConvertError(source, "empty file")
    return data


def read_source(source: str, config: Config, downloader: Downloader | None = None) -> Read:
    """Read one input with the reader its content calls for, and clean every article."""
    where = "<stdin>" if source == STDIN else source
    data = read_bytes(source, config, downloader)
    read = sniff_reader(data, where)(data, where, config)
    articles = tuple(clean(article, config) for article in read.articles)
    for article in articles:
        if not _has_content(article):
            log.warning(
                "%s: %r has no text after cleaning; kept with its title only",
                where,
                article.title[:60],
            )
    return dataclasses.replace(read, articles=articles)


def read_articles(source: str, config: Config) -> list[Article]:
    """The cleaned articles of one local input."""
    return list(read_source(source, config).articles)


def _has_content(article: Article) -> bool:
    return bool(article.images) or bool(text_of(parse_fragment(article.body)).strip())


def iter_reads(
    sources: Iterable[str], config: Config, outcome: Outcome, downloader: Downloader
) -> Iterator[tuple[str, Read]]:
    """Every input read and cleaned; a failing input is reported and skipped.

    The feeds an OPML list names are read in its place (one level: a list inside a
    list is not followed).
    """
    for source in sources:
        read = _read_or_report(source, config, outcome, downloader)
        if read is None:
            continue
        yield source, read
        for named in read.sources:
            inner = _read_or_report(named, config, outcome, downloader)
            if inner is not None:
                if inner.sources:
                    log.warning("%s: an OPML list inside an OPML list is not followed", named)
                yield named, inner


def _read_or_report(
    source: str, config: Config, outcome: Outcome, downloader: Downloader
) -> Read | None:
    try:
        return read_source(source, config, downloader)
    except ConvertError as error:
        log.error("%s", error)
        outcome.failed.append(source)
        return None


def iter_articles(
    sources: Iterable[str], config: Config, outcome: Outcome, downloader: Downloader
) -> Iterator[Article]:
    """Every article of every input."""
    for _source, read in iter_reads(sources, config, outcome, downloader):
        yield from read.articles


# --- Markdown -------------------------------------------------------------------------


def markdown_to_stdout(source: str, config: Config) -> Outcome:
    """Convert one input and print its Markdown."""
    outcome = Outcome()
    with Downloader(config.download) as downloader:
        articles = list(iter_articles([source], config, outcome, downloader))
    if len(articles) > 1:
        log.error(
            "%s: holds %d articles; give -o DIR to write one file each", source, len(articles)
        )
        outcome.failed.append(source)
    elif articles:
        sys.stdout.write(render_markdown(articles[0]))
    return outcome


def markdown_to_folder(
    sources: Iterable[str],
    out_dir: Path,
    config: Config,
    *,
    download_images: bool = False,
) -> Outcome:
    """Write one `.md` per article into `out_dir`, pictures into `out_dir/assets`."""
    outcome = Outcome()
    taken: set[str] = set()  # names given in this run; a rerun overwrites its own files
    with Downloader(config.download) as downloader:
        for article in iter_articles(sources, config, outcome, downloader):
            local = (
                _download_pictures(article, out_dir, downloader, outcome)
                if (download_images)
                else {}
            )
            path = out_dir / markdown_file_name(article, taken)
            if _write(path, render_markdown(article, local), outcome):
                outcome.written.append(path)
    return outcome


def _write(path: Path, data: bytes | str, outcome: Outcome) -> bool:
    try:
        write_atomic(path, data)
    except OSError as error:
        log.error("%s: cannot write: %s", path, error.strerror or error)
        outcome.failed.append(str(path))
        return False
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
        path = out_dir / ASSETS / name
        if not path.exists():
            if not _write(path, fetched.content, outcome):
                continue
            outcome.written.append(path)
        local[image.url] = f"{ASSETS}/{name}"
    return local


def picture_ending(content: bytes, url: str) -> str:
    """The file ending for a downloaded picture, judged by its bytes, not its name."""
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


def publish_feed(
    sources: Iterable[str], job: FeedJob, config: Config, *, now: datetime | None = None
) -> Outcome:
    """Read every source, merge with the existing output, and write the feed."""
    outcome = Outcome()
    writer = feed_writer(job.format)
    now = now or datetime.now(UTC)
    reads: list[tuple[str, Read]] = []
    with Downloader(config.download) as downloader:
        for source, read in iter_reads(sources, config, outcome, downloader):
            warn_if_stale(source, read, config, now)
            reads.append((source, read))
    if not reads:
        return outcome
    fresh = [article for _source, read in reads for article in read.articles]
    old = _existing_items(job.out_path, config)
    articles = merge_items(fresh, old, config.feed.max_items)
    try:
        channel = _channel(reads, job, config, articles)
    except ConvertError as error:
        log.error("%s", error)
        outcome.failed.append(str(job.out_path))
        return outcome
    feed = Feed(channel=channel, articles=articles)
    if _write(job.out_path, writer(feed), outcome):
        outcome.written.append(job.out_path)
    return outcome


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
    fresh: Iterable[Article], old: Iterable[Article], max_items: int
) -> tuple[Article, ...]:
    """Newest first, one item per canonical URL (a fresh copy wins), at most `max_items`."""
    merged: dict[str, Article] = {}
    for article in old:
        merged[article.canonical_url or article.id] = article
    for article in fresh:
        merged[article.canonical_url or article.id] = article
    ordered = sorted(merged.values(), key=lambda a: (item_date(a), a.id), reverse=True)
    return tuple(ordered[:max_items])


def _existing_items(path: Path, config: Config) -> list[Article]:
    """The items of the feed already at `path`, to keep those the sources dropped."""
    if not path.exists():
        return []
    try:
        return read_articles(str(path), config)
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
