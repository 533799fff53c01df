"""One picture's bytes made into what an output embeds: checked, decoded, fitted, encoded.

For an e-reader (the EPUB), every picture is decoded and re-encoded, so what goes into a
book is always one of three plain formats, without metadata:

- JPEG stays JPEG; PNG without transparency stays PNG; GIF stays GIF (its first
  frame, flattened on white);
- WebP, AVIF and transparent PNG become JPEG, transparency flattened on white;
- anything else (an HTML error page, SVG, a truncated file, an absurdly large
  picture) is not a picture: `Refused`, with the reason.

With `keep_original` (Markdown's pictures), a JPEG, PNG, GIF or WebP is kept byte for
byte once its header is checked; only another format (AVIF) is re-encoded, unscaled.
"""

from __future__ import annotations

import functools
import io
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from convert.media.memory import PICTURE_WORKERS, OverBudget, picture_memory, shared_budget
from convert.media.picture import Picture, Prepared

MAX_PIXELS = 80_000_000
"""Larger pictures are refused before decoding, whatever the memory budget."""

# Bytes a pixel takes in Pillow's memory, by mode: 2-band and 3-band modes are padded
# to 4 bytes a pixel; modes not named here take 4.
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# What a format's decoder holds beside the picture while decoding, in bytes a pixel:
# Pillow's WebP and AVIF decoders keep the decoded frame in their own buffer, and copy
# it once more into a `bytes`, before it becomes the picture (measured: bench/picture_memory.py).
_DECODER_BYTES = {"WEBP": 12, "AVIF": 8}
# Pictures are box-reduced (`Image.reduce`) a strip of rows at a time to between one
# and two times their final size (`_REDUCING_GAP`), then resampled with Lanczos:
# conversions and resampling never copy the whole decoded picture. Strips of about:
_STRIP_PIXELS = 1_000_000
_REDUCING_GAP = 1.0

# What Pillow may try when opening: only the formats of the web, so that the
# decoders of obscure formats never see downloaded bytes.
_WANTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF")
_JPEG_SOURCES = ("JPEG", "MPO")  # MPO: a camera's JPEG with extra frames
# What `keep_original` keeps as it came: the formats every Markdown viewer shows.
_KEPT_AS_SERVED = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}

_MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}

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


@dataclass(frozen=True, slots=True)
class PictureOptions:
    """How pictures are prepared: for an e-reader, or kept as they came."""

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

    workers: int = PICTURE_WORKERS
    """Downloads at the same time."""

    memory_bytes: int = picture_memory(500, 15_000_000)
    """Bytes the pictures being decoded may hold at once (the config's `memory_mb` less
    the rest of the process and the downloads in flight); a larger one is refused."""

    keep_original: bool = False
    """Keep a JPEG, PNG, GIF or WebP as it came (no scaling, no re-encoding): for
    outputs that link pictures as files (Markdown), not for an e-reader's book."""

    def __post_init__(self) -> None:
        if self.max_width < 1 or self.max_height < 1:
            raise ValueError("max_width and max_height must be at least 1")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be between 1 and 100")
        if self.max_count < 0:
            raise ValueError("max_count must not be negative")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.memory_bytes < 1:
            raise ValueError("memory_bytes must be at least 1")


class Refused(Exception):
    """Bytes that are not made into a picture, with the reason."""


def prepare(content: bytes, options: PictureOptions) -> Prepared:
    """Decode, flatten, scale down and re-encode one download; Refused when it cannot be."""
    try:
        return _prepare_image(content, options)
    except Refused:
        raise
    except UnidentifiedImageError:
        raise Refused("not a picture") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise Refused(f"too large: {error}") from None
    except Exception as error:  # decoders raise many unrelated types on broken input
        detail = " ".join(str(error).split())  # one log line, whatever the decoder said
        raise Refused(f"not a picture ({type(error).__name__}: {detail})") from None


def _prepare_image(content: bytes, options: PictureOptions) -> Prepared:
    image: Image.Image = _open(content)
    kept = _KEPT_AS_SERVED.get(image.format or "") if options.keep_original else None
    if kept is not None:
        # The header is checked (a picture, within the pixel limit); the bytes stay.
        return Prepared.encoded(kept, content, image.width, image.height)
    width, height = image.size
    orientation, need = _planned(image, options)
    budget = shared_budget(options.memory_bytes)
    try:
        with budget.reserve(need):
            image.load()
            if orientation is None:
                orientation = _orientation(image)
            size = _target_size((width, height), options, orientation)
            return _prepare_opened(image, size, orientation, options)
    except OverBudget as error:
        raise Refused(
            f"too large to decode: {width}×{height} pixels {error}, more than the"
            f" {budget.capacity / 1e6:.0f} MB the memory budget leaves for pictures"
            " (memory_mb)"
        ) from None


def memory_needed(content: bytes, options: PictureOptions) -> int:
    """Bytes `prepare` reserves of the memory budget to make `content` (read from its header)."""
    return _planned(_open(content), options)[1]


def _planned(image: Image.Image, options: PictureOptions) -> tuple[int | None, int]:
    """The orientation, when known before decoding, and the bytes decoding will take;
    a JPEG is set to decode at reduced size (`draft`)."""
    # A JPEG's EXIF is in its header; other formats may keep it after the pixels, and
    # Pillow reads it by decoding them: only once the memory is reserved.
    orientation = _orientation(image) if image.format in _JPEG_SOURCES else None
    turns = (orientation,) if orientation is not None else (1, 8)
    sizes = [_target_size(image.size, options, turn) for turn in turns]
    if orientation is not None and sizes[0] != image.size:
        # libjpeg decodes at 1/2, 1/4 or 1/8 directly: far less memory and time.
        image.draft(None, sizes[0])
    return orientation, max(decode_cost(image, size) for size in sizes)


def _target_size(
    size: tuple[int, int], options: PictureOptions, orientation: int
) -> tuple[int, int]:
    """The stored pixels a picture of `size` is made: a picture shown turned a quarter
    (`orientation` 5 to 8) fits the box with its sides swapped."""
    if options.keep_original:
        return size
    box = (options.max_width, options.max_height)
    if orientation >= 5:
        box = (options.max_height, options.max_width)
    return _fit(size, box)


def decode_cost(image: Image.Image, size: tuple[int, int]) -> int:
    """Bytes decoding `image` (opened, not loaded) and making it `size` hold at most."""
    pixels = image.width * image.height
    decoded = pixels * (
        _STORED_BYTES.get(image.mode, 4) + _DECODER_BYTES.get(image.format or "", 0)
    )
    reduced_width, reduced_height = _reduced_size(image.size, size)
    # The strips, each copied a few times, the reduced picture, and then its conversion
    # and Lanczos' two passes (the reduced picture, then one as tall and as wide as the result).
    strips = min(pixels, _STRIP_PIXELS + image.width) * 4 * 4
    reduced = reduced_width * reduced_height * 4
    resampled = reduced + size[0] * reduced_height * 4 + size[0] * size[1] * 4 * 2
    return decoded + max(strips + reduced, resampled)


def _prepare_opened(
    image: Image.Image, size: tuple[int, int], orientation: int, options: PictureOptions
) -> Prepared:
    source = image.format or ""
    transparent = _is_transparent(image)
    if source == "GIF":
        target = "GIF"
    elif source == "PNG" and not transparent:
        target = "PNG"
    else:
        target = "JPEG"
    if image.size != size:
        image = _reduced(image, size, transparent)
        if image.size != size:
            image = _resizable(image, transparent).resize(size, Image.Resampling.LANCZOS)
    image = _flatten(image) if transparent else _plain(image, target != "JPEG")
    if options.grayscale and image.mode != "L":
        image = image.convert("L")
    if orientation in _ORIENTATIONS:
        image = image.transpose(_ORIENTATIONS[orientation])
    return _encode(image, target, options.jpeg_quality)


def _reduced_size(size: tuple[int, int], final: tuple[int, int]) -> tuple[int, int]:
    """The size `_reduced` makes of a picture of `size` to be resampled to `final`."""
    x, y = _reduction(size, final)
    return -(-size[0] // x), -(-size[1] // y)


def _reduction(size: tuple[int, int], final: tuple[int, int]) -> tuple[int, int]:
    """The box sizes (across, down) that reduce `size` to one to two times `final`."""
    return (
        max(1, int(size[0] / final[0] / _REDUCING_GAP)),
        max(1, int(size[1] / final[1] / _REDUCING_GAP)),
    )


def _reduced(image: Image.Image, final: tuple[int, int], transparent: bool) -> Image.Image:
    """`image` box-reduced towards `final`, in a mode that resamples well (laid on white
    when `transparent`), made a strip of rows at a time; `image` itself is closed.

    Resampling a whole picture converts it first (a palette to RGB, RGBA to
    premultiplied alpha), a copy of up to 4 bytes a pixel: of 80 megapixels, 320 MB.
    In strips, only the reduced picture is made whole.
    """
    across, down = _reduction(image.size, final)
    if (across, down) == (1, 1):
        return image
    width, height = image.size
    rows = down * max(1, _STRIP_PIXELS // (width * down))
    result: Image.Image | None = None
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height)))
        strip = _flatten(strip) if transparent else _resizable(strip, False)
        small = strip.reduce((across, down))
        if result is None:
            result = Image.new(small.mode, _reduced_size(image.size, final))
        result.paste(small, (0, top // down))
    assert result is not None  # a picture has at least one row
    result.info = dict(image.info)  # its colour profile above all
    image.close()  # its memory is given back now, not when the caller lets go of it
    return result


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
        raise Refused(
            f"too large: {width}×{height} pixels, over {MAX_PIXELS // 1_000_000} megapixels"
        )
    if width < 1 or height < 1:
        raise Refused(f"not a picture ({width}×{height} pixels)")
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
    if "A" not in image.getbands():
        return True  # a transparent palette entry or colour ("transparency" in info)
    # A strip at a time: the alpha channel of a whole picture is a copy of it.
    width, height = image.size
    rows = max(1, _STRIP_PIXELS // width)
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height)))
        low = strip.getchannel("A").getextrema()[0]
        if not isinstance(low, tuple) and low < 255:
            return True
    return False


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


def _encode(image: Image.Image, target: str, quality: int) -> Prepared:
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
    return Prepared.encoded(_MEDIA_TYPES[target], buffer.getvalue(), image.width, image.height)


def reencode(picture: Picture, quality: int, scale: float, memory_bytes: int) -> Prepared:
    """The smallest of `picture` and its re-encodings at `quality` and `scale`, made
    within the process's memory budget for pictures (`memory_bytes`)."""
    data = picture.data
    image: Image.Image = _open(data)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # A picture of this tool's own making: far smaller than any budget that let it be made.
    with shared_budget(memory_bytes).reserve(min(decode_cost(image, size), memory_bytes)):
        return _reencoded(picture, data, image, size, quality)


def _reencoded(
    picture: Picture, data: bytes, image: Image.Image, size: tuple[int, int], quality: int
) -> Prepared:
    image.load()
    if size != image.size:
        image = _resizable(image, False).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    # The original in memory: when it stays the smallest, the cache keeps a copy under
    # this re-encoding's key, so that the next build knows without re-encoding.
    original = Prepared(
        picture.media_type, picture.width, picture.height, picture.size, picture.sha256, data
    )
    candidates = [original]
    scaled = size != (picture.width, picture.height)
    if picture.media_type == "image/gif":
        if scaled:
            candidates.append(_encode(image, "GIF", quality))
    else:
        # A big PNG (a photo saved as PNG) is often far smaller as JPEG.
        if picture.media_type == "image/png" and scaled:
            candidates.append(_encode(image, "PNG", quality))
        candidates.append(_encode(image, "JPEG", quality))
    return min(candidates, key=lambda c: c.size)  # the first on ties: the original
