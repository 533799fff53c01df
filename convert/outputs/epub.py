"""An EPUB digest: the stories of a period, by day and source, pictures embedded.

From the archive when the run has one (the main job, `epub --week`), else from the
articles the run read (`epub FILES`). Either way each story is in the period of its
first dated edition and appears once, in the edition `identity.edition_rank` gives
the book's language; its pictures come through the media intake, fitted to the
book's size budget.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from convert.archive import Archive
from convert.config import EpubOutput as EpubSection
from convert.config import EpubTarget
from convert.errors import ConvertError
from convert.media.intake import fetch_to_budget
from convert.media.picture import Picture
from convert.media.prepare import PictureOptions
from convert.model import Article, Digest, item_date, newest_first
from convert.outputs.base import Files, OutputContext, Taken
from convert.period import Period, PeriodSpec, parse_period
from convert.read import Prepare
from convert.report import OutputReport
from convert.script import KEEP, in_script, wanted_script

if TYPE_CHECKING:
    from convert.delivery.mail import Mailer

log = logging.getLogger(__name__)

# Text, styles and the cover are small beside the pictures: room kept for them.
_TEXT_ROOM = 2_000_000


@dataclass(frozen=True, slots=True)
class EpubSettings:
    """One book's settings: the target's where it gives them, else the `epub:` section's."""

    name: str
    """The masthead."""

    language: str
    """The book's language; empty: most articles'."""

    budget_mb: float
    """Largest book in megabytes."""

    vertical: bool
    """Vertical writing."""

    grayscale: bool
    """Gray pictures."""

    pictures: bool
    """Embed pictures (False: links to the originals)."""

    picture_width: int
    """Pictures fit this width..."""

    picture_height: int
    """... and this height."""

    max_pictures: int
    """Most pictures in one book."""

    font: str
    """A CJK font file for the cover; empty: look for one."""

    script: str = KEEP
    """The book's Chinese script (`zh-Hans`, `zh-Hant`, ...), or keep."""

    @property
    def edition_language(self) -> str:
        """The edition of a story the reader wants: the book's script's, else its language's."""
        return wanted_script(self.script) or self.language


def settings_of(target: EpubTarget, section: EpubSection) -> EpubSettings:
    """The book's settings: each of the target's over the `epub:` section's."""
    return EpubSettings(
        name=section.name,
        language=section.language,
        budget_mb=target.budget_mb if target.budget_mb is not None else section.budget_mb,
        vertical=target.vertical if target.vertical is not None else section.vertical,
        grayscale=target.grayscale if target.grayscale is not None else section.grayscale,
        pictures=target.pictures,
        picture_width=section.picture_width,
        picture_height=section.picture_height,
        max_pictures=section.max_pictures,
        font=section.font,
        script=section.script,
    )


class EpubOutput:
    """One EPUB digest."""

    def __init__(self, target: EpubTarget, section: EpubSection, context: OutputContext) -> None:
        self.target = target
        self.settings = settings_of(target, section)
        self.period = parse_period(target.week, target.since, target.until)
        self.context = context
        self.report = OutputReport(kind="epub", path=target.path)
        self.files = Files(self.report, context.dry_run)
        self.articles: list[Article] = []

    def prepare(self) -> Prepare | None:
        """Nothing: the book is made from whole articles."""
        return None

    def take(self, taken: Taken) -> None:
        """Keep the articles, unless the book is made from the archive."""
        if self.context.archive is None:
            self.articles.extend(taken.articles)

    def produce(self) -> OutputReport:
        """Collect the period's stories, fetch their pictures, and write the book."""
        try:
            found = self._stories()
        except ConvertError as error:  # the archive it reads is unusable (a full disk, say)
            self.files.fail(ConvertError(self.target.path, f"not written: {error}"))
            return self.report
        if found is None:
            return self.report
        period, stories = found
        path = Path(self.target.path.replace("{period}", period.label.replace(" – ", "_")))
        self.report.path = str(path)
        data = self._book(_digest(stories, period, self.settings))
        if self.files.write(path, data):
            done = "wrote" if self.report.written else "up to date:"
            log.info("%s %s (%.1f MB)", done, path, len(data) / 1e6)
            if self.target.send_to:
                self._send(path, data)
        return self.report

    def _send(self, path: Path, data: bytes) -> None:
        """Mail the book to each `send_to` address that has not had these bytes yet.

        With an archive, each mailing is claimed there first: a rerun, a second host's
        run or one after a crash midway never sends it twice (a claim a run left
        behind is told, and left: sending it again could be twice). Without one, the
        book goes whenever its bytes changed.
        """
        mailer = self.context.mailer
        assert mailer is not None  # plan_of_config makes one for every send_to
        if self.context.dry_run:
            for address in self.target.send_to:
                log.info("would send %s to %s", path, address)
            return
        if self.context.archive is None:
            if self.report.written:
                for address in self.target.send_to:
                    self._send_one(mailer, path, address)
            return
        book = hashlib.sha256(data).hexdigest()
        with Archive(
            self.context.archive, zone=self.context.zone, identity=self.context.identity
        ) as archive:
            for address in self.target.send_to:
                state = archive.claim_delivery(book, address, path.name)
                if state == "sent":
                    log.info("%s: sent to %s already", path, address)
                elif state == "sending":
                    log.warning(
                        "%s: a run stopped while mailing it to %s; not sent again (to send it"
                        " anyway: feedx-convert send %s --to %s)",
                        path,
                        address,
                        path,
                        address,
                    )
                elif self._send_one(mailer, path, address):
                    archive.delivered(book, address)
                else:
                    archive.release_delivery(book, address)

    def _send_one(self, mailer: Mailer, path: Path, address: str) -> bool:
        """Mail the book to `address`; False (one error line, a failed output) when not."""
        from convert.delivery.mail import NotSent  # noqa: PLC0415 - smtplib, email

        try:
            mailer.send(path, address)
        except NotSent as error:
            self.files.fail(error)
            return False
        return True

    def _stories(self) -> tuple[Period, list[Article]] | None:
        """The period and its stories, oldest first; None (with one error line) for none."""
        zone = self.context.zone
        today = self.context.now.astimezone(zone).date()
        language = self.settings.edition_language
        where = self.target.path
        if self.context.archive is not None:
            path = self.context.archive
            if not path.exists():
                self.files.fail(
                    ConvertError(str(path), "no archive yet: run `feedx-convert ingest` first")
                )
                return None
            with Archive(path, zone=zone, identity=self.context.identity) as archive:
                period = _resolve(self.period, today, archive, zone)
                stories = (
                    archive.stories_between(*period.bounds(zone), language=language or None)
                    if period
                    else []
                )
        else:
            for article in self.articles:
                if not (article.published or article.captured):
                    log.warning("%s: no date; left out of the digest", article.url or article.title)
            dated = [a for a in self.articles if a.published or a.captured]
            days = [_local_day(a, zone) for a in dated]
            period = self.period.resolve(today, lambda: max(days, default=None), lambda: days)
            stories = self._first_in(dated, period) if period else []
        taken = self.target.article_filter()
        if taken.active:
            now = self.context.now
            stories = [story for story in stories if taken.refusal(story, now) is None]
        if not stories:
            label = period.label if period else "the inputs (none is dated)"
            self.files.fail(ConvertError(where, f"no articles for {label}; no digest written"))
            return None
        assert period is not None
        # The edition in the book's script was chosen above; the others are converted.
        return period, [in_script(story, self.settings.script) for story in stories]

    def _first_in(self, dated: list[Article], period: Period) -> list[Article]:
        """The stories whose first edition is in `period`, each in the reader's edition."""
        identity, zone = self.context.identity, self.context.zone
        first: dict[str, date] = {}
        for article in dated:
            story, day = identity.story_key(article), _local_day(article, zone)
            first[story] = min(day, first.get(story, day))
        inside = [a for a in dated if period.start <= first[identity.story_key(a)] <= period.end]
        chosen = identity.one_per_story(inside, self.settings.edition_language)
        return sorted(chosen, key=lambda a: (newest_first(a), identity.copy_key(a)))

    def _book(self, digest: Digest) -> bytes:
        """The book's bytes, its pictures fetched and fitted to the budget."""
        from convert.writers.cover import find_cjk_font  # noqa: PLC0415 - Pillow, fonts
        from convert.writers.epub import EpubOptions, write_epub  # noqa: PLC0415 - ebooklib

        settings = self.settings
        pictures = self._pictures(digest) if settings.pictures else {}
        font = Path(settings.font) if settings.font else find_cjk_font()
        options = EpubOptions(vertical=settings.vertical, font_path=font, jobs=self.context.jobs)
        data = write_epub(digest, pictures, options)
        if len(data) > settings.budget_mb * 1_000_000:
            log.warning(
                "%s: %.1f MB, over the %.0f MB budget even with pictures recompressed",
                self.target.path,
                len(data) / 1e6,
                settings.budget_mb,
            )
        return data

    def _pictures(self, digest: Digest) -> dict[str, Picture]:
        """Every picture of the digest, fetched once, prepared, and fitted to the budget."""
        settings = self.settings
        urls = list(dict.fromkeys(image.url for a in digest.articles for image in a.images))
        options = PictureOptions(
            max_width=settings.picture_width,
            max_height=settings.picture_height,
            grayscale=settings.grayscale,
            max_count=settings.max_pictures,
            memory_bytes=self.context.picture_memory,
        )
        progress = self.context.progress
        tick = (
            progress("Pictures", min(len(urls), options.max_count)) if progress and urls else None
        )
        room = int(settings.budget_mb * 1_000_000) - _TEXT_ROOM
        if room <= 0:
            log.warning(
                "%s: epub.budget_mb %g leaves no room for pictures beside the book's text,"
                " styles and cover (%.0f MB kept for them): pictures are shrunk as far as"
                " they go",
                self.target.path,
                settings.budget_mb,
                _TEXT_ROOM / 1e6,
            )
            room = 0
        return fetch_to_budget(
            urls, self.context.downloader, self.context.picture_cache, options, room, tick=tick
        )


def _resolve(spec: PeriodSpec, today: date, archive: Archive, zone: tzinfo) -> Period | None:
    """The archive's period: `latest` is the newest archived article's week."""

    def newest() -> date | None:
        moment = archive.newest_published()
        return moment.astimezone(zone).date() if moment else None

    def days() -> Iterable[date]:
        span = archive.published_span()
        return [moment.astimezone(zone).date() for moment in span]

    return spec.resolve(today, newest, days)


def _local_day(article: Article, zone: tzinfo) -> date:
    moment = article.published or article.captured
    assert moment is not None
    return moment.astimezone(zone).date()


def _digest(articles: list[Article], period: Period, settings: EpubSettings) -> Digest:
    """The digest in reading order: by day, then source, then time."""
    from convert.writers.epub import digest_identifier  # noqa: PLC0415 - ebooklib

    def order(article: Article) -> tuple[date, str, datetime]:
        moment = article.published or article.captured
        assert moment is not None
        return moment.date(), article.source_name, moment

    ordered = tuple(sorted(articles, key=lambda a: (*order(a), a.id)))
    languages = Counter(a.language for a in ordered if a.language != "und")
    common = sorted(languages.items(), key=lambda pair: (-pair[1], pair[0]))
    chosen = settings.script if settings.script != KEEP else settings.language
    book_language = chosen or (common[0][0] if common else "und")
    return Digest(
        name=settings.name,
        label=period.label,
        start=period.start,
        end=period.end,
        language=book_language,
        identifier=digest_identifier(settings.name, period.label),
        modified=max(moment for a in ordered if (moment := item_date(a)) is not None),
        articles=ordered,
    )


def open_output(target: EpubTarget, section: EpubSection, context: OutputContext) -> EpubOutput:
    """The EPUB output of `target`, with the `epub:` section's defaults."""
    return EpubOutput(target, section, context)
