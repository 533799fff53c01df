"""One input through the front of the pipeline: bytes → reader → cleaning → preparing.

`read_input` reads one input (a file, URL or `-`) with the reader its content calls for,
follows the feeds an OPML list names (one level), cleans every article, and hands each
cleaned article, its body's tree still at hand, to every output's `prepare` (a feed
item's summary, a Markdown file's text). It runs wherever the run puts it: here, or in
a worker process (`run.py`); what it returns is small and picklable.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml.html import HtmlElement

from convert.cleaning import Cleaned, CleanOptions, clean, clean_channel
from convert.config import Download
from convert.errors import ConvertError
from convert.filters import ArticleFilter
from convert.fragments import text_of
from convert.model import Article, Channel, item_date
from convert.net.client import Downloader
from convert.readers import ReadOptions, sniff_reader
from convert.sources import display_name, read_bytes
from convert.text import has_text
from convert.urls import is_web_url

log = logging.getLogger(__name__)

Prepare = Callable[[Cleaned, Downloader], Any]
"""An output's work on one cleaned article where it was cleaned (picklable, module-level)."""


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How the inputs of one source are read and cleaned."""

    reading: ReadOptions
    """The readers' options, with the source's own rules over its sites'."""

    cleaning: CleanOptions
    """Cleaning's options, with the source's own rules over its sites'."""

    taken: ArticleFilter = field(default_factory=ArticleFilter)
    """Which of the source's articles are taken (include, exclude, max_age_days)."""


@dataclass(frozen=True, slots=True)
class ReadStage:
    """Everything `read_input` needs, built once per run and sent to each worker."""

    sources: tuple[SourceOptions, ...]
    """The ways the plan's sources are read, each once (inputs name theirs by index)."""

    max_input_bytes: int
    """Largest input read, in bytes."""

    net: Download
    """The downloader's limits (feeds given as URLs, and pictures)."""

    stale_after_days: int
    """Warn when a feed's newest item is older than this."""

    now: datetime
    """The time the run takes as now."""

    prepares: tuple[Prepare | None, ...] = ()
    """Each output's `prepare`, in the plan's order (None: that output needs none)."""

    clean: bool = True
    """False leaves the articles as their reader made them (`inspect --raw`)."""

    downloads_end: float | None = None
    """When the run's downloads end (seconds since the epoch), in every worker alike;
    None: `net.run_deadline` from the first download's downloader."""


@dataclass(frozen=True, slots=True)
class Item:
    """One cleaned article, with what each output prepared from it."""

    article: Article
    """The cleaned article."""

    prepared: tuple[Any, ...]
    """One value per output of the plan, in its order (None where it prepares nothing)."""


@dataclass(frozen=True, slots=True)
class ReadInput:
    """One input read: a file or URL, or a feed an OPML list named."""

    name: str
    """The input as named (a path, a URL, `-`)."""

    channel: Channel | None
    """The feed's own metadata, when the input is a feed."""

    items: tuple[Item, ...]
    """Its articles, in the input's order."""

    names: tuple[str, ...] = ()
    """Further inputs it names, to be read in its place (an OPML list's feeds)."""

    newest: datetime | None = None
    """The newest date of its dated articles; None when none is dated."""

    stale: bool = False
    """A feed whose newest dated item is older than `stale_after_days`."""

    filtered: int = 0
    """Its articles the source's filter left out."""

    @property
    def articles(self) -> tuple[Article, ...]:
        """The articles alone."""
        return tuple(item.article for item in self.items)


@dataclass(frozen=True, slots=True)
class InputDone:
    """What one input gave: its reads (several for an OPML list), and what failed."""

    reads: tuple[ReadInput, ...] = ()
    """The input itself, then the feeds it names."""

    failed: tuple[str, ...] = field(default=())
    """Inputs that could not be read, as named."""


def read_input(
    name: str, source: int, stage: ReadStage, downloader: Downloader, *, ours: bool = False
) -> InputDone:
    """Read, clean and prepare one input, read as `stage.sources[source]` says.

    A failing input is one error line; so is each failing feed an OPML list names, the
    others still read. `ours` marks a file this tool wrote (a feed merged with): what
    was said about its articles when they were first read is not said again.
    """
    options = stage.sources[source]
    reads: list[ReadInput] = []
    failed: list[str] = []
    first = _read_or_report(name, options, stage, downloader, ours, failed)
    if first is None:
        return InputDone(failed=tuple(failed))
    reads.append(first)
    for named in first.names:
        inner = _read_or_report(named, options, stage, downloader, ours, failed)
        if inner is None:
            continue
        if inner.names:
            log.warning("%s: an OPML list inside an OPML list is not followed", named)
        reads.append(inner)
    return InputDone(tuple(reads), tuple(failed))


def _read_or_report(
    name: str,
    options: SourceOptions,
    stage: ReadStage,
    downloader: Downloader,
    ours: bool,
    failed: list[str],
) -> ReadInput | None:
    try:
        return read_one(name, options, stage, downloader, ours)
    except ConvertError as error:
        log.error("%s", error)
        failed.append(name)
        return None


def read_one(
    name: str,
    options: SourceOptions,
    stage: ReadStage,
    downloader: Downloader,
    ours: bool = False,
) -> ReadInput:
    """One input read, cleaned and prepared, and the further inputs it names (an OPML
    list's); ConvertError when it cannot be read."""
    where = display_name(name)
    # A file of ours (a feed merged with) is never read through a link planted in its
    # place: its items would be published (a link to someone's private feed).
    data = read_bytes(name, stage.max_input_bytes, downloader, follow_links=not ours)
    read = sniff_reader(data, where)(data, where, options.reading)
    items = []
    filtered = 0
    for parsed in read.items:
        if not stage.clean:
            items.append(Item(parsed.article, (None,) * len(stage.prepares)))
            continue
        arrived_with_content = _has_content(parsed.article, parsed.body)
        cleaned = clean(
            parsed.article,
            options.cleaning.rules_for(parsed.article.source_host),
            parsed.body,
        )
        if (
            not _has_content(cleaned.article, cleaned.body)
            and not parsed.only_its_title
            and (arrived_with_content or not is_web_url(cleaned.article.url))
        ):
            # All it had was a promo or furniture, or it is a title leading nowhere: not
            # an article. A title with a link (a link blog's item) is kept as it came, and
            # so is a page that is one heading.
            if not ours:
                log.warning(
                    "%s: %r has no text after cleaning; not published",
                    where,
                    cleaned.article.title[:60],
                )
            continue
        if not ours and options.taken.active:
            why = options.taken.refusal(cleaned.article, stage.now)
            if why is not None:
                log.debug("%s: %r left out: %s", where, cleaned.article.title[:60], why)
                filtered += 1
                continue
        prepared = tuple(p(cleaned, downloader) if p else None for p in stage.prepares)
        items.append(Item(cleaned.article, prepared))
    dates = [moment for item in items if (moment := item_date(item.article)) is not None]
    newest = max(dates, default=None)
    stale = not ours and _is_stale(name, read.channel, newest, stage)
    channel = read.channel
    if channel is not None and stage.clean:
        channel = clean_channel(channel, options.cleaning.everywhere)
    return ReadInput(name, channel, tuple(items), read.sources, newest, stale, filtered)


def _has_content(article: Article, body: HtmlElement) -> bool:
    """Text, or a picture: one in the model, or a relative one left in the body of a page
    that has no address to resolve it against."""
    return (
        bool(article.images)
        or has_text(text_of(body))
        or any(img.get("src") for img in body.iter("img"))
    )


def _is_stale(
    name: str, channel: Channel | None, newest: datetime | None, stage: ReadStage
) -> bool:
    """True, with a warning, when a feed's newest dated item is older than
    `stale_after_days` (undated items say nothing of it)."""
    if channel is None or newest is None:
        return False
    age = stage.now - newest
    if age <= timedelta(days=stage.stale_after_days):
        return False
    log.warning(
        "%s: stale source: the newest item is %d days old (%s)",
        name,
        age.days,
        newest.date().isoformat(),
    )
    return True


def read_in_worker(task: tuple[str, int], stage: ReadStage) -> InputDone:
    """`read_input` in a worker process, with the process's one downloader."""
    name, source = task
    return read_input(name, source, stage, _process_downloader(stage.net, stage.downloads_end))


@functools.cache
def _process_downloader(limits: Download, ends_at: float | None) -> Downloader:
    # One per worker process for the whole run: its HTTP client (TLS contexts, open
    # connections) is made on the first request and kept; the process ends with the run.
    return Downloader(limits, ends_at=ends_at)
