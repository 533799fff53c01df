"""The last copies of fetched feeds with their validators (ETag, Last-Modified)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from convert.fsutil import write_atomic
from convert.net.fetched import Fetched

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CachedCopy:
    """A cached download, to be revalidated."""

    fetched: Fetched
    """The download as it was stored."""

    def validators(self) -> dict[str, str]:
        """The conditional-request headers for it."""
        headers = {}
        if self.fetched.etag:
            headers["If-None-Match"] = self.fetched.etag
        if self.fetched.last_modified:
            headers["If-Modified-Since"] = self.fetched.last_modified
        return headers


class ResponseCache:
    """Last copies of fetched feeds with their validators, one pair of files per URL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.folder / f"{key}.body", self.folder / f"{key}.json"

    def lookup(self, url: str) -> CachedCopy | None:
        """The copy of `url` stored last, if it is whole."""
        body, meta = self._paths(url)
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            content = body.read_bytes()
        except (OSError, ValueError):
            return None
        if info.get("url") != url or len(content) != info.get("size"):
            return None
        return CachedCopy(
            Fetched(
                url=str(info.get("final_url", url)),
                content=content,
                content_type=str(info.get("content_type", "")),
                etag=str(info.get("etag", "")),
                last_modified=str(info.get("last_modified", "")),
                from_cache=True,
            )
        )

    def store(self, url: str, fetched: Fetched) -> None:
        """Keep `fetched` for the next request of `url` (only when it can be revalidated)."""
        if not (fetched.etag or fetched.last_modified):
            return  # nothing to revalidate with
        body, meta = self._paths(url)
        info = {
            "url": url,
            "final_url": fetched.url,
            "content_type": fetched.content_type,
            "etag": fetched.etag,
            "last_modified": fetched.last_modified,
            "size": len(fetched.content),
        }
        try:
            write_atomic(body, fetched.content)
            write_atomic(meta, json.dumps(info))
        except OSError as error:
            log.warning("%s: cannot cache the download: %s", url, error.strerror or error)


def user_cache_dir() -> Path:
    """This tool's folder in the user's cache (XDG_CACHE_HOME, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feedx-convert"
