"""Where inputs come from: files, globs, folders, http(s) URLs and standard input.

A source, as the config or a command names it, is expanded into its inputs
(`expand_source`); each input's bytes are read within the size limit (`read_bytes`),
through the one downloader for a URL. An OPML list is an input like any other: its
reader names the feeds to read in its place.
"""

from __future__ import annotations

import codecs
import errno
import glob
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from convert.errors import ConvertError
from convert.net.client import Downloader
from convert.readers import is_input
from convert.urls import is_web_url

log = logging.getLogger(__name__)

STDIN = "-"
"""The input name of standard input."""


def display_name(name: str) -> str:
    """How an input is named in messages: `<stdin>` for standard input."""
    return "<stdin>" if name == STDIN else name


def expand_source(spec: str) -> list[str]:
    """The inputs a source names: a URL, `-`, a file, a folder's files, or a glob's matches."""
    if is_web_url(spec) or spec == STDIN:
        return [spec]
    path = Path(spec)
    if path.is_dir():
        return _inputs_among(str(path), path.iterdir())
    if glob.has_magic(spec) and not path.exists():
        matches = [Path(p) for p in glob.glob(spec)]
        if not any(p.is_file() for p in matches):
            raise ConvertError(spec, "matches no file")
        return _inputs_among(spec, matches)
    return [spec]


def _inputs_among(spec: str, paths: Iterable[Path]) -> list[str]:
    # A folder or a glob holds what its owner put there (a README, a picture): only the
    # files a reader takes are inputs; the rest are named once and left alone. A file
    # named on its own is read whatever it is, so it fails loudly.
    inputs: list[str] = []
    others: list[str] = []
    for path in sorted(p for p in paths if p.is_file() and not p.name.startswith(".")):
        try:
            with open(path, "rb") as handle:
                head = handle.read(8192)
        except OSError:
            head = b""  # read again later, and its error reported there
        (inputs if not head or is_input(head, str(path)) else others).append(str(path))
    if others:
        names = ", ".join(Path(p).name for p in others[:5]) + (" …" if len(others) > 5 else "")
        log.info("%s: %d files that are no input left alone (%s)", spec, len(others), names)
    return inputs


def read_bytes(
    name: str, max_bytes: int, downloader: Downloader | None = None, *, follow_links: bool = True
) -> bytes:
    """The bytes of a file, a URL, or standard input for `-`, within `max_bytes`; with
    `follow_links` false, a file that is a symbolic link is refused."""
    if is_web_url(name):
        if downloader is None:
            raise ConvertError(name, "URLs are not read here")
        data = downloader.get(name, max_bytes=max_bytes, cache=True).content
    else:
        try:
            if name == STDIN:
                data = sys.stdin.buffer.read(max_bytes + 1)
            else:
                flags = os.O_RDONLY | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
                with open(os.open(name, flags), "rb") as handle:
                    data = handle.read(max_bytes + 1)
        except FileNotFoundError:
            raise ConvertError(name, "no such file") from None
        except IsADirectoryError:
            raise ConvertError(name, "is a folder, not a file") from None
        except OSError as error:
            if error.errno == errno.ELOOP and not follow_links:
                raise ConvertError(name, "is a symbolic link; not followed") from None
            raise ConvertError(name, f"cannot read: {error.strerror}") from None
        if len(data) > max_bytes:
            raise ConvertError(name, f"larger than max_input_bytes ({max_bytes} bytes)")
    if not _without_bom(data).replace(b"\x00", b"").strip():  # UTF-16 white space has NULs
        raise ConvertError(display_name(name), "empty file")
    return data


def _without_bom(data: bytes) -> bytes:
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16):
        if data.startswith(bom):
            return data[len(bom) :]
    return data
