"""The picture cache: per URL the hash of what it served, per hash and options the picture.

A rebuild with a warm cache makes no request at all, and two URLs serving the same
bytes share one prepared file. Failures are not cached: they are tried again. It also
keeps each re-encoding made to fit a budget, and which one fitted a book (see `fit`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import PIL

from convert.fsutil import write_atomic
from convert.media.picture import ENDINGS, Picture, Prepared
from convert.media.prepare import PictureOptions

log = logging.getLogger(__name__)

# Bump when the processing changes, so that old prepared pictures are not reused.
_CACHE_VERSION = 1


def shrunk_key(picture: Picture, quality: int, scale: float) -> str:
    """The cache key of `picture` re-encoded at `quality` and `scale`."""
    return f"{picture.sha256}:shrunk:{quality}:{scale}"


class PictureCache:
    """Per URL the hash of its bytes; per content hash and options the prepared picture.

    A prepared picture is two files: `<key>.bin`, its bytes, and `<key>.json`, its
    record (media type, size in pixels, length and SHA-256 of the bytes). A lookup
    reads only the record and the length of the bytes file; the bytes are read and
    checked against the record (`intact`) when the picture is kept, and again when
    it is written into a book (`Picture.data`).
    """

    def __init__(self, folder: Path, options: PictureOptions, address_rule: str = "") -> None:
        # Plain strings: a few thousand lookups per book, and pathlib's joins add up.
        self.urls = os.path.join(folder, "urls")
        self.pictures = os.path.join(folder, "prepared")
        self.plans = os.path.join(folder, "plans")  # the shrinking step that fitted a book
        # The processing options and Pillow's version decide the prepared bytes.
        variant = [
            _CACHE_VERSION,
            PIL.__version__,
            options.max_width,
            options.max_height,
            options.grayscale,
            options.jpeg_quality,
            # Kept as served or prepared for an e-reader: not the same bytes.
            *(["original"] if options.keep_original else []),
        ]
        self.variant = hashlib.sha256(json.dumps(variant).encode()).hexdigest()[:16]
        # Which addresses the downloader may reach (Downloader.address_rule): what a URL
        # served under a looser rule (a loopback picture while private addresses were
        # allowed) is not known under a stricter one, so it is fetched again, and the
        # guard refuses it. Prepared pictures are shared: only a URL leads to them.
        self.address_rule = address_rule
        self._lock = threading.Lock()
        self._warned = False

    def _url_path(self, url: str) -> str:
        name = hashlib.sha256(f"{self.address_rule}\n{url}".encode()).hexdigest()
        return os.path.join(self.urls, f"{name}.json")

    def _picture_paths(self, content: str) -> tuple[str, str]:
        key = hashlib.sha256(f"{content}:{self.variant}".encode()).hexdigest()
        return os.path.join(self.pictures, f"{key}.bin"), os.path.join(self.pictures, f"{key}.json")

    def content_of(self, url: str) -> str | None:
        """The hash of the bytes last fetched from `url`, if remembered."""
        record = _read_json(self._url_path(url))
        if record is None or record.get("url") != url:
            return None
        content = record.get("content")
        if not (isinstance(content, str) and len(content) == 64):
            return None
        return content

    def known(self, url: str) -> Prepared | None:
        """The prepared picture of what `url` served last, if recorded (bytes unchecked)."""
        content = self.content_of(url)
        return self.prepared(content) if content is not None else None

    def shrunk(self, picture: Picture, quality: int, scale: float) -> Picture | None:
        """A re-encoding of `picture` made before, if recorded (bytes unchecked)."""
        prepared = self.prepared(shrunk_key(picture, quality, scale))
        return prepared.picture(picture.url) if prepared is not None else None

    def prepared(self, content: str) -> Prepared | None:
        """The prepared picture of those bytes, unless its record is missing or damaged or
        its bytes file is missing or of another length. The bytes themselves are not read:
        `intact` checks them."""
        data_path, meta_path = self._picture_paths(content)
        meta = _read_json(meta_path)
        if meta is None:
            return None
        try:
            length = os.stat(data_path).st_size
        except OSError:
            return None
        media_type, width, height = meta.get("media_type"), meta.get("width"), meta.get("height")
        sha256, size = meta.get("sha256"), meta.get("size", length)  # older records have no size
        if (
            media_type not in ENDINGS
            or not isinstance(width, int)
            or not isinstance(height, int)
            or not (isinstance(sha256, str) and len(sha256) == 64)
            or size != length
        ):
            return None
        return Prepared(str(media_type), width, height, length, sha256, data_path)

    def store(self, content: str, prepared: Prepared) -> Prepared:
        """Keep `prepared` under `content`; what to use from now on: the same picture read
        from the cache file (its bytes are let go), or in memory when it could not be written."""
        if not isinstance(prepared.source, bytes):
            return prepared  # read from the cache already
        data_path, meta_path = self._picture_paths(content)
        meta = {
            "media_type": prepared.media_type,
            "width": prepared.width,
            "height": prepared.height,
            "sha256": prepared.sha256,
            "size": prepared.size,
        }
        # The record last: a picture file without its record is never read.
        if self._write(data_path, prepared.source) and self._write(meta_path, json.dumps(meta)):
            return replace(prepared, source=data_path)
        return prepared

    def fitting_step(self, plan: str) -> tuple[int, float] | None:
        """The (quality, scale) that fitted this plan's pictures to its budget last time."""
        record = _read_json(os.path.join(self.plans, f"{plan}-{self.variant}.json"))
        if record is None:
            return None
        quality, scale = record.get("quality"), record.get("scale")
        if not isinstance(quality, int) or not isinstance(scale, float):
            return None
        return quality, scale

    def remember_step(self, plan: str, step: tuple[int, float]) -> None:
        record = {"quality": step[0], "scale": step[1]}
        self._write(os.path.join(self.plans, f"{plan}-{self.variant}.json"), json.dumps(record))

    def remember(self, url: str, content: str) -> None:
        self._write(self._url_path(url), json.dumps({"url": url, "content": content}))

    def _write(self, path: str, data: bytes | str) -> bool:
        try:
            write_atomic(Path(path), data)
        except OSError as error:
            # A read-only or full cache costs downloads next time, not this book.
            with self._lock:
                warned, self._warned = self._warned, True
            if not warned:
                log.warning(
                    "%s: cannot write the picture cache: %s",
                    os.path.dirname(path),
                    error.strerror,
                )
            return False
        return True


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        # Bytes, not text: json reads UTF-8 itself, and a text reader for each of the
        # thousands of small records of a book costs more than the parsing.
        with open(path, "rb") as handle:
            value = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
