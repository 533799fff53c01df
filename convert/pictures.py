"""The pictures of an EPUB digest: fetched once, checked, and made small enough for an e-reader.

The EPUB writer embeds what `fetch_pictures` (or `fetch_to_budget`) returns and never
fetches by itself. Every picture is decoded and re-encoded here, so what goes into a
book is always one of three plain formats, without metadata, named after its own bytes:

- JPEG stays JPEG; PNG without transparency stays PNG; GIF stays GIF (its first
  frame, flattened on white);
- WebP, AVIF and transparent PNG become JPEG, transparency flattened on white;
- anything else (an HTML error page, SVG, a truncated file, an absurdly large
  picture) is not a picture: it is absent from the result, with a warning.

The cache (a folder of its own) remembers, per URL, the hash of the bytes that
were fetched, and per content hash and processing options the prepared picture,
so a rebuild with a warm cache makes no request at all, and two URLs serving the
same bytes share one prepared file. Failures are not cached: they are tried again.
It also keeps each re-encoding made to fit a budget, and which one fitted a book,
so that a rebuild re-encodes nothing either (nor reads the pictures that those
re-encodings replace: `fetch_to_budget`). The pictures returned from the cache
hold no bytes, only where to read them (`Picture.data`), so that a book's thousands
of pictures are never all in memory at once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import PIL
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from convert.download import Downloader
from convert.errors import ConvertError
from convert.fsutil import write_atomic

log = logging.getLogger(__name__)

MAX_PIXELS = 80_000_000
"""Larger pictures are refused before decoding: 80 megapixels is 320 MB as RGBA."""

# Decoding a large picture takes up to 4 bytes a pixel: only a few at a time.
_LARGE_PIXELS = 16_000_000
_LARGE_DECODES = threading.BoundedSemaphore(2)

# Bump when the processing changes, so that old prepared pictures are not reused.
_CACHE_VERSION = 1

# What Pillow may try when opening: only the formats of the web, so that the
# decoders of obscure formats never see downloaded bytes.
_WANTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF")
_JPEG_SOURCES = ("JPEG", "MPO")  # MPO: a camera's JPEG with extra frames

_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}
_ENDINGS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif"}

# EXIF orientation → the transposition that shows the picture upright.
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION = 0x0112

_SHRINK_QUALITIES = (75, 60, 45)
_SHRINK_SCALES = (0.75, 0.5)

_MB = 1_000_000


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
    """File name from a hash of `data`: `p-<16 hex>.jpg`, `.png` or `.gif`; never from the URL."""

    media_type: str
    """`image/jpeg`, `image/png` or `image/gif`."""

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
        data = _read_bytes(self.source)
        if data is None or hashlib.sha256(data).hexdigest() != self.sha256:
            raise ConvertError(self.source, "the picture cache changed during the build; run again")
        return data


@dataclass(frozen=True, slots=True)
class PictureOptions:
    """How pictures are prepared for an e-reader."""

    max_width: int = 1440
    """Wider pictures are scaled down to this width, keeping their aspect ratio."""

    max_height: int = 1920
    """Taller pictures are scaled down to this height, keeping their aspect ratio."""

    grayscale: bool = False
    """Convert every picture to shades of grey (smaller, and all an e-ink screen shows)."""

    jpeg_quality: int = 85
    """Quality of the JPEGs written, 1 to 100."""

    max_count: int = 2000
    """At most this many pictures per book; the rest are skipped, with a warning."""

    workers: int = 8
    """Downloads at the same time."""

    def __post_init__(self) -> None:
        if self.max_width < 1 or self.max_height < 1:
            raise ValueError("max_width and max_height must be at least 1")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be between 1 and 100")
        if self.max_count < 0:
            raise ValueError("max_count must not be negative")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")


def fetch_pictures(
    urls: Sequence[str], downloader: Downloader, cache_dir: Path, options: PictureOptions
) -> dict[str, Picture]:
    """Fetch, check and prepare each picture; those that fail are absent, with a warning."""
    unique = _within_count(urls, options)
    cache = _Cache(cache_dir, options)
    hits = {url: p for url in unique if (p := _checked_hit(cache, url)) is not None}
    return _fetch_rest(unique, hits, downloader, cache, options)


def fetch_to_budget(
    urls: Sequence[str],
    downloader: Downloader,
    cache_dir: Path,
    options: PictureOptions,
    budget_bytes: int,
) -> dict[str, Picture]:
    """`fetch_pictures`, then `shrink_to_budget` when the pictures are over `budget_bytes`.

    The same pictures as those two calls; but when the cache remembers the shrinking
    that fitted these pictures to this budget, and still has every re-encoding of it,
    the pictures it replaces are neither read nor checked (only what goes into the book
    is): a warm rebuild of a book over budget reads each picture's bytes once here.
    """
    unique = _within_count(urls, options)
    cache = _Cache(cache_dir, options)
    known = {url: recorded for url in unique if (recorded := cache.known(url)) is not None}
    # The 404s and the like, which are never cached, are tried again in either case.
    unchecked = {url: recorded.picture(url) for url, recorded in known.items()}
    pictures = _fetch_rest(unique, unchecked, downloader, cache, options, quiet=True)
    files = {p.name: p for p in pictures.values()}
    fitted = _fit_remembered(files, budget_bytes, options, cache)
    if fitted is not None:
        chosen, step = fitted
        _log_ready(pictures, unique, len(known))
        _log_shrunk(_total(files.values()), _total(chosen.values()), budget_bytes, step)
        return {url: replace(chosen[p.name], url=url) for url, p in pictures.items()}
    # The pictures from the cache are needed themselves: checked as `fetch_pictures`
    # does, and those whose file was damaged are fetched again.
    damaged = [url for url, p in known.items() if not _intact(p.source, p.sha256)]
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


def _checked_hit(cache: _Cache, url: str) -> Picture | None:
    """The cache's picture for `url`, its bytes checked; None when unknown or damaged."""
    recorded = cache.known(url)
    if recorded is None or not _intact(recorded.source, recorded.sha256):
        return None
    return recorded.picture(url)


def _fetch_rest(
    unique: list[str],
    hits: dict[str, Picture],
    downloader: Downloader,
    cache: _Cache,
    options: PictureOptions,
    *,
    quiet: bool = False,
) -> dict[str, Picture]:
    """`hits`, and the other URLs of `unique` downloaded and prepared, in `unique`'s order.

    The cache is read in the caller's thread: threads would read and hash in parallel,
    but the GIL handed back and forth between them for each small file costs more than
    that saves.
    """
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="picture") as pool:
        missing = [url for url in unique if url not in hits]
        found = pool.map(lambda url: _picture(url, downloader, cache, options), missing)
        fetched = dict(zip(missing, found, strict=True))
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
    before = _total(files.values())
    if before <= budget_bytes:
        return dict(pictures)
    steps = _shrink_steps(options)
    best: dict[str, Picture] = files
    best_step = (options.jpeg_quality, 1.0)
    cache = _Cache(cache_dir, options) if cache_dir is not None else None
    plan = _plan_key(files.values(), budget_bytes, steps)
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="shrink") as pool:
        # The same pictures and budget as a build before: try the step that fitted then
        # first. Re-encoding is deterministic, so the steps before it still do not fit
        # and the loop below would end there too, having looked up every step before.
        remembered = cache.fitting_step(plan) if cache is not None else None
        if remembered is not None and remembered in steps:
            attempt = _shrink_all(files, *remembered, cache, pool)
            if _total(attempt.values()) <= budget_bytes:
                best, best_step = attempt, remembered
        for quality, scale in steps if best is files else ():
            attempt = _shrink_all(files, quality, scale, cache, pool)
            if _total(attempt.values()) < _total(best.values()):
                best, best_step = attempt, (quality, scale)
            if _total(best.values()) <= budget_bytes:
                if cache is not None:
                    cache.remember_step(plan, best_step)
                break
        if cache is not None and best is not files:
            best = _checked(files, best, best_step, cache, pool)
    _log_shrunk(before, _total(best.values()), budget_bytes, best_step)
    return {url: replace(best[p.name], url=url) for url, p in pictures.items()}


def _shrink_steps(options: PictureOptions) -> list[tuple[int, float]]:
    """The (JPEG quality, scale) tried in turn: lower qualities, then smaller sizes."""
    floor = min(_SHRINK_QUALITIES[-1], options.jpeg_quality)
    steps = [(q, 1.0) for q in _SHRINK_QUALITIES if q < options.jpeg_quality]
    return steps + [(floor, scale) for scale in _SHRINK_SCALES]


def _fit_remembered(
    files: dict[str, Picture], budget_bytes: int, options: PictureOptions, cache: _Cache
) -> tuple[dict[str, Picture], tuple[int, float]] | None:
    """The re-encodings `shrink_to_budget` would choose for `files` (by name) and their
    step, when they are over the budget and the cache remembers the step that fitted and
    holds each of its re-encodings intact; else None. The originals are not read."""
    steps = _shrink_steps(options)
    if _total(files.values()) <= budget_bytes:
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
    if _total(chosen.values()) > budget_bytes:
        return None
    if not all(_intact(p.source, p.sha256) for p in chosen.values()):
        return None  # `shrink_to_budget` makes the damaged ones again, from the originals
    return chosen, step


def _log_shrunk(before: int, after: int, budget_bytes: int, step: tuple[int, float]) -> None:
    how = f"JPEG quality {step[0]}, {step[1]:.0%} size"
    if after <= budget_bytes:
        # A warning, not info: the reader gets smaller pictures than they asked for.
        log.warning(
            "pictures shrunk from %.1f MB to %.1f MB to fit the %.1f MB budget (%s)",
            before / _MB,
            after / _MB,
            budget_bytes / _MB,
            how,
        )
    else:
        log.warning(
            "pictures shrunk from %.1f MB to only %.1f MB, still over the %.1f MB budget (%s)",
            before / _MB,
            after / _MB,
            budget_bytes / _MB,
            how,
        )


# --- one picture ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A prepared picture, before it is tied to a URL: its bytes, or the cache file of them."""

    media_type: str
    width: int
    height: int
    size: int
    sha256: str
    source: bytes | str

    @classmethod
    def encoded(cls, media_type: str, data: bytes, width: int, height: int) -> _Prepared:
        """A picture just encoded, held in memory."""
        return cls(media_type, width, height, len(data), hashlib.sha256(data).hexdigest(), data)

    def picture(self, url: str) -> Picture:
        return Picture(
            url=url,
            name=_name(self.sha256, self.media_type),
            media_type=self.media_type,
            width=self.width,
            height=self.height,
            size=self.size,
            sha256=self.sha256,
            source=self.source,
        )


class _Refused(Exception):
    """Bytes that are not made into a picture, with the reason."""


def _picture(
    url: str, downloader: Downloader, cache: _Cache, options: PictureOptions
) -> Picture | None:
    """The picture at `url`, downloaded and prepared (unless the cache has those bytes
    prepared already); None on failure."""
    try:
        fetched = downloader.get(url)
    except ConvertError as error:
        log.warning("%s", error)
        return None
    content = hashlib.sha256(fetched.content).hexdigest()
    prepared = cache.prepared(content)
    if prepared is None or not _intact(prepared.source, prepared.sha256):
        try:
            prepared = _prepare(fetched.content, options)
        except _Refused as error:
            log.warning("%s: %s", url, error)
            return None
        prepared = cache.store(content, prepared)
    cache.remember(url, content)
    return prepared.picture(url)


def _prepare(content: bytes, options: PictureOptions) -> _Prepared:
    """Decode, flatten, scale down and re-encode one download; _Refused when it cannot be."""
    try:
        return _prepare_image(content, options)
    except _Refused:
        raise
    except UnidentifiedImageError:
        raise _Refused("not a picture") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _Refused(f"too large: {error}") from None
    except Exception as error:  # decoders raise many unrelated types on broken input
        detail = " ".join(str(error).split())  # one log line, whatever the decoder said
        raise _Refused(f"not a picture ({type(error).__name__}: {detail})") from None


def _prepare_image(content: bytes, options: PictureOptions) -> _Prepared:
    image: Image.Image = _open(content)
    large = image.width * image.height > _LARGE_PIXELS
    with _LARGE_DECODES if large else contextlib.nullcontext():
        return _prepare_opened(image, options)


def _prepare_opened(image: Image.Image, options: PictureOptions) -> _Prepared:
    source = image.format or ""
    orientation = _orientation(image)
    # The box in stored pixels: a picture shown turned a quarter has its sides swapped.
    box = (options.max_width, options.max_height)
    if orientation >= 5:
        box = (options.max_height, options.max_width)
    size = _fit(image.size, box)
    if source in _JPEG_SOURCES and size != image.size:
        # libjpeg decodes at 1/2, 1/4 or 1/8 directly: far less memory and time.
        image.draft(None, size)
    image.load()
    transparent = _is_transparent(image)
    if source == "GIF":
        target = "GIF"
    elif source == "PNG" and not transparent:
        target = "PNG"
    else:
        target = "JPEG"
    if image.size != size:
        image = _resizable(image, transparent).resize(
            size, Image.Resampling.LANCZOS, reducing_gap=3.0
        )
    image = _flatten(image) if transparent else _plain(image, target != "JPEG")
    if options.grayscale and image.mode != "L":
        image = image.convert("L")
    if orientation in _ORIENTATIONS:
        image = image.transpose(_ORIENTATIONS[orientation])
    return _encode(image, target, options.jpeg_quality)


@functools.cache
def _formats() -> tuple[str, ...]:
    """The wanted formats this Pillow can open (AVIF needs a recent build)."""
    Image.init()
    return tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)


# catch_warnings changes process-wide state: only one thread may hold it at a time.
_OPEN_LOCK = threading.Lock()


def _open(content: bytes) -> ImageFile.ImageFile:
    """Open (header only) with Pillow's bomb warning as an error and our own pixel limit."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(content), formats=_formats())
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _Refused(
            f"too large: {width}×{height} pixels, over {MAX_PIXELS // 1_000_000} megapixels"
        )
    if width < 1 or height < 1:
        raise _Refused(f"not a picture ({width}×{height} pixels)")
    return image


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation, 1 (upright) when absent or unreadable."""
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block raises assorted types; the pixels are fine
        return 1
    return value if isinstance(value, int) else 1


def _fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down to fit `box`, aspect ratio kept; never scaled up."""
    width, height = size
    scale = min(box[0] / width, box[1] / height, 1.0)
    if scale >= 1.0:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def _is_transparent(image: Image.Image) -> bool:
    """True when some pixel is not fully opaque (an opaque alpha channel does not count)."""
    if not image.has_transparency_data:
        return False
    if "A" in image.getbands():
        low = image.getchannel("A").getextrema()[0]
        return not isinstance(low, tuple) and low < 255
    return True  # a transparent palette entry or colour ("transparency" in info)


def _resizable(image: Image.Image, transparent: bool) -> Image.Image:
    """A mode that resizes well: palettes and bilevel images only resize by nearest pixel."""
    if image.mode == "P":
        return image.convert("RGBA" if transparent else "RGB")
    if image.mode == "PA":
        return image.convert("RGBA")
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I"):
        return _sixteen_to_eight(image)
    return image


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    # Pillow's own conversion clips 16-bit values at 255 instead of scaling them.
    return image.convert("I").point(lambda v: v / 256).convert("L")


def _flatten(image: Image.Image) -> Image.Image:
    """The picture laid on white: e-readers and JPEG have no transparency."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _plain(image: Image.Image, keep_palette: bool) -> Image.Image:
    """An opaque picture in L, RGB (sRGB) or, when `keep_palette`, P mode."""
    mode = image.mode
    if mode in ("L", "RGB", "CMYK"):
        profile = image.info.get("icc_profile")
        if profile and mode != "L":
            return _to_srgb(image, profile)
        return image if mode != "CMYK" else image.convert("RGB")
    if mode == "P":
        return image if keep_palette else image.convert("RGB")
    if mode in ("1", "LA", "La"):
        return image.convert("L")
    if mode.startswith("I"):
        return _sixteen_to_eight(image)
    return image.convert("RGB")


def _to_srgb(image: Image.Image, profile: bytes) -> Image.Image:
    """Colours converted from the embedded profile to sRGB, which the profile-less output means."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A broken profile: the colours will be a little off, the picture is still fine.
        return image.convert("RGB")
    return converted if converted is not None else image.convert("RGB")


def _encode(image: Image.Image, target: str, quality: int) -> _Prepared:
    """The picture in `target` format, deterministic and without metadata."""
    if target == "JPEG" and image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    if target == "GIF" and image.mode not in ("L", "P"):
        image = image.quantize(256)
    # Pillow's PNG and GIF writers copy an ICC profile, comments and more from
    # `info`, and the EXIF of the source would follow: write none of it.
    image.info = {}
    buffer = io.BytesIO()
    if target == "JPEG":
        image.save(buffer, "JPEG", quality=quality, optimize=True)
    elif target == "PNG":
        image.save(buffer, "PNG", compress_level=9)
    else:
        image.save(buffer, "GIF")
    return _Prepared.encoded(_MEDIA_TYPES[target], buffer.getvalue(), image.width, image.height)


def _name(sha256: str, media_type: str) -> str:
    return f"p-{sha256[:16]}{_ENDINGS[media_type]}"


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _intact(source: bytes | str, sha256: str) -> bool:
    """True when the picture's bytes are in memory, or its cache file still holds them."""
    if isinstance(source, bytes):
        return True
    data = _read_bytes(source)
    return data is not None and hashlib.sha256(data).hexdigest() == sha256


# --- shrinking ------------------------------------------------------------------------


def _total(pictures: Iterable[Picture]) -> int:
    return sum(p.size for p in pictures)


def _plan_key(files: Iterable[Picture], budget_bytes: int, steps: list[tuple[int, float]]) -> str:
    """What decides the step that fits: the files, the budget and the steps tried."""
    plan = [sorted(p.sha256 for p in files), budget_bytes, steps]
    return hashlib.sha256(json.dumps(plan).encode()).hexdigest()


def _shrink_all(
    files: dict[str, Picture],
    quality: int,
    scale: float,
    cache: _Cache | None,
    pool: ThreadPoolExecutor,
) -> dict[str, Picture]:
    """Every file at `quality` and `scale`: the cache's record when it has one (bytes
    unchecked: see `_checked`), else re-encoded in the pool."""
    found = {
        name: cache.shrunk(picture, quality, scale) if cache is not None else None
        for name, picture in files.items()
    }
    missing = [name for name, smaller in found.items() if smaller is None]
    made = pool.map(lambda name: _reencode_cached(files[name], quality, scale, cache), missing)
    found.update(zip(missing, made, strict=True))
    return {name: smaller for name, smaller in found.items() if smaller is not None}


def _checked(
    files: dict[str, Picture],
    chosen: dict[str, Picture],
    step: tuple[int, float],
    cache: _Cache,
    pool: ThreadPoolExecutor,
) -> dict[str, Picture]:
    """The chosen re-encodings, each checked against its record; a damaged one is made again."""
    damaged = [name for name, p in chosen.items() if not _intact(p.source, p.sha256)]
    remade = pool.map(lambda name: _reencode_cached(files[name], *step, cache, again=True), damaged)
    return chosen | dict(zip(damaged, remade, strict=True))


def _reencode_cached(
    picture: Picture, quality: int, scale: float, cache: _Cache | None, *, again: bool = False
) -> Picture:
    """`_reencode`, remembered in the cache by the picture's bytes, quality and scale
    (`again`: even when the cache has a record, a damaged one)."""
    if cache is None:
        return _reencode(picture, quality, scale).picture(picture.url)
    known = None if again else cache.shrunk(picture, quality, scale)
    if known is not None:
        return known
    smaller = _reencode(picture, quality, scale)
    return cache.store(_shrunk_key(picture, quality, scale), smaller).picture(picture.url)


def _shrunk_key(picture: Picture, quality: int, scale: float) -> str:
    return f"{picture.sha256}:shrunk:{quality}:{scale}"


def _reencode(picture: Picture, quality: int, scale: float) -> _Prepared:
    """The smallest of `picture` and its re-encodings at `quality` and `scale`."""
    data = picture.data
    image: Image.Image = _open(data)
    image.load()
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = _resizable(image, False).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    # The original in memory: when it stays the smallest, the cache keeps a copy under
    # this re-encoding's key, so that the next build knows without re-encoding.
    original = _Prepared(
        picture.media_type, picture.width, picture.height, picture.size, picture.sha256, data
    )
    candidates = [original]
    if picture.media_type == "image/gif":
        if scale < 1.0:
            candidates.append(_encode(image, "GIF", quality))
    else:
        # A big PNG (a photo saved as PNG) is often far smaller as JPEG.
        if picture.media_type == "image/png" and scale < 1.0:
            candidates.append(_encode(image, "PNG", quality))
        candidates.append(_encode(image, "JPEG", quality))
    return min(candidates, key=lambda c: c.size)  # the first on ties: the original


# --- the cache ------------------------------------------------------------------------


class _Cache:
    """Per URL the hash of its bytes; per content hash and options the prepared picture.

    A prepared picture is two files: `<key>.bin`, its bytes, and `<key>.json`, its
    record (media type, size in pixels, length and SHA-256 of the bytes). A lookup
    reads only the record and the length of the bytes file; the bytes are read and
    checked against the record (`_intact`) when the picture is kept, and again when
    it is written into a book (`Picture.data`).
    """

    def __init__(self, folder: Path, options: PictureOptions) -> None:
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
        ]
        self.variant = hashlib.sha256(json.dumps(variant).encode()).hexdigest()[:16]
        self._lock = threading.Lock()
        self._warned = False

    def _url_path(self, url: str) -> str:
        name = hashlib.sha256(url.encode("utf-8")).hexdigest()
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

    def known(self, url: str) -> _Prepared | None:
        """The prepared picture of what `url` served last, if recorded (bytes unchecked)."""
        content = self.content_of(url)
        return self.prepared(content) if content is not None else None

    def shrunk(self, picture: Picture, quality: int, scale: float) -> Picture | None:
        """A re-encoding of `picture` made before, if recorded (bytes unchecked)."""
        prepared = self.prepared(_shrunk_key(picture, quality, scale))
        return prepared.picture(picture.url) if prepared is not None else None

    def prepared(self, content: str) -> _Prepared | None:
        """The prepared picture of those bytes, unless its record is missing or damaged or
        its bytes file is missing or of another length. The bytes themselves are not read:
        `_intact` checks them."""
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
            media_type not in _ENDINGS
            or not isinstance(width, int)
            or not isinstance(height, int)
            or not (isinstance(sha256, str) and len(sha256) == 64)
            or size != length
        ):
            return None
        return _Prepared(str(media_type), width, height, length, sha256, data_path)

    def store(self, content: str, prepared: _Prepared) -> _Prepared:
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
