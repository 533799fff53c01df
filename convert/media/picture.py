"""A picture ready to embed or save: what every output receives from the intake.

Pure data and the checks on its bytes: no Pillow, no network. The file name comes
from a hash of the bytes, never from the URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from convert.errors import ConvertError

ENDINGS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
"""The media types a prepared picture may have, with their file endings."""


@dataclass(frozen=True, slots=True)
class Picture:
    """One picture, ready to be embedded in a book.

    A picture from the cache does not hold its bytes: `data` reads them from the
    cache file when the book is written, so that a book of 2,000 pictures never has
    them all in memory at once.
    """

    url: str
    """The picture's web address, as the article names it."""

    name: str
    """`p-<16 hex>.jpg` (`.png`, `.gif`, `.webp`) from a hash of `data`; never from the URL."""

    media_type: str
    """`image/jpeg`, `image/png`, `image/gif` (or `image/webp`, kept as served for Markdown)."""

    width: int
    """Width in pixels."""

    height: int
    """Height in pixels."""

    size: int
    """Length of `data` in bytes."""

    sha256: str = field(repr=False)
    """The hex SHA-256 of `data` (`name` holds its first 16 digits)."""

    source: bytes | str = field(repr=False, compare=False)
    """The encoded picture itself, or the path of the cache file that holds it."""

    @property
    def data(self) -> bytes:
        """The encoded picture, without metadata; read from the cache file when kept there.

        ConvertError when that file no longer holds these bytes (the cache was changed
        while the book was being built).
        """
        if isinstance(self.source, bytes):
            return self.source
        data = read_bytes(self.source)
        if data is None or hashlib.sha256(data).hexdigest() != self.sha256:
            raise ConvertError(self.source, "the picture cache changed during the build; run again")
        return data


@dataclass(frozen=True, slots=True)
class Prepared:
    """A prepared picture, before it is tied to a URL: its bytes, or the cache file of them."""

    media_type: str
    """One of ENDINGS' media types."""

    width: int
    """Width in pixels."""

    height: int
    """Height in pixels."""

    size: int
    """Length of the bytes."""

    sha256: str
    """The hex SHA-256 of the bytes."""

    source: bytes | str
    """The bytes, or the path of the cache file that holds them."""

    @classmethod
    def encoded(cls, media_type: str, data: bytes, width: int, height: int) -> Prepared:
        """A picture just encoded, held in memory."""
        return cls(media_type, width, height, len(data), hashlib.sha256(data).hexdigest(), data)

    def picture(self, url: str) -> Picture:
        """This picture as the one at `url`."""
        return Picture(
            url=url,
            name=picture_name(self.sha256, self.media_type),
            media_type=self.media_type,
            width=self.width,
            height=self.height,
            size=self.size,
            sha256=self.sha256,
            source=self.source,
        )


def picture_name(sha256: str, media_type: str) -> str:
    """`p-<16 hex>.jpg`: the file name of the bytes with this hash."""
    return f"p-{sha256[:16]}{ENDINGS[media_type]}"


def read_bytes(path: str) -> bytes | None:
    """The bytes of a cache file, None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def intact(source: bytes | str, sha256: str) -> bool:
    """True when the picture's bytes are in memory, or its cache file still holds them."""
    if isinstance(source, bytes):
        return True
    data = read_bytes(source)
    return data is not None and hashlib.sha256(data).hexdigest() == sha256


def total_size(pictures: Iterable[Picture]) -> int:
    """The bytes of `pictures` together."""
    return sum(p.size for p in pictures)
