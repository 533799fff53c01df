"""The one picture intake: fetch, check, prepare and cache the pictures an output needs.

The EPUB and Markdown's `--download-images` both ask here and never fetch by
themselves: `fetch_pictures` gives each URL its prepared `Picture` (those that fail
are absent, each with one warning), `fetch_to_budget` also fits them to a book's size
budget (`fit`). The pictures returned from the cache hold no bytes, only where to read
them (`Picture.data`), so that a book's thousands of pictures are never all in memory
at once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from convert.errors import ConvertError
from convert.media.cache import PictureCache
from convert.media.fit import fit_remembered, log_shrunk, shrink_to_budget
from convert.media.picture import Picture, intact, total_size
from convert.media.prepare import PictureOptions, Refused, prepare
from convert.net.client import Downloader, OutOfTime

log = logging.getLogger(__name__)

Failed = Callable[[str, str], None]
"""Told each picture that could not be had: its URL and why (else a warning is logged)."""

Tick = Callable[[], None]
"""Called once per picture done (a progress bar)."""


def fetch_pictures(
    urls: Sequence[str],
    downloader: Downloader,
    cache_dir: Path,
    options: PictureOptions,
    *,
    failed: Failed | None = None,
    tick: Tick | None = None,
) -> dict[str, Picture]:
    """Fetch, check and prepare each picture; those that fail are absent, with a warning
    (or told to `failed`). `tick` is called once per picture done."""
    unique = _within_count(urls, options)
    cache = PictureCache(cache_dir, options, downloader.address_rule)
    hits = {url: p for url in unique if (p := _checked_hit(cache, url)) is not None}
    return _fetch_rest(unique, hits, downloader, cache, options, failed=failed, tick=tick)


def fetch_to_budget(
    urls: Sequence[str],
    downloader: Downloader,
    cache_dir: Path,
    options: PictureOptions,
    budget_bytes: int,
    *,
    tick: Tick | None = None,
) -> dict[str, Picture]:
    """`fetch_pictures`, then `shrink_to_budget` when the pictures are over `budget_bytes`.

    The same pictures as those two calls; but when the cache remembers the shrinking
    that fitted these pictures to this budget, and still has every re-encoding of it,
    the pictures it replaces are neither read nor checked (only what goes into the book
    is): a warm rebuild of a book over budget reads each picture's bytes once here.
    """
    unique = _within_count(urls, options)
    cache = PictureCache(cache_dir, options, downloader.address_rule)
    known = {url: recorded for url in unique if (recorded := cache.known(url)) is not None}
    # The 404s and the like, which are never cached, are tried again in either case.
    unchecked = {url: recorded.picture(url) for url, recorded in known.items()}
    pictures = _fetch_rest(unique, unchecked, downloader, cache, options, quiet=True, tick=tick)
    files = {p.name: p for p in pictures.values()}
    fitted = fit_remembered(files, budget_bytes, options, cache)
    if fitted is not None:
        chosen, step = fitted
        _log_ready(pictures, unique, len(known))
        log_shrunk(total_size(files.values()), total_size(chosen.values()), budget_bytes, step)
        return {url: replace(chosen[p.name], url=url) for url, p in pictures.items()}
    # The pictures from the cache are needed themselves: checked as `fetch_pictures`
    # does, and those whose file was damaged are fetched again.
    damaged = [url for url, p in known.items() if not intact(p.source, p.sha256)]
    again = _fetch_rest(damaged, {}, downloader, cache, options, quiet=True)
    for url in damaged:
        del pictures[url]
    pictures = {url: p for url in unique if (p := pictures.get(url) or again.get(url))}
    _log_ready(pictures, unique, len(known) - len(damaged))
    return shrink_to_budget(pictures, budget_bytes, options, cache_dir)


def _within_count(urls: Sequence[str], options: PictureOptions) -> list[str]:
    """Each URL once, the first `options.max_count` of them; the rest skipped with a warning."""
    unique = list(dict.fromkeys(urls))
    if len(unique) > options.max_count:
        skipped = unique[options.max_count :]
        log.warning(
            "%d pictures beyond the limit of %d per book skipped, the first being %s",
            len(skipped),
            options.max_count,
            skipped[0],
        )
        unique = unique[: options.max_count]
    return unique


def _checked_hit(cache: PictureCache, url: str) -> Picture | None:
    """The cache's picture for `url`, its bytes checked; None when unknown or damaged."""
    recorded = cache.known(url)
    if recorded is None or not intact(recorded.source, recorded.sha256):
        return None
    return recorded.picture(url)


def _fetch_rest(
    unique: list[str],
    hits: dict[str, Picture],
    downloader: Downloader,
    cache: PictureCache,
    options: PictureOptions,
    *,
    quiet: bool = False,
    failed: Failed | None = None,
    tick: Tick | None = None,
) -> dict[str, Picture]:
    """`hits`, and the other URLs of `unique` downloaded and prepared, in `unique`'s order.

    The cache is read in the caller's thread: threads would read and hash in parallel,
    but the GIL handed back and forth between them for each small file costs more than
    that saves.
    """
    if tick is not None:
        for _hit in hits:
            tick()

    def one(url: str) -> Picture | None:
        picture = _picture(url, downloader, cache, options, failed)
        if tick is not None:
            tick()
        return picture

    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="picture") as pool:
        missing = [url for url in unique if url not in hits]
        fetched = dict(zip(missing, pool.map(one, missing), strict=True))
    pictures = {url: picture for url in unique if (picture := hits.get(url) or fetched[url])}
    if not quiet:
        _log_ready(pictures, unique, len(hits))
    return pictures


def _log_ready(pictures: dict[str, Picture], unique: list[str], from_cache: int) -> None:
    log.info(
        "pictures: %d of %d ready (%d from the cache, %d downloaded)",
        len(pictures),
        len(unique),
        from_cache,
        len(pictures) - from_cache,
    )


def _picture(
    url: str,
    downloader: Downloader,
    cache: PictureCache,
    options: PictureOptions,
    failed: Failed | None = None,
) -> Picture | None:
    """The picture at `url`, downloaded and prepared (unless the cache has those bytes
    prepared already); None on failure, told to `failed` or logged as a warning."""
    try:
        fetched = downloader.get(url)
    except OutOfTime:
        return None  # the downloader warned once, for this and all the rest
    except ConvertError as error:
        _failed(url, error.reason, failed)
        return None
    content = hashlib.sha256(fetched.content).hexdigest()
    prepared = cache.prepared(content)
    if prepared is None or not intact(prepared.source, prepared.sha256):
        try:
            prepared = prepare(fetched.content, options)
        except Refused as error:
            _failed(url, str(error), failed)
            return None
        prepared = cache.store(content, prepared)
    cache.remember(url, content)
    return prepared.picture(url)


def _failed(url: str, reason: str, failed: Failed | None) -> None:
    if failed is None:
        log.warning("%s: %s", url, reason)
    else:
        failed(url, reason)
