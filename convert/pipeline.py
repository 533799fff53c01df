"""The pipeline: read each input, clean it, write it. One bad input never stops the rest."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image

from convert.config import Config
from convert.download import Downloader
from convert.errors import ConvertError
from convert.fsutil import write_atomic
from convert.model import Article
from convert.readers import sniff_reader
from convert.transforms import clean
from convert.urls import stable_id
from convert.writers.markdown import markdown_file_name, render_markdown

log = logging.getLogger(__name__)

STDIN = "-"
ASSETS = "assets"
# Picture formats a Markdown viewer shows, by Pillow's name, with their file ending.
_PICTURE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}


@dataclass
class Outcome:
    """What a run did: files written and inputs that failed."""

    written: list[Path] = field(default_factory=list)
    """Files written, in order."""

    failed: list[str] = field(default_factory=list)
    """Inputs (or downloads) that could not be converted, as named by the user."""


def read_bytes(source: str, config: Config) -> bytes:
    """The bytes of a file, or of standard input for `-`, within the size limit."""
    limit = config.max_input_bytes
    try:
        if source == STDIN:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConvertError(source, "no such file") from None
    except IsADirectoryError:
        raise ConvertError(source, "is a folder, not a file") from None
    except OSError as error:
        raise ConvertError(source, f"cannot read: {error.strerror}") from None
    if len(data) > limit:
        raise ConvertError(source, f"larger than max_input_bytes ({limit} bytes)")
    if not data.strip():
        raise ConvertError(source, "empty file")
    return data


def read_articles(source: str, config: Config) -> list[Article]:
    """Read one input with the reader its content calls for, and clean every article."""
    where = "<stdin>" if source == STDIN else source
    data = read_bytes(source, config)
    reader = sniff_reader(data, where)
    return [clean(article, config) for article in reader(data, where, config)]


def iter_articles(sources: Iterable[str], config: Config, outcome: Outcome) -> Iterator[Article]:
    """Every article of every input; a failing input is reported and skipped."""
    for source in sources:
        try:
            articles = read_articles(source, config)
        except ConvertError as error:
            log.error("%s", error)
            outcome.failed.append(source)
            continue
        yield from articles


def markdown_to_stdout(source: str, config: Config) -> Outcome:
    """Convert one input and print its Markdown."""
    outcome = Outcome()
    for article in iter_articles([source], config, outcome):
        sys.stdout.write(render_markdown(article))
    return outcome


def markdown_to_folder(
    sources: Iterable[str],
    out_dir: Path,
    config: Config,
    *,
    download_images: bool = False,
) -> Outcome:
    """Write one `.md` per article into `out_dir`, pictures into `out_dir/assets`."""
    outcome = Outcome()
    taken: set[str] = set()  # names given in this run; a rerun overwrites its own files
    downloader = Downloader(config.download) if download_images else None
    try:
        for article in iter_articles(sources, config, outcome):
            local = _download_pictures(article, out_dir, downloader, outcome) if downloader else {}
            path = out_dir / markdown_file_name(article, taken)
            try:
                write_atomic(path, render_markdown(article, local))
            except OSError as error:
                log.error("%s: cannot write: %s", path, error.strerror or error)
                outcome.failed.append(str(path))
                continue
            outcome.written.append(path)
    finally:
        if downloader is not None:
            downloader.close()
    return outcome


def _download_pictures(
    article: Article, out_dir: Path, downloader: Downloader, outcome: Outcome
) -> dict[str, str]:
    """Fetch the article's pictures into `assets/`; map each URL to its relative path."""
    local: dict[str, str] = {}
    for image in article.images:
        if image.url in local:
            continue
        try:
            fetched = downloader.get(image.url)
            ending = picture_ending(fetched.content, image.url)
        except ConvertError as error:
            # The Markdown keeps the web address, so the article is still whole.
            log.error("%s (picture of %s; its web address is kept)", error, article.url)
            outcome.failed.append(image.url)
            continue
        name = f"{stable_id(image.url)}{ending}"
        path = out_dir / ASSETS / name
        if not path.exists():
            try:
                write_atomic(path, fetched.content)
            except OSError as error:
                log.error("%s: cannot write: %s", path, error.strerror or error)
                outcome.failed.append(str(path))
                continue
            outcome.written.append(path)
        local[image.url] = f"{ASSETS}/{name}"
    return local


def picture_ending(content: bytes, url: str) -> str:
    """The file ending for a downloaded picture, judged by its bytes, not its name."""
    try:
        with PIL.Image.open(io.BytesIO(content)) as picture:
            kind = picture.format or ""
    except (OSError, PIL.Image.DecompressionBombError, ValueError):
        kind = ""
    if kind not in _PICTURE_FORMATS:
        raise ConvertError(url, "not a JPEG, PNG, GIF or WebP picture")
    return _PICTURE_FORMATS[kind]
