"""The article archive: every article read, kept in one SQLite file and grouped into stories.

Each article is one row holding its JSON (`model.to_json`), keyed by its copy key
(`identity`: every copy of one article is one row), with the columns the queries need
beside it. All editions and mirrors of one article share a story key, so a digest can
show each story once, in the edition `identity.edition_rank` gives its reader.

Times are stored as UTC ISO 8601 text of fixed width, so that text order is time
order and SQLite can compare them in an index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self
from zoneinfo import ZoneInfo

from convert.errors import ConvertError
from convert.identity import Identity, edition_rank
from convert.model import Article, from_json, to_json

APP_FOLDER = "feedx-convert"
ARCHIVE_FILE = "archive.sqlite"

# Article fields that change when the mirror captures the same text again: they do
# not make a new version, so they are left out of the content hash.
VOLATILE_FIELDS = frozenset({"captured"})

# Seconds a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT = 30.0

# Free bytes below which an I/O error of SQLite is taken for a full disk.
_FULL_BELOW = 1 << 20

# Keys per `IN (...)` lookup: well under SQLite's limit on bound variables.
_LOOKUP_CHUNK = 500

# _MIGRATIONS[n] turns a version-n file into version n + 1; `PRAGMA user_version`
# holds n. Version 0 is an empty file. A step is SQL statements, or the name of an
# Archive method for what SQL cannot do. Append a step, never edit one that shipped.
_MIGRATIONS: tuple[tuple[str, ...] | str, ...] = (
    (
        """
        CREATE TABLE article (
            key          TEXT NOT NULL PRIMARY KEY,  -- canonical URL; the id without one
            story        TEXT NOT NULL,              -- the story key: one per story
            published    TEXT,                       -- UTC ISO text; NULL: no date
            captured     TEXT,                       -- UTC ISO text; NULL: unknown
            source       TEXT NOT NULL,              -- Article.source_name
            language     TEXT NOT NULL,              -- BCP 47 tag
            content_hash TEXT NOT NULL,              -- sha256 of the JSON minus volatile fields
            first_seen   TEXT NOT NULL,              -- UTC ISO text of the first ingest
            last_updated TEXT NOT NULL,              -- UTC ISO text of the last change
            json         TEXT NOT NULL               -- model.to_json(article)
        )
        """,
        # The window query finds articles by time, then every edition of their stories
        # and each story's first publication: both indexes make those lookups logarithmic.
        "CREATE INDEX article_published ON article (published)",
        "CREATE INDEX article_story ON article (story, published)",
    ),
    # Rows keyed by copy key (identity.py) instead of canonical URL: the copies of one
    # article merged into one row, with the id they now share.
    "rekey",
    # Copy keys of addresses in RFC 3986's normal form (dot segments, %XX spellings,
    # non-ASCII paths and hosts): copies spelled differently merged the same way.
    "rekey",
    # Books mailed (send_to): each book, by its bytes, once per address, whichever run
    # or host sends it.
    (
        """
        CREATE TABLE delivery (
            book    TEXT NOT NULL,  -- sha256 of the book's bytes
            address TEXT NOT NULL,  -- where it is mailed
            name    TEXT NOT NULL,  -- the book's file name, for people reading the table
            state   TEXT NOT NULL,  -- 'sending' (claimed) or 'sent'
            at      TEXT NOT NULL,  -- UTC ISO text of the claim, then of the sending
            PRIMARY KEY (book, address)
        )
        """,
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

_UPSERT = """
    INSERT INTO article (key, story, published, captured, source, language, content_hash,
                         json, first_seen, last_updated)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
        story = excluded.story,
        published = excluded.published,
        captured = excluded.captured,
        source = excluded.source,
        language = excluded.language,
        content_hash = excluded.content_hash,
        last_updated = excluded.last_updated,
        json = excluded.json
    -- first_seen is not set here: a new version keeps the time the article was first seen
"""

# A story belongs to the window of its first dated edition, so that it is in exactly
# one window even when its translation is published after the window closes; then
# every dated edition of it is a candidate for the reader's language.
_STORIES = """
    WITH hit AS (
        SELECT DISTINCT story FROM article WHERE published >= :start AND published < :end
    ), story_start AS (
        SELECT story, (SELECT MIN(published) FROM article AS a WHERE a.story = hit.story) AS first
        FROM hit
    )
    SELECT a.story, a.key, a.language, a.published, a.json
    FROM story_start AS s JOIN article AS a ON a.story = s.story
    WHERE s.first >= :start AND a.published IS NOT NULL
"""


def default_archive_path() -> Path:
    """Where the archive lives by default: `$XDG_DATA_HOME/feedx-convert/archive.sqlite`."""
    base = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative value is invalid and is to be ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / APP_FOLDER / ARCHIVE_FILE


@dataclass(frozen=True, slots=True)
class IngestCounts:
    """What one `Archive.ingest` call did with the articles it was given."""

    new: int
    """Articles whose key was not in the archive."""

    updated: int
    """Articles whose content differed from the stored version, which they replaced."""

    unchanged: int
    """Articles stored already with the same content (or an older copy of a stored one)."""


@dataclass(frozen=True, slots=True)
class StatRow:
    """How many dated articles one source published in one week."""

    source: str
    """The publication's name (`Article.source_name`)."""

    week: str
    """ISO week of the publication time in the archive's zone (`2024-W21`)."""

    articles: int
    """Number of articles (each language edition counts)."""


class _Row(NamedTuple):
    # The columns of one article, in _UPSERT's order (first_seen and last_updated follow).
    key: str
    story: str
    published: str | None
    captured: str | None
    source: str
    language: str
    content_hash: str
    json: str


class _Stored(NamedTuple):
    content_hash: str
    captured: str | None


# The files SQLite keeps beside an archive (write-ahead log, its index, a rollback journal).
_SIDE_FILES = ("-wal", "-shm", "-journal")


class Archive:
    """One archive file, open for reading and writing."""

    def __init__(self, path: Path, *, zone: ZoneInfo, identity: Identity) -> None:
        """Open the archive at `path`, creating the file and its folder when missing."""
        self.path = path
        self.zone = zone
        self.identity = identity
        if path.is_dir():
            raise ConvertError(str(path), "is a folder, not an archive file")
        for own in (path, *(path.with_name(path.name + end) for end in _SIDE_FILES)):
            if own.is_symlink():
                # SQLite would write through it, into whatever file it names.
                raise ConvertError(str(own), "is a symbolic link; not followed")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConvertError(
                str(path.parent), f"cannot create folder: {error.strerror}"
            ) from None
        try:
            # isolation_level=None: no implicit BEGIN; each write opens its own
            # BEGIN IMMEDIATE (see _transaction).
            self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error as error:
            raise self._error(error) from None
        try:
            with self._errors():
                self._setup()
        except BaseException:
            self._conn.close()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the last one to close folds the WAL back into the file."""
        self._conn.close()

    # --- writing ----------------------------------------------------------------------

    def ingest(self, articles: Iterable[Article], *, now: datetime) -> IngestCounts:
        """Store `articles` in one transaction: new ones added, changed ones replaced."""
        # Serializing and hashing happen before the write lock is taken, to hold it briefly.
        rows = [self._row(article) for article in articles]
        if not rows:
            return IngestCounts(0, 0, 0)
        stamp = _utc_text(now, self.zone)
        new = updated = unchanged = 0
        writes: list[tuple[Any, ...]] = []
        with self._errors(), self._transaction() as conn:
            stored = _stored(conn, {row.key for row in rows})
            for row in rows:
                old = stored.get(row.key)
                if old is None:
                    new += 1
                elif old.content_hash == row.content_hash or _older(row.captured, old.captured):
                    # An older capture read again (an old dump, say) must not undo a newer one.
                    unchanged += 1
                    continue
                else:
                    updated += 1
                # Later copies in the same call compare with this one, not the stored one.
                stored[row.key] = _Stored(row.content_hash, row.captured)
                writes.append((*row, stamp, stamp))  # _Row's fields in _UPSERT's order
            conn.executemany(_UPSERT, writes)
        return IngestCounts(new=new, updated=updated, unchanged=unchanged)

    # --- reading ----------------------------------------------------------------------

    def stories_between(
        self, start: datetime, end: datetime, *, language: str | None = None
    ) -> list[Article]:
        """One edition of each story first published in [start, end), oldest first."""
        low, high = _utc_text(start, self.zone), _utc_text(end, self.zone)
        if low >= high:
            return []
        # One pass keeps the best edition per story; only the winners' JSON is decoded.
        best: dict[str, tuple[tuple[bool, bool, datetime, str], str, str]] = {}
        with self._errors():
            cursor = self._conn.execute(_STORIES, {"start": low, "end": high})
            for story, key, lang, published, text in cursor:
                moment = datetime.fromisoformat(published)
                rank = edition_rank(str(lang), moment, str(key), language or "")
                if story not in best or rank > best[story][0]:
                    best[story] = (rank, published, text)
        # Oldest first (UTC text sorts as time), then by key.
        chosen = sorted(best.values(), key=lambda item: (item[1], item[0][3]))
        return [_article(text) for _rank, _published, text in chosen]

    def newest_published(self) -> datetime | None:
        """The latest publication time in the archive (in UTC), or None when it has none."""
        with self._errors():
            (value,) = self._conn.execute("SELECT MAX(published) FROM article").fetchone()
        return None if value is None else datetime.fromisoformat(value)

    def published_span(self) -> list[datetime]:
        """The first and the last publication time in the archive (UTC); empty without any."""
        with self._errors():
            first, last = self._conn.execute(
                "SELECT MIN(published), MAX(published) FROM article"
            ).fetchone()
        return (
            [] if first is None else [datetime.fromisoformat(first), datetime.fromisoformat(last)]
        )

    def claim_delivery(self, book: str, address: str, name: str) -> str | None:
        """Claim the mailing of the book with sha256 `book` to `address`: None when this
        caller is to send it; else its state ('sending': claimed by a run that may have
        stopped midway, 'sent')."""
        now = datetime.now(UTC).isoformat()
        with self._errors(), self._transaction() as conn:
            row = conn.execute(
                "SELECT state FROM delivery WHERE book = ? AND address = ?", (book, address)
            ).fetchone()
            if row is not None:
                return str(row[0])
            conn.execute(
                "INSERT INTO delivery (book, address, name, state, at) VALUES (?, ?, ?, ?, ?)",
                (book, address, name, "sending", now),
            )
        return None

    def delivered(self, book: str, address: str) -> None:
        """Record that the claimed mailing of `book` to `address` went out."""
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "UPDATE delivery SET state = 'sent', at = ? WHERE book = ? AND address = ?",
                (datetime.now(UTC).isoformat(), book, address),
            )

    def release_delivery(self, book: str, address: str) -> None:
        """Give up a claim whose mailing failed, so that a later run tries again."""
        with self._errors(), self._transaction() as conn:
            conn.execute(
                "DELETE FROM delivery WHERE book = ? AND address = ? AND state = 'sending'",
                (book, address),
            )

    def stats(self) -> list[StatRow]:
        """Dated articles per source and ISO week of the archive's zone, by source then week."""
        counts: Counter[tuple[str, str]] = Counter()
        with self._errors():
            cursor = self._conn.execute(
                "SELECT source, published FROM article WHERE published IS NOT NULL"
            )
            # SQLite's strftime has no ISO week before 3.46 and no time zones: Python does it.
            for source, published in cursor:
                local = datetime.fromisoformat(published).astimezone(self.zone).isocalendar()
                counts[source, f"{local.year}-W{local.week:02d}"] += 1
        return [StatRow(source, week, n) for (source, week), n in sorted(counts.items())]

    def first_seen(self, article: Article) -> datetime | None:
        """When a copy of `article` was first ingested, in UTC; None when never."""
        with self._errors():
            row = self._conn.execute(
                "SELECT first_seen FROM article WHERE key = ?", (self.identity.copy_key(article),)
            ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def article(self, article: Article) -> Article | None:
        """The stored copy of `article` (the one kept of all its copies), or None."""
        with self._errors():
            row = self._conn.execute(
                "SELECT json FROM article WHERE key = ?", (self.identity.copy_key(article),)
            ).fetchone()
        return None if row is None else _article(row[0])

    # --- the connection ---------------------------------------------------------------

    def _setup(self) -> None:
        conn = self._conn
        # Reading the header first: a file that is not SQLite, or SQLite of other data,
        # is refused before anything (even the journal mode) is written to it.
        version = self._version()
        self._check_version(version)
        conn.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        # In WAL mode NORMAL loses no commit when the process dies, only on power loss.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if version == SCHEMA_VERSION:
            return
        with self._transaction():
            # Read again under the write lock: another process may have migrated meanwhile.
            version = self._version()
            self._check_version(version)
            for step in _MIGRATIONS[version:]:
                if isinstance(step, str):
                    getattr(self, f"_{step}")(conn)
                    continue
                for statement in step:
                    conn.execute(statement)
            # user_version is in the file header and changes with the transaction.
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise ConvertError(
                str(self.path),
                f"archive version {version} is newer than this program's "
                f"({SCHEMA_VERSION}); update feedx-convert",
            )
        if version == 0 and self._conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            raise ConvertError(str(self.path), "not an archive: an SQLite file of other data")

    def _version(self) -> int:
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        return int(version)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        # IMMEDIATE takes the write lock at BEGIN: a deferred transaction that reads,
        # then writes, fails with "database is locked" instead of waiting its turn.
        conn.execute("BEGIN IMMEDIATE")
        try:
            with conn:  # commits on success, rolls back on an exception
                yield conn
        finally:
            if conn.in_transaction:  # a COMMIT that failed (disk full) leaves it open
                conn.rollback()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        # What the file or the system did wrong is the user's to fix: one line, no
        # traceback. Misuse of the API (ProgrammingError, IntegrityError) stays a bug.
        try:
            yield
        except sqlite3.OperationalError as error:
            raise self._error(error) from None
        except sqlite3.DatabaseError as error:
            if type(error) is not sqlite3.DatabaseError:
                raise
            raise self._error(error) from None

    def _error(self, error: sqlite3.Error) -> ConvertError:
        name = getattr(error, "sqlite_errorname", "")
        if name in {"SQLITE_NOTADB", "SQLITE_CORRUPT"}:
            return ConvertError(str(self.path), f"not an archive: {error}")
        # A full disk is SQLITE_FULL when a page does not fit, but a plain "disk I/O
        # error" when the shared-memory file cannot grow: the free space tells.
        if name == "SQLITE_FULL" or (name.startswith("SQLITE_IOERR") and _disk_full(self.path)):
            return ConvertError(str(self.path), "disk full")
        return ConvertError(str(self.path), f"cannot use archive: {error}")

    def _rekey(self, conn: sqlite3.Connection) -> None:
        """Key every row by its copy key (versions 2 and 3), keeping one row of each article's
        copies: the newest capture, else the last updated."""
        rows = conn.execute(
            "SELECT json, first_seen, last_updated FROM article"
            " ORDER BY captured IS NOT NULL, captured, last_updated"
        ).fetchall()
        kept: dict[str, tuple[_Row, str, str]] = {}
        for text, first_seen, last_updated in rows:
            article = _article(text)
            if article.canonical_url:
                article = dataclasses.replace(
                    article, id=self.identity.article_id(article.canonical_url)
                )
            row = self._row(article)
            earlier = kept.get(row.key)
            seen = min(first_seen, earlier[1]) if earlier else first_seen
            kept[row.key] = (row, seen, last_updated)  # later in the order wins
        conn.execute("DELETE FROM article")
        conn.executemany(_UPSERT, [(*row, seen, updated) for row, seen, updated in kept.values()])

    def _row(self, article: Article) -> _Row:
        key = self.identity.copy_key(article)
        if not key:
            raise ValueError(f"article {article.title!r} has neither canonical_url nor id")
        data = to_json(article)
        stable = {name: value for name, value in data.items() if name not in VOLATILE_FIELDS}
        digest = hashlib.sha256(_dumps(stable).encode("utf-8")).hexdigest()
        return _Row(
            key=key,
            # Without a URL there is nothing to match mirrors by: the article is its own story.
            story=self.identity.story_key(article),
            published=_utc_or_none(article.published, self.zone),
            captured=_utc_or_none(article.captured, self.zone),
            source=article.source_name,
            language=article.language,
            content_hash=digest,
            json=_dumps(data),
        )


def _disk_full(path: Path) -> bool:
    """Less than _FULL_BELOW bytes left for `path` (SQLite grows its files by pages)."""
    try:
        folder = os.statvfs(path.parent)
    except OSError:
        return False
    return folder.f_bavail * folder.f_frsize < _FULL_BELOW


def _stored(conn: sqlite3.Connection, keys: set[str]) -> dict[str, _Stored]:
    found: dict[str, _Stored] = {}
    ordered = sorted(keys)
    for at in range(0, len(ordered), _LOOKUP_CHUNK):
        chunk = ordered[at : at + _LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT key, content_hash, captured FROM article WHERE key IN ({marks})"
        for key, content_hash, captured in conn.execute(query, chunk):
            found[key] = _Stored(content_hash, captured)
    return found


def _older(incoming: str | None, stored: str | None) -> bool:
    return incoming is not None and stored is not None and incoming < stored


def _utc_text(moment: datetime, zone: ZoneInfo) -> str:
    # A naive time is in the archive's zone, as naive times are everywhere in the job.
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=zone)
    # Always microseconds and +00:00: every value has the same width, so text sorts as time.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _utc_or_none(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else _utc_text(moment, zone)


def _dumps(data: Any) -> str:
    # Sorted keys and no spaces: equal articles give equal text, hence equal hashes.
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _article(text: str) -> Article:
    return from_json(Article, json.loads(text))
