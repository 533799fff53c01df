"""Where inputs come from: files, globs, folders, http(s) URLs and standard input.

A source, as the config or a command names it, is expanded into its inputs
(`expand_source`); each input's bytes are read within the size limit (`read_bytes`),
through the one downloader for a URL. An OPML list is an input like any other: its
reader names the feeds to read in its place.
"""

from __future__ import annotations

import codecs
import glob
import sys
from pathlib import Path

from convert.errors import ConvertError
from convert.net.client import Downloader
from convert.urls import is_web_url

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
        return sorted(str(p) for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if glob.has_magic(spec) and not path.exists():
        matches = sorted(p for p in glob.glob(spec) if Path(p).is_file())
        if not matches:
            raise ConvertError(spec, "matches no file")
        return matches
    return [spec]


def read_bytes(name: str, max_bytes: int, downloader: Downloader | None = None) -> bytes:
    """The bytes of a file, a URL, or standard input for `-`, within `max_bytes`."""
    if is_web_url(name):
        if downloader is None:
            raise ConvertError(name, "URLs are not read here")
        data = downloader.get(name, max_bytes=max_bytes, cache=True).content
    else:
        try:
            if name == STDIN:
                data = sys.stdin.buffer.read(max_bytes + 1)
            else:
                with open(name, "rb") as handle:
                    data = handle.read(max_bytes + 1)
        except FileNotFoundError:
            raise ConvertError(name, "no such file") from None
        except IsADirectoryError:
            raise ConvertError(name, "is a folder, not a file") from None
        except OSError as error:
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
