"""What every output is: how the run talks to it, and how its files reach the disk.

An output is made once per run (`open_output` in its module), tells the run what to
prepare where each article is cleaned (`prepare`, or None), takes each input's
articles in order as they are read (`take`), and writes its file(s) once reading and
the archive are done (`produce`), reporting what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from convert.errors import ConvertError
from convert.fsutil import FileBatch, holds, stdout_is_terminal, write_if_changed, write_stdout
from convert.identity import Identity
from convert.model import Article, Channel
from convert.net.client import Downloader

if TYPE_CHECKING:
    from convert.delivery.mail import Mailer
from convert.read import Prepare, ReadInput
from convert.report import OutputReport
from convert.text import printable

log = logging.getLogger(__name__)

STDOUT = "-"
"""The output name of standard output."""

Progress = Callable[[str, int], Callable[[], None]]
"""Starts a phase of `total` steps (a progress bar); returns what marks one step done."""


@dataclass(frozen=True, slots=True)
class Taken:
    """One input's articles as the run hands them to an output, in reading order."""

    name: str
    """The input, as named."""

    channel: Channel | None
    """Its feed's own metadata, when it is a feed."""

    articles: Sequence[Article]
    """Its cleaned articles."""

    prepared: Sequence[Any]
    """What this output's `prepare` made of each article (None without one)."""


@dataclass(frozen=True, slots=True)
class OutputContext:
    """What the run shares with its outputs: the services beneath and the run's facts."""

    identity: Identity
    """When two items are one article or one story."""

    zone: ZoneInfo
    """The job's time zone (periods, days)."""

    now: datetime
    """The time the run takes as now."""

    downloader: Downloader
    """The run's one downloader (pictures)."""

    picture_cache: Path
    """The picture cache's folder."""

    picture_memory: int
    """Bytes the pictures being decoded may hold at once."""

    mailer: Mailer | None = None
    """How a book is mailed (`send_to`); None: no mail server in the config."""

    archive: Path | None = None
    """The archive the run filled (a dry run's copy), or None: outputs use what they took."""

    read_back: Callable[[str], ReadInput] | None = None
    """Reads a file this tool wrote (a feed merged with), cleaned as every input is."""

    progress: Progress | None = None
    """Opens a progress phase on a terminal; None in a pipe."""

    jobs: int = 1
    """Worker processes an output may use (a large EPUB's pages)."""

    dry_run: bool = False
    """Write nothing; report what would change."""


class Output(Protocol):
    """One output of a run."""

    def prepare(self) -> Prepare | None:
        """What to make of each article where it is cleaned (module-level, picklable)."""
        ...

    def take(self, taken: Taken) -> None:
        """One input's articles, in reading order."""
        ...

    def produce(self) -> OutputReport:
        """Write the output (or, in a dry run, compare it) and say what was done."""
        ...


class Files:
    """How an output's files reach the disk: whole or not at all (`fsutil`), an unchanged
    file left as it is, each noted in the output's report; in a dry run only compared."""

    def __init__(self, report: OutputReport, dry_run: bool) -> None:
        self.report = report
        self.dry_run = dry_run
        self._sizes: dict[Path, int] = {}

    def write(self, path: Path, data: bytes | str, batch: FileBatch | None = None) -> bool:
        """Write `path` unless it holds `data` already; False (with one error line) on failure.

        With `batch`, the file appears when the batch is committed (`commit`).
        """
        payload = data.encode("utf-8") if isinstance(data, str) else data
        # A file written again in one run (never, today) counts once.
        self.report.size += len(payload) - self._sizes.get(path, 0)
        self._sizes[path] = len(payload)
        if self.dry_run:
            same = holds(path, payload)
            (self.report.unchanged if same else self.report.written).append(path)
            return True
        try:
            changed = write_if_changed(path, payload, batch)
        except OSError as error:
            log.error("%s: cannot write: %s", path, error.strerror or error)
            self.report.failed.append(str(path))
            return False
        (self.report.written if changed else self.report.unchanged).append(path)
        return True

    def commit(self, batch: FileBatch, at_least: int = 0) -> None:
        """Move the batch's files into place once it holds `at_least` files (so that they
        appear as the run goes on); a file that cannot be moved is a failed output."""
        if len(batch) < max(at_least, 1):
            return
        for path, error in batch.commit():
            log.error("%s: cannot write: %s", path, error.strerror or error)
            if path in self.report.written:
                self.report.written.remove(path)
            self.report.failed.append(str(path))

    def print(self, text: str) -> None:
        """`text` to standard output (made safe first on a terminal)."""
        self.report.size = len(text.encode("utf-8"))
        self.report.printed = True
        if self.dry_run:
            return
        # On a terminal, what the article brings must not act on it (bidi overrides).
        write_stdout(printable(text, keep_lines=True) if stdout_is_terminal() else text)

    def fail(self, error: ConvertError) -> None:
        """The output cannot be made: one error line."""
        log.error("%s", error)
        self.report.failed.append(error.where)
