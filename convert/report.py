"""What a run did, per source and per output: what the summary shows and the exit code says."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class SourceReport:
    """What happened to one source of the run."""

    name: str
    """The source's name, or its path."""

    read: int = 0
    """Articles read (after the source's `max_items`)."""

    new: int = 0
    """Articles the archive did not have (with an archive)."""

    updated: int = 0
    """Articles whose content changed (with an archive)."""

    unchanged: int = 0
    """Articles the archive already had as they are (with an archive)."""

    failed: list[str] = field(default_factory=list)
    """Inputs of this source that could not be read, as named."""

    newest: datetime | None = None
    """The newest date of its dated articles; None when none is dated."""

    stale: bool = False
    """A feed of it has not had a new dated item for `feed.stale_after_days`."""

    filtering: bool = False
    """It has a filter (include, exclude, max_age_days)."""

    filtered: int = 0
    """Articles its filter left out."""


@dataclass
class OutputReport:
    """What happened to one output of the run."""

    kind: str
    """The output's kind: `feed`, `markdown`, `epub`, `articles`."""

    path: str
    """The file or folder, as given (`-`: standard output)."""

    written: list[Path] = field(default_factory=list)
    """Files written (in a dry run: that would be), in order."""

    unchanged: list[Path] = field(default_factory=list)
    """Files that already held what would be written, left untouched."""

    failed: list[str] = field(default_factory=list)
    """What could not be made: the output itself, or items of it (a picture's URL)."""

    size: int = 0
    """Bytes of what the output holds (or would hold)."""

    printed: bool = False
    """The output went to standard output."""

    @property
    def produced(self) -> bool:
        """The output exists as asked: written now, already holding it, or printed."""
        return bool(self.written or self.unchanged or self.printed)


@dataclass
class RunReport:
    """The summary of a run."""

    sources: list[SourceReport] = field(default_factory=list)
    """One row per source."""

    outputs: list[OutputReport] = field(default_factory=list)
    """One row per output, in the plan's order."""

    archive: Path | None = None
    """The archive the run used, if any."""

    archive_failed: bool = False
    """The archive could not take this run's articles (a full disk, say); the
    outputs were still written from what was read."""

    dry_run: bool = False
    """Nothing was written: the files are those that would be."""

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
