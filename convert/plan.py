"""A run, as a plan: its sources, its outputs, an archive or none, and each stage's options.

`run` is the plan of config.yaml (`plan_of_config`); every other command is a plan with
one output built from its flags and the config (`command_plan`), so that both go
through the same orchestrator (`run.run_plan`) and the same options. The options each
stage uses are built here, once, from the config (`Settings`): the readers get the
sites' facts and the identity rules, cleaning its rules, each output its section.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from convert.cleaning import CleanOptions, CleanRules
from convert.config import Config, Download, SiteRules, Source, Target
from convert.errors import ConfigError
from convert.filters import ArticleFilter
from convert.identity import Identity
from convert.media.memory import picture_memory
from convert.net.cache import user_cache_dir
from convert.outputs import OUTPUTS, output_kind
from convert.read import SourceOptions
from convert.readers import ReadOptions
from convert.sites import Sites

if TYPE_CHECKING:
    from convert.archive import Archive
    from convert.delivery.mail import Mailer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    """The options of every stage, built once from the config."""

    reading: ReadOptions
    """The readers': the sites' facts and the identity rules."""

    cleaning: CleanOptions
    """Cleaning's: site rules, promo, image proxies and mirror, tracking parameters."""

    identity: Identity
    """When two items are one article or one story."""

    net: Download
    """The downloader's limits."""

    max_input_bytes: int
    """Largest input read, in bytes."""

    picture_memory: int
    """Bytes the pictures being decoded may hold at once (from `memory_mb`)."""

    stale_after_days: int
    """Warn when a feed's newest item is older than this many days."""

    zone: ZoneInfo
    """The job's time zone."""

    sections: dict[str, Any] = field(default_factory=dict)
    """Each output kind's config section (`feed:`, `epub:`), by kind."""

    mailer: Mailer | None = None
    """How books are mailed (`send_to`); None when the config names no mail server."""

    @property
    def picture_cache(self) -> Path:
        """The picture cache's folder."""
        root = Path(self.net.cache_dir) if self.net.cache_dir else user_cache_dir()
        return root / "pictures"

    def source(self, rules: SiteRules | None, taken: ArticleFilter | None = None) -> SourceOptions:
        """How a source's inputs are read and cleaned, its own `rules` over its sites',
        and which of its articles are `taken` (None: all)."""
        return SourceOptions(
            self.reading.under(rules), self.cleaning.under(rules), taken or ArticleFilter()
        )

    def open_archive(self, path: Path) -> Archive:
        """The archive at `path`, with the job's zone and identity rules."""
        from convert.archive import Archive  # noqa: PLC0415 - sqlite3, for runs that store

        return Archive(path, zone=self.zone, identity=self.identity)


def settings_of(config: Config) -> Settings:
    """Every stage's options, from the config."""
    identity = Identity(mirror_hosts=config.promo.hosts, tracking=config.tracking_parameters)
    sites = Sites(config.sites, config.timezone)
    return Settings(
        reading=ReadOptions(sites, identity),
        cleaning=CleanOptions(
            sites=sites,
            everywhere=CleanRules(
                promo=config.promo,
                image_proxies=config.image_proxies,
                image_mirror=config.image_mirror,
                tracking=config.tracking_parameters,
                trackers=config.trackers,
            ),
        ),
        identity=identity,
        net=config.download,
        max_input_bytes=config.max_input_bytes,
        picture_memory=picture_memory(config.memory_mb, config.download.max_bytes),
        stale_after_days=config.feed.stale_after_days,
        zone=ZoneInfo(config.timezone),
        sections={
            kind: getattr(config, entry.section) for kind, entry in OUTPUTS.items() if entry.section
        },
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one run does."""

    sources: tuple[Source, ...]
    """Where the articles come from, each a file, glob, folder, URL or `-`."""

    targets: tuple[tuple[str, Target], ...]
    """The outputs, each its kind (a name of `outputs.OUTPUTS`) and its target."""

    settings: Settings
    """Every stage's options."""

    archive: Path | None = None
    """The archive the sources are stored in and digests read from; None: no archive."""

    dry_run: bool = False
    """Work on a copy of the archive, write nothing, report what would change."""

    jobs: int = 1
    """Worker processes for reading (and a large EPUB's pages)."""

    clean: bool = True
    """False leaves the articles as read (`inspect --raw`)."""

    now: datetime | None = None
    """The time the run takes as now (tests fix it); None: the clock."""


def archive_path(config: Config, override: Path | None = None) -> Path:
    """The archive file: `--archive`, else the config's, else the user's data folder."""
    from convert.archive import default_archive_path  # noqa: PLC0415 - sqlite3

    if override is not None:
        return override
    return Path(config.archive).expanduser() if config.archive else default_archive_path()


def plan_of_config(
    config: Config,
    *,
    archive: Path | None = None,
    dry_run: bool = False,
    jobs: int = 1,
    now: datetime | None = None,
) -> Plan:
    """The main job: every enabled source into the archive, then every output."""
    sources = tuple(s for s in config.sources if s.enabled)
    if not sources:
        log.warning("the config names no enabled source")
    targets = tuple(
        kind_and_target for output in config.outputs for kind_and_target in output.chosen()
    )
    settings = settings_of(config)
    if any(getattr(target, "send_to", ()) for _kind, target in targets):
        # Checked now, not after the run: no server, no sender, no password.
        from convert.delivery.mail import mailer  # noqa: PLC0415 - smtplib, email

        if not config.smtp.host:
            raise ConfigError("smtp.host", "an epub output has send_to, but no mail server")
        settings = dataclasses.replace(settings, mailer=mailer(config.smtp, config.kindle))
    return Plan(
        sources=sources,
        targets=targets,
        settings=settings,
        archive=archive_path(config, archive),
        dry_run=dry_run,
        jobs=jobs,
        now=now,
    )


def command_plan(
    config: Config,
    inputs: tuple[str, ...],
    target: tuple[str, Target] | None,
    *,
    archive: Path | None = None,
    jobs: int = 1,
    clean: bool = True,
    now: datetime | None = None,
) -> Plan:
    """One command's run: its inputs as sources (one each), at most one output."""
    if target is not None:
        output_kind(target[0])  # an unknown kind is an error naming the valid ones
    return Plan(
        sources=tuple(Source(path=name) for name in inputs),
        targets=(target,) if target is not None else (),
        settings=settings_of(config),
        archive=archive,
        jobs=jobs,
        clean=clean,
        now=now,
    )
