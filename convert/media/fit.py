"""Fitting a book's pictures to its size budget: lower JPEG qualities, then smaller sizes.

Each re-encoding is kept in the picture cache, and so is the step that fitted a book,
so that a rebuild of the same book re-encodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from convert.media.cache import PictureCache, shrunk_key
from convert.media.picture import Picture, intact, total_size
from convert.media.prepare import PictureOptions, reencode

log = logging.getLogger(__name__)

_SHRINK_QUALITIES = (75, 60, 45)
_SHRINK_SCALES = (0.75, 0.5)

_MB = 1_000_000


def shrink_to_budget(
    pictures: dict[str, Picture],
    budget_bytes: int,
    options: PictureOptions,
    cache_dir: Path | None = None,
) -> dict[str, Picture]:
    """Recompress (lower JPEG quality, then smaller sizes) until the pictures fit the budget.

    With `cache_dir` (the one given to `fetch_pictures`), each re-encoding is kept,
    so that a rebuild of the same book re-encodes nothing: it only reads the records
    of the re-encodings to learn their sizes, and checks the bytes of those it keeps.
    """
    # A book holds each file once, however many URLs share it.
    files = {p.name: p for p in pictures.values()}
    before = total_size(files.values())
    if before <= budget_bytes:
        return dict(pictures)
    steps = _shrink_steps(options)
    best: dict[str, Picture] = files
    best_step = (options.jpeg_quality, 1.0)
    cache = PictureCache(cache_dir, options) if cache_dir is not None else None
    plan = _plan_key(files.values(), budget_bytes, steps)
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="shrink") as pool:
        # The same pictures and budget as a build before: try the step that fitted then
        # first. Re-encoding is deterministic, so the steps before it still do not fit
        # and the loop below would end there too, having looked up every step before.
        remembered = cache.fitting_step(plan) if cache is not None else None
        if remembered is not None and remembered in steps:
            attempt = _shrink_all(files, *remembered, cache, pool, options.memory_bytes)
            if total_size(attempt.values()) <= budget_bytes:
                best, best_step = attempt, remembered
        for quality, scale in steps if best is files else ():
            attempt = _shrink_all(files, quality, scale, cache, pool, options.memory_bytes)
            if total_size(attempt.values()) < total_size(best.values()):
                best, best_step = attempt, (quality, scale)
            if total_size(best.values()) <= budget_bytes:
                if cache is not None:
                    cache.remember_step(plan, best_step)
                break
        if cache is not None and best is not files:
            best = _checked(files, best, best_step, cache, pool, options.memory_bytes)
    log_shrunk(before, total_size(best.values()), budget_bytes, best_step)
    return {url: replace(best[p.name], url=url) for url, p in pictures.items()}


def _shrink_steps(options: PictureOptions) -> list[tuple[int, float]]:
    """The (JPEG quality, scale) tried in turn: lower qualities, then smaller sizes."""
    floor = min(_SHRINK_QUALITIES[-1], options.jpeg_quality)
    steps = [(q, 1.0) for q in _SHRINK_QUALITIES if q < options.jpeg_quality]
    return steps + [(floor, scale) for scale in _SHRINK_SCALES]


def fit_remembered(
    files: dict[str, Picture], budget_bytes: int, options: PictureOptions, cache: PictureCache
) -> tuple[dict[str, Picture], tuple[int, float]] | None:
    """The re-encodings `shrink_to_budget` would choose for `files` (by name) and their
    step, when they are over the budget and the cache remembers the step that fitted and
    holds each of its re-encodings intact; else None. The originals are not read."""
    steps = _shrink_steps(options)
    if total_size(files.values()) <= budget_bytes:
        return None
    step = cache.fitting_step(_plan_key(files.values(), budget_bytes, steps))
    if step is None or step not in steps:
        return None
    chosen: dict[str, Picture] = {}
    for name, picture in files.items():
        smaller = cache.shrunk(picture, *step)
        if smaller is None:
            return None  # to be re-encoded: from the original, which must be checked first
        chosen[name] = smaller
    if total_size(chosen.values()) > budget_bytes:
        return None
    if not all(intact(p.source, p.sha256) for p in chosen.values()):
        return None  # `shrink_to_budget` makes the damaged ones again, from the originals
    return chosen, step


def log_shrunk(before: int, after: int, budget_bytes: int, step: tuple[int, float]) -> None:
    """Say how far the pictures were shrunk (a warning: they are smaller than asked for)."""
    how = f"JPEG quality {step[0]}, {step[1]:.0%} size"
    if after <= budget_bytes:
        # A warning, not info: the reader gets smaller pictures than they asked for.
        log.warning(
            "pictures shrunk from %.1f MB to %.1f MB to fit the %.1f MB left for them (%s)",
            before / _MB,
            after / _MB,
            budget_bytes / _MB,
            how,
        )
    else:
        log.warning(
            "pictures shrunk from %.1f MB to only %.1f MB, still over the %.1f MB left for"
            " them (%s)",
            before / _MB,
            after / _MB,
            budget_bytes / _MB,
            how,
        )


def _plan_key(files: Iterable[Picture], budget_bytes: int, steps: list[tuple[int, float]]) -> str:
    """What decides the step that fits: the files, the budget and the steps tried."""
    plan = [sorted(p.sha256 for p in files), budget_bytes, steps]
    return hashlib.sha256(json.dumps(plan).encode()).hexdigest()


def _shrink_all(
    files: dict[str, Picture],
    quality: int,
    scale: float,
    cache: PictureCache | None,
    pool: ThreadPoolExecutor,
    memory: int,
) -> dict[str, Picture]:
    """Every file at `quality` and `scale`: the cache's record when it has one (bytes
    unchecked: see `_checked`), else re-encoded in the pool."""
    found = {
        name: cache.shrunk(picture, quality, scale) if cache is not None else None
        for name, picture in files.items()
    }
    missing = [name for name, smaller in found.items() if smaller is None]
    made = pool.map(
        lambda name: _reencode_cached(files[name], quality, scale, cache, memory), missing
    )
    found.update(zip(missing, made, strict=True))
    return {name: smaller for name, smaller in found.items() if smaller is not None}


def _checked(
    files: dict[str, Picture],
    chosen: dict[str, Picture],
    step: tuple[int, float],
    cache: PictureCache,
    pool: ThreadPoolExecutor,
    memory: int,
) -> dict[str, Picture]:
    """The chosen re-encodings, each checked against its record; a damaged one is made again."""
    damaged = [name for name, p in chosen.items() if not intact(p.source, p.sha256)]
    remade = pool.map(
        lambda name: _reencode_cached(files[name], *step, cache, memory, again=True), damaged
    )
    return chosen | dict(zip(damaged, remade, strict=True))


def _reencode_cached(
    picture: Picture,
    quality: int,
    scale: float,
    cache: PictureCache | None,
    memory: int,
    *,
    again: bool = False,
) -> Picture:
    """`reencode` (within `memory` bytes), remembered in the cache by the picture's
    bytes, quality and scale (`again`: even when the cache has a record, a damaged one)."""
    if cache is None:
        return reencode(picture, quality, scale, memory).picture(picture.url)
    known = None if again else cache.shrunk(picture, quality, scale)
    if known is not None:
        return known
    smaller = reencode(picture, quality, scale, memory)
    return cache.store(shrunk_key(picture, quality, scale), smaller).picture(picture.url)
