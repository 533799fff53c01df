"""A feed (RSS 2.0, Atom, JSON Feed) of the articles read, merged with the file already there.

Each item's summary is made where its article was cleaned, from cleaning's tree. The
items are one per article (copies by `identity`), a fresh copy over an old one,
newest first, at most `max_items`; items of the feed already at the path stay until
they drop out. A feed made from one feed keeps that feed's title and home page; a feed
mixed from several sources takes them from the config, else says `feedx-convert` and
links to where it is published.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path, PurePath
from urllib.parse import urlsplit, urlunsplit

from convert.cleaning import Cleaned
from convert.config import FeedOutput as FeedSection
from convert.config import FeedTarget
from convert.errors import ConvertError
from convert.fsutil import folder_lock
from convert.identity import Identity, edition_rank, item_id
from convert.model import Article, Channel, Feed, item_date, newest_first
from convert.net.client import Downloader
from convert.outputs.base import STDOUT, Files, OutputContext, Taken
from convert.read import Prepare, ReadInput
from convert.report import OutputReport
from convert.script import in_script, wanted_script
from convert.sources import STDIN
from convert.urls import host_of, is_web_url
from convert.writers import feed_writer
from convert.writers.summary import article_summary

log = logging.getLogger(__name__)

MIXED_TITLE = "feedx-convert"
"""The title of a feed mixed from several sources when the config gives none."""


def summary(cleaned: Cleaned, _downloader: Downloader) -> str:
    """The summary the article's feed item shows, made from cleaning's tree."""
    return article_summary(cleaned.article, cleaned.body)


def merge_items(
    fresh: Iterable[Article], old: Iterable[Article], max_items: int, key: Callable[[Article], str]
) -> tuple[Article, ...]:
    """Newest first, one item per `key` (a fresh copy wins over an old one), max_items at most."""
    merged: dict[str, Article] = {}
    for article in old:
        merged[key(article)] = article
    for article in fresh:
        merged[key(article)] = article
    ordered = sorted(merged.values(), key=lambda a: (newest_first(a), a.id), reverse=True)
    return tuple(ordered[:max_items])


class FeedOutput:
    """One feed file (or standard output)."""

    def __init__(self, target: FeedTarget, section: FeedSection, context: OutputContext) -> None:
        self.target = target
        self.context = context
        self.max_items = target.max_items or section.max_items
        self.self_url = target.self_url or section.self_url
        self.lock_wait = section.lock_wait
        self.report = OutputReport(kind="feed", path=target.path)
        self.files = Files(self.report, context.dry_run)
        self.fresh: list[Article] = []
        self.inputs: list[tuple[str, Channel | None, int]] = []  # name, channel, items

    def prepare(self) -> Prepare:
        """Each item's summary, made where its article is cleaned."""
        return summary

    def take(self, taken: Taken) -> None:
        """Keep one input's articles, each with its item's summary."""
        self.inputs.append((taken.name, taken.channel, len(taken.articles)))
        for article, made in zip(taken.articles, taken.prepared, strict=True):
            self.fresh.append(
                article if article.summary else dataclasses.replace(article, summary=made)
            )

    def produce(self) -> OutputReport:
        """Merge with the feed already there and write the feed."""
        if not self.inputs:
            return self.report  # no source could be read: the old feed stays as it is
        path = Path(self.target.path)
        if self.target.path == STDOUT or self.context.dry_run:
            return self._merged_and_written(path)
        # From reading the old items to writing the new file, no other process may
        # write there: two runs would each keep only their own items.
        try:
            with folder_lock(path.parent, self.lock_wait, str(path)):
                return self._merged_and_written(path)
        except ConvertError as error:
            self.files.fail(error)
            return self.report

    def _merged_and_written(self, path: Path) -> OutputReport:
        existing = self._existing(path)
        old = list(existing.articles) if existing else []
        identity = self.context.identity
        # An item per story (its copies and editions are one, as in the archive); each
        # article's key is worked out once (it parses the URL).
        keys = {id(article): identity.story_key(article) for article in (*old, *self.fresh)}
        script = self.target.script
        fresh = _one_edition_each(self.fresh, keys, identity, wanted_script(script) or "")
        # The edition in the feed's script won above; the others are shown converted.
        converted = [in_script(article, script) for article in fresh]
        keys.update({id(new): keys[id(old)] for old, new in zip(fresh, converted, strict=True)})
        fresh = converted
        articles = merge_items(fresh, old, self.max_items, key=lambda a: keys[id(a)])
        self._say_left_out(articles, keys)
        # What a story was published as stays its id, whichever copy or edition is new.
        published = {keys[id(article)]: item_id(article) for article in old}
        articles = tuple(_as_published(a, published.get(keys[id(a)])) for a in articles)
        try:
            channel = self._channel(articles, existing.channel if existing else None)
        except ConvertError as error:
            self.files.fail(error)
            return self.report
        data = feed_writer(self.target.format)(Feed(channel=channel, articles=articles))
        if self.target.path == STDOUT:
            self.files.print(data.decode("utf-8"))
        elif self.files.write(path, data):
            log.info("%s %s", "wrote" if self.report.written else "up to date:", path)
        return self.report

    def _existing(self, path: Path) -> ReadInput | None:
        """The feed already at `path`, to keep the items the sources dropped."""
        if self.target.path == STDOUT or not path.exists() or self.context.read_back is None:
            return None
        try:
            return self.context.read_back(str(path))
        except ConvertError as error:
            log.warning("%s; not merged with it, it will be replaced", error)
            return None

    def _say_left_out(self, articles: tuple[Article, ...], keys: dict[int, str]) -> None:
        written = {keys[id(article)] for article in articles}
        left_out = {k: a for a in self.fresh if (k := keys[id(a)]) not in written}
        if left_out:
            dates = [d for a in left_out.values() if (d := item_date(a)) is not None]
            newest = f"the newest from {max(dates).date().isoformat()}" if dates else "all undated"
            log.warning(
                "%s: %d items of the sources beyond max_items (%d) left out, %s",
                self.target.path,
                len(left_out),
                self.max_items,
                newest,
            )

    def _channel(self, articles: tuple[Article, ...], before: Channel | None) -> Channel:
        """The feed's own metadata: the config's, else its one feed's, else made up."""
        target = self.target
        # The inputs that gave items (or, when none did, every input read).
        giving = [(n, c) for n, c, count in self.inputs if count] or [
            (n, c) for n, c, _count in self.inputs
        ]
        single = giving[0] if len(giving) == 1 else None
        one_feed = single if single is not None and single[1] is not None else None
        own = one_feed[1] if one_feed is not None and one_feed[1] else Channel(title="")
        publications = {a.source_name for a in self.fresh}
        title, home = target.title, target.link
        if one_feed is not None:
            name = one_feed[0]
            title = title or own.title or _named_after(name)
            # Without its own link: the items' common site, else where the feed was read.
            home = home or own.link or _common_site(articles) or (name if is_web_url(name) else "")
        elif len(publications) == 1 and "" not in publications:
            # Articles of one publication (its article files): the feed is that publication's.
            title = title or self.fresh[0].source_name
            home = home or _site_of(self.fresh)
        elif single is not None:  # one page or file of no known publication
            title = title or _named_after(single[0])
            home = home or _site_of(self.fresh)
        mixed = single is None and not title
        title = title or MIXED_TITLE
        home = home or self.self_url
        if not home and single is not None:
            # A feed a reader would show is never refused: it links to where it came from.
            name = single[0]
            home = Path(name).resolve().as_uri() if name != STDIN and not is_web_url(name) else ""
            if home:
                log.warning(
                    "%s: no home page for the feed: it links to its source file %s;"
                    " give --self-url URL (where it is published)",
                    self.target.path,
                    home,
                )
        if not home:
            reason = (
                "a feed mixed from several sources needs its own address: give --self-url URL"
                " (config: self_url or link)"
                if mixed
                else "no home page for the feed: give --self-url URL"
            )
            raise ConvertError(self.target.path, reason)
        languages = Counter(a.language for a in articles if a.language != "und")
        # Most common first; ties by name, so that the output does not depend on set order.
        common = sorted(languages.items(), key=lambda pair: (-pair[1], pair[0]))
        return Channel(
            title=title,
            link=_with_path(home),
            description=own.description or title,
            language=own.language or (common[0][0] if common else ""),
            self_url=self.self_url,
            updated=self._updated(articles, before),
        )

    def _updated(self, articles: tuple[Article, ...], before: Channel | None) -> datetime:
        """When the feed last changed: its newest dated item; with none dated, the date
        the feed at the path already has, else now (a feed must have one)."""
        dates = [moment for a in articles if (moment := item_date(a)) is not None]
        if dates:
            return max(dates)
        if before is not None and before.updated is not None:
            return before.updated
        return self.context.now


def _with_path(url: str) -> str:
    """`https://host` as `https://host/`: the form validators call canonical."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return urlunsplit(parts._replace(path="/")) if parts.netloc and not parts.path else url


def _named_after(name: str) -> str:
    """A title for a feed of one input without one: its address, or its file's name."""
    return name if is_web_url(name) else PurePath(name).stem


def _one_edition_each(
    articles: Sequence[Article], keys: dict[int, str], identity: Identity, wanted: str
) -> list[Article]:
    """One article per story: the edition a reader of `wanted` (or of no particular
    script: "") gets (`identity.edition_rank`); of two copies of one article, the later
    read."""
    best: dict[str, tuple[tuple[bool, bool, datetime, str], Article]] = {}
    for article in articles:
        rank = edition_rank(
            article.language, item_date(article), identity.copy_key(article), wanted=wanted
        )
        story = keys[id(article)]
        if story not in best or rank >= best[story][0]:
            best[story] = (rank, article)
    return [article for _rank, article in best.values()]


def _as_published(article: Article, guid: str | None) -> Article:
    """`article` under the id its story already has in the feed, if it has one."""
    if guid is None or item_id(article) == guid:
        return article
    return dataclasses.replace(article, guid=guid)


def _common_site(articles: Sequence[Article]) -> str:
    """`https://host/` when every item with an address is on that one host, else ''."""
    hosts = {host_of(a.url) for a in articles if a.source_host}
    return f"https://{hosts.pop()}/" if len(hosts) == 1 else ""


def _site_of(articles: Sequence[Article]) -> str:
    """The home page of the first article's site (`https://host/`), or ''."""
    first = articles[0] if articles else None
    return f"https://{host_of(first.url)}/" if first is not None and first.source_host else ""


def open_output(target: FeedTarget, section: FeedSection, context: OutputContext) -> FeedOutput:
    """The feed output of `target`, with the `feed:` section's defaults."""
    return FeedOutput(target, section, context)
