"""Markdown: one `.md` per article in a folder (pictures in `assets/`), or one to stdout.

Each article's Markdown is rendered where it was cleaned, from cleaning's tree (with
`download_images`, after its pictures came through the media intake, kept as served);
the files are named and written here, in reading order. Copies of one article
(`identity`) are written once; the names of one run never collide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from convert.cleaning import Cleaned
from convert.config import MarkdownTarget
from convert.errors import ConvertError
from convert.fsutil import FileBatch
from convert.outputs.base import STDOUT, Files, OutputContext, Taken
from convert.report import OutputReport
from convert.script import KEEP, cleaned_in_script
from convert.writers.markdown import markdown_file_stem, render_markdown, unique_file_name

if TYPE_CHECKING:
    from convert.media.picture import Picture
    from convert.media.prepare import PictureOptions
    from convert.net.client import Downloader
    from convert.read import Prepare

# The media intake (Pillow) is imported when pictures are downloaded: a plain
# conversion does without it.

log = logging.getLogger(__name__)

ASSETS = "assets"
"""The folder beside the Markdown files that holds their pictures."""

# Files written to temporary names before they are moved into place together: enough to
# save the flushes of a large folder, few enough that files appear as the run goes on.
_BATCH = 256


@dataclass(frozen=True, slots=True)
class Rendered:
    """One article's Markdown, as made where it was cleaned."""

    text: str
    """The whole file."""

    stem: str
    """Its name before it is made unique (`writers.markdown.markdown_file_stem`)."""

    pictures: tuple[Picture, ...] = ()
    """The pictures it links in `assets/`, to be saved there."""

    failed: tuple[str, ...] = ()
    """Pictures that could not be had: their web address stays in the text."""


@dataclass(frozen=True, slots=True)
class PictureIntake:
    """Where and how Markdown's pictures are fetched (`--download-images`)."""

    cache: Path
    """The picture cache's folder."""

    options: PictureOptions
    """As served: no scaling, no re-encoding of JPEG, PNG, GIF and WebP."""


def render(
    cleaned: Cleaned, downloader: Downloader, intake: PictureIntake | None, script: str = KEEP
) -> Rendered:
    """One article's Markdown file, in `script`; with `intake`, its pictures fetched for
    `assets/`."""
    cleaned = cleaned_in_script(cleaned, script)
    article = cleaned.article
    if intake is None or not article.images:
        return Rendered(render_markdown(article, body=cleaned.body), markdown_file_stem(article))
    failures: list[str] = []

    def failed(url: str, reason: str) -> None:
        # The Markdown keeps the web address, so the article is still whole.
        log.error("%s: %s (picture of %s; its web address is kept)", url, reason, article.url)
        failures.append(url)

    from convert.media.intake import fetch_pictures  # noqa: PLC0415

    urls = [image.url for image in article.images]
    pictures = fetch_pictures(urls, downloader, intake.cache, intake.options, failed=failed)
    local = {url: f"{ASSETS}/{picture.name}" for url, picture in pictures.items()}
    return Rendered(
        render_markdown(article, local, cleaned.body),
        markdown_file_stem(article),
        tuple({p.name: p for p in pictures.values()}.values()),
        tuple(dict.fromkeys(failures)),
    )


class MarkdownOutput:
    """A folder of Markdown files, or one article's Markdown on standard output."""

    def __init__(self, target: MarkdownTarget, context: OutputContext) -> None:
        self.target = target
        self.context = context
        self.to_stdout = target.folder == STDOUT
        self.folder = Path(target.folder)
        self.report = OutputReport(kind="markdown", path=target.folder)
        self.files = Files(self.report, context.dry_run)
        self.batch = FileBatch()
        self.taken_names: set[str] = set()  # names given in this run; a rerun overwrites its own
        self.first_of: dict[str, str] = {}  # copy key → the first copy's address
        self.saved: set[str] = set()  # pictures saved in assets/ by this run
        self.printed: list[Rendered] = []
        self.inputs: list[str] = []

    def prepare(self) -> Prepare:
        """Each article's Markdown (and its pictures), made where it is cleaned."""
        fetching = self.target.download_images and not self.to_stdout and not self.context.dry_run
        script = self.target.script
        if not fetching:
            return partial(render, intake=None, script=script)
        from convert.media.prepare import PictureOptions  # noqa: PLC0415 - Pillow

        options = PictureOptions(keep_original=True, memory_bytes=self.context.picture_memory)
        intake = PictureIntake(self.context.picture_cache, options)
        return partial(render, intake=intake, script=script)

    def take(self, taken: Taken) -> None:
        """Write each article of one input (stdout: keep it for `produce`)."""
        if taken.articles:
            self.inputs.append(taken.name)
        for article, rendered in zip(taken.articles, taken.prepared, strict=True):
            assert isinstance(rendered, Rendered)
            if self.to_stdout:
                self.printed.append(rendered)
                continue
            key = self.context.identity.copy_key(article)
            if key in self.first_of:
                log.warning(
                    "%s: the same article as %s; written once",
                    article.url or article.title,
                    self.first_of[key],
                )
                continue
            # Not the article: at 10,000 articles, holding them all would cost hundreds of MB.
            self.first_of[key] = article.url
            self.report.failed.extend(rendered.failed)
            for picture in rendered.pictures:
                self._save(picture)
            name = unique_file_name(rendered.stem, self.taken_names)
            self.files.write(self.folder / name, rendered.text, self.batch)
            self.files.commit(self.batch, at_least=_BATCH)

    def _save(self, picture: Picture) -> None:
        if picture.name in self.saved:
            return
        try:
            data = picture.data
        except ConvertError as error:
            self.files.fail(error)
            return
        if self.files.write(self.folder / ASSETS / picture.name, data, self.batch):
            self.saved.add(picture.name)

    def produce(self) -> OutputReport:
        """Move the last files into place, or print the one article."""
        if not self.to_stdout:
            self.files.commit(self.batch)
            log.info("wrote %d files into %s", len(self.report.written), self.folder)
            return self.report
        if len(self.printed) > 1:
            where = self.inputs[0] if len(self.inputs) == 1 else "the inputs"
            self.files.fail(
                ConvertError(
                    where,
                    f"holds {len(self.printed)} articles; give -o DIR to write one file each",
                )
            )
        elif self.printed:
            self.files.print(self.printed[0].text)
        return self.report


def open_output(target: MarkdownTarget, section: None, context: OutputContext) -> MarkdownOutput:
    """The Markdown output of `target`."""
    return MarkdownOutput(target, context)
