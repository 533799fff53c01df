"""Pictures of a digest: fetched from a local server, checked, converted, cached and shrunk.

Every picture is made here with Pillow; the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import re
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import PIL.features
import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat
from pytest_httpserver import HTTPServer

from convert.config import Download, load_config
from convert.media.fit import shrink_to_budget
from convert.media.intake import fetch_pictures, fetch_to_budget
from convert.media.memory import MemoryBudget, OverBudget
from convert.media.picture import Picture
from convert.media.prepare import PictureOptions
from convert.net.client import Downloader

NAME = re.compile(r"p-[0-9a-f]{16}\.(jpg|png|gif)")
MAX_BYTES = 2_000_000


def limits(tmp_path: Path) -> Download:
    base = load_config().download
    return dataclasses.replace(
        base,
        allow_private=True,
        retries=0,
        backoff=0.01,
        timeout=5.0,
        max_bytes=MAX_BYTES,
        cache_dir=str(tmp_path / "http"),
    )


@pytest.fixture
def downloader(tmp_path: Path) -> Iterator[Downloader]:
    with Downloader(limits(tmp_path)) as client:
        yield client


def fetch(
    urls: list[str], tmp_path: Path, cache: Path, options: PictureOptions | None = None
) -> dict[str, Picture]:
    """fetch_pictures with a fresh downloader, as a new run would."""
    with Downloader(limits(tmp_path)) as client:
        return fetch_pictures(urls, client, cache, options or PictureOptions())


# --- pictures made here ---------------------------------------------------------------


def scene(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A picture with some structure: a gradient with a red block."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((200, 30, 30), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    return image.convert(mode)


def encode(image: Image.Image, kind: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **params)
    return buffer.getvalue()


def noise(size: tuple[int, int], seed: int) -> Image.Image:
    """A photo-like picture that compresses badly (noise, tinted per seed)."""
    grey = Image.effect_noise(size, 60 + seed)
    return Image.merge(
        "RGB", (grey, grey.rotate(90 * seed), Image.linear_gradient("L").resize(size))
    )


def transparent_png() -> bytes:
    image = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (20, 10, 40, 30))
    return encode(image, "PNG")


def png_claiming(width: int, height: int) -> bytes:
    """A PNG head claiming `width`×`height` pixels, with one tiny data chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    head = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def decoded(picture: Picture) -> Image.Image:
    image = Image.open(io.BytesIO(picture.data))
    image.load()
    return image


def serve(server: HTTPServer, path: str, body: bytes, kind: str = "image/jpeg") -> str:
    server.expect_request(path).respond_with_data(body, content_type=kind)
    return server.url_for(path)


def requests_to(server: HTTPServer) -> int:
    return len(server.log)


# --- formats ----------------------------------------------------------------------------


def test_formats_are_kept_or_converted(httpserver: HTTPServer, tmp_path: Path) -> None:
    # Content types lie on purpose: the bytes decide.
    urls = {
        "jpeg": serve(httpserver, "/a.jpg", encode(scene((80, 60)), "JPEG")),
        "png": serve(httpserver, "/b.png", encode(scene((80, 60)), "PNG"), "image/gif"),
        "alpha": serve(httpserver, "/c.png", transparent_png(), "image/png"),
        "palette": serve(
            httpserver,
            "/d.png",
            encode(scene((60, 40)).convert("P"), "PNG", transparency=0),
            "image/png",
        ),
        "webp": serve(httpserver, "/e.webp", encode(scene((80, 60), "RGBA"), "WEBP")),
        "gif": serve(httpserver, "/f.gif", encode(scene((80, 60)).convert("P"), "GIF")),
    }
    pictures = fetch(list(urls.values()), tmp_path, tmp_path / "cache")

    kinds = {key: pictures[url].media_type for key, url in urls.items()}
    assert kinds == {
        "jpeg": "image/jpeg",
        "png": "image/png",
        "alpha": "image/jpeg",
        "palette": "image/jpeg",
        "webp": "image/jpeg",
        "gif": "image/gif",
    }
    for key, url in urls.items():
        picture = pictures[url]
        image = decoded(picture)
        assert picture.url == url
        assert NAME.fullmatch(picture.name), picture.name
        assert (
            picture.name
            == f"p-{hashlib.sha256(picture.data).hexdigest()[:16]}"
            + ({"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif"}[picture.media_type])
        )
        assert image.size == (picture.width, picture.height), key
        assert (
            image.format
            == {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}[picture.media_type]
        )
    # Transparency is laid on white, and the opaque middle is kept.
    flat = decoded(pictures[urls["alpha"]]).convert("RGB")
    assert all(c > 245 for c in flat.getpixel((0, 0)))  # type: ignore[union-attr]
    assert flat.getpixel((30, 20))[2] > 200  # type: ignore[index]
    assert (pictures[urls["jpeg"]].width, pictures[urls["jpeg"]].height) == (80, 60)


@pytest.mark.skipif(not PIL.features.check("avif"), reason="this Pillow has no AVIF")
def test_avif_becomes_jpeg(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = serve(httpserver, "/a.avif", encode(scene((80, 60)), "AVIF"), "image/avif")
    picture = fetch([url], tmp_path, tmp_path / "cache")[url]
    assert (picture.media_type, picture.width, picture.height) == ("image/jpeg", 80, 60)


def test_an_opaque_alpha_channel_keeps_a_png(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = serve(httpserver, "/opaque.png", encode(scene((40, 30), "RGBA"), "PNG"))
    picture = fetch([url], tmp_path, tmp_path / "cache")[url]
    assert picture.media_type == "image/png"
    assert decoded(picture).mode == "RGB"


def test_a_camera_mpo_becomes_a_plain_jpeg(httpserver: HTTPServer, tmp_path: Path) -> None:
    first, second = scene((64, 48)), scene((64, 48)).rotate(180)
    body = encode(first, "MPO", save_all=True, append_images=[second])
    url = serve(httpserver, "/camera.jpg", body)
    picture = fetch([url], tmp_path, tmp_path / "cache")[url]
    assert picture.media_type == "image/jpeg"
    assert decoded(picture).format == "JPEG"


def test_a_huge_picture_is_scaled_down_to_fit(httpserver: HTTPServer, tmp_path: Path) -> None:
    wide = serve(httpserver, "/wide.jpg", encode(scene((6000, 4000)), "JPEG", quality=50))
    tall = serve(httpserver, "/tall.png", encode(scene((300, 4000), "L"), "PNG"))
    pictures = fetch([wide, tall], tmp_path, tmp_path / "cache")
    assert (pictures[wide].width, pictures[wide].height) == (1440, 960)
    assert decoded(pictures[wide]).size == (1440, 960)
    assert (pictures[tall].width, pictures[tall].height) == (144, 1920)
    assert pictures[tall].media_type == "image/png"


def test_small_pictures_are_never_scaled_up(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = serve(httpserver, "/tiny.gif", encode(scene((5, 3)).convert("P"), "GIF"))
    picture = fetch([url], tmp_path, tmp_path / "cache", PictureOptions(max_width=10))[url]
    assert (picture.width, picture.height) == (5, 3)


def test_grayscale_gives_mode_l_in_the_same_format(httpserver: HTTPServer, tmp_path: Path) -> None:
    jpeg = serve(httpserver, "/a.jpg", encode(scene((80, 60)), "JPEG"))
    png = serve(httpserver, "/b.png", encode(scene((80, 60)), "PNG"))
    gif = serve(httpserver, "/c.gif", encode(scene((80, 60)).convert("P"), "GIF"))
    alpha = serve(httpserver, "/d.png", transparent_png())
    options = PictureOptions(grayscale=True)
    pictures = fetch([jpeg, png, gif, alpha], tmp_path, tmp_path / "cache", options)
    assert [pictures[u].media_type for u in (jpeg, png, gif, alpha)] == [
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/jpeg",
    ]
    assert decoded(pictures[jpeg]).mode == "L"
    assert decoded(pictures[png]).mode == "L"
    assert decoded(pictures[alpha]).mode == "L"
    red, green, blue = decoded(pictures[gif]).convert("RGB").split()
    assert red.tobytes() == green.tobytes() == blue.tobytes()
    assert red.getextrema()[0] != red.getextrema()[1]  # grey, not blank


def test_metadata_is_dropped_and_orientation_applied(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = 6  # shown turned a quarter clockwise
    body = encode(scene((40, 20)), "JPEG", exif=exif.tobytes(), comment=b"private")
    url = serve(httpserver, "/photo.jpg", body)
    icc = serve(httpserver, "/icc.png", encode(scene((20, 20)), "PNG", icc_profile=b"x" * 200))

    pictures = fetch([url, icc], tmp_path, tmp_path / "cache")
    image = decoded(pictures[url])
    assert image.size == (20, 40)
    assert not image.getexif() and "exif" not in image.info and "comment" not in image.info
    assert b"SecretCam" not in pictures[url].data
    assert "icc_profile" not in decoded(pictures[icc]).info  # and a broken profile is no failure


def test_turned_pictures_fit_the_box_as_shown(httpserver: HTTPServer, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # shown turned a quarter anticlockwise: 1000 wide, 4000 high
    url = serve(httpserver, "/turned.jpg", encode(scene((4000, 1000)), "JPEG", exif=exif))
    picture = fetch([url], tmp_path, tmp_path / "cache")[url]
    assert (picture.width, picture.height) == (480, 1920)


def test_colour_profiles_and_cmyk_become_plain_srgb(httpserver: HTTPServer, tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    profiled = serve(
        httpserver, "/srgb.jpg", encode(scene((40, 30)), "JPEG", icc_profile=srgb, quality=95)
    )
    cmyk = serve(httpserver, "/print.jpg", encode(scene((40, 30), "CMYK"), "JPEG", quality=95))
    pictures = fetch([profiled, cmyk], tmp_path, tmp_path / "cache")
    for url in (profiled, cmyk):
        image = decoded(pictures[url])
        assert (image.mode, image.info.get("icc_profile")) == ("RGB", None)
        red = image.getpixel((15, 10))
        assert isinstance(red, tuple) and red[0] > 150 and red[1] < 80, (url, red)


# --- what is not a picture ----------------------------------------------------------------


def test_what_is_not_a_picture_is_absent_with_a_warning(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = serve(httpserver, "/good.jpg", encode(scene((40, 30)), "JPEG"))
    bad = {
        "html": serve(httpserver, "/page.jpg", b"<html><body>Forbidden</body></html>"),
        "svg": serve(
            httpserver,
            "/logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            "image/svg+xml",
        ),
        "truncated": serve(httpserver, "/cut.jpg", encode(scene((200, 150)), "JPEG")[:600]),
        "bmp": serve(httpserver, "/old.bmp", encode(scene((20, 10)), "BMP"), "image/bmp"),
        "missing": httpserver.url_for("/gone.jpg"),
        "oversize": serve(httpserver, "/big.jpg", b"\xff" * (MAX_BYTES + 1)),
    }
    httpserver.expect_request("/gone.jpg").respond_with_data("no", status=404)
    caplog.set_level(logging.WARNING, logger="convert.media")

    pictures = fetch([good, *bad.values()], tmp_path, tmp_path / "cache")

    assert list(pictures) == [good]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for url in bad.values():
        assert sum(m.startswith(f"{url}: ") for m in warnings) == 1, (url, warnings)
    assert f"{bad['html']}: not a picture" in warnings
    assert f"{bad['svg']}: not a picture" in warnings
    assert any(m.startswith(f"{bad['truncated']}: not a picture (") for m in warnings)
    assert any(m.startswith(f"{bad['missing']}: HTTP 404") for m in warnings)
    assert any(m.startswith(f"{bad['oversize']}: larger than") for m in warnings)
    assert all("\n" not in m for m in warnings)


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (9_000, 9_000),  # 81 megapixels: over our own limit
        (10_000, 9_000),  # over Pillow's warning limit (89.5 MP), made an error
        (20_000, 20_000),  # over Pillow's error limit
    ],
)
def test_a_decompression_bomb_is_refused_without_decoding(
    httpserver: HTTPServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    width: int,
    height: int,
) -> None:
    url = serve(httpserver, "/bomb.png", png_claiming(width, height), "image/png")
    caplog.set_level(logging.WARNING, logger="convert.media")
    assert fetch([url], tmp_path, tmp_path / "cache") == {}
    assert [r.getMessage().startswith(f"{url}: too large") for r in caplog.records] == [True]


# --- memory ----------------------------------------------------------------------------

# Run in a fresh process: its peak resident memory is that of one decode alone.
_PEAK_OF_ONE_DECODE = """
import resource, sys
from PIL import Image
from convert.media.prepare import PictureOptions, Refused, memory_needed, prepare
data = open(sys.argv[1], "rb").read()
options = PictureOptions(memory_bytes=int(sys.argv[2]))
need = memory_needed(data, options)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    made = prepare(data, options)
    outcome = f"{made.media_type} {made.width}x{made.height}"
except Refused as error:
    outcome = f"refused: {error}"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(after - before, need, outcome, sep="\\t")
"""


def peak_of_one_decode(path: Path, memory_bytes: int) -> tuple[int, int, str]:
    """(peak growth in bytes, the reservation, what came of it) of one `prepare` of `path`."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_ONE_DECODE, str(path), str(memory_bytes)],
        capture_output=True,
        text=True,
        check=True,
    )
    grown, need, outcome = done.stdout.strip().split("\t")
    return int(grown), int(need), outcome


@pytest.mark.parametrize(
    ("kind", "mode", "size", "params"),
    [
        # The 3 KB WebP of 80 megapixels: 1.36 GB to decode in full.
        ("WEBP", "RGBA", (16_383, 4_883), {"lossless": True}),
        ("PNG", "RGBA", (6_000, 6_000), {}),  # a transparent one: flattened
        ("PNG", "P", (8_900, 8_900), {}),  # a palette: converted to resize
        ("JPEG", "RGB", (8_900, 8_900), {}),  # decoded at an eighth of its size
    ],
)
def test_a_decode_never_holds_more_than_it_reserved(
    tmp_path: Path, kind: str, mode: str, size: tuple[int, int], params: dict[str, object]
) -> None:
    """Each picture reserves what its decoding takes; the process never grows beyond that
    (before: 1.36 GB for the WebP, 0.75 GB for the PNGs)."""
    image = Image.new(mode, size, (90, 160, 200, 255)[: len(mode)] if mode != "P" else 3)
    if mode == "RGBA":
        image.putpixel((5, 5), (0, 0, 0, 0))
    path = tmp_path / f"picture.{kind.lower()}"
    path.write_bytes(encode(image, kind, **params))
    del image
    budget = PictureOptions().memory_bytes

    grown, need, outcome = peak_of_one_decode(path, budget)

    assert grown <= need, (grown, need, outcome)
    if need > budget:
        assert outcome.startswith(f"refused: too large to decode: {size[0]}×{size[1]} pixels")
        assert "memory budget" in outcome and "memory_mb" in outcome
        assert grown < 20_000_000  # refused from its header: nothing decoded
    else:
        assert not outcome.startswith("refused"), outcome


_PEAK_OF_DECODES_AT_ONCE = """
import resource, sys
from concurrent.futures import ThreadPoolExecutor
from convert.media.prepare import PictureOptions, memory_needed, prepare
datas = [open(name, "rb").read() for name in sys.argv[2:]]
options = PictureOptions(memory_bytes=2 * memory_needed(datas[0], PictureOptions()))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with ThreadPoolExecutor(int(sys.argv[1])) as pool:
    made = list(pool.map(lambda data: prepare(data, options), datas))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(after - before, options.memory_bytes, len(made))
"""


def test_threads_decode_only_as_many_pictures_at_once_as_the_budget_holds(
    tmp_path: Path,
) -> None:
    """Eight threads, room for two decodes: the process grows by two decodes, not eight
    (and all eight are made)."""
    paths = []
    for number in range(8):
        image = Image.new("P", (4_000, 4_000), 3)
        image.putpixel((0, 0), number)  # distinct pictures
        paths.append(tmp_path / f"p{number}.gif")
        paths[-1].write_bytes(encode(image, "GIF"))
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_DECODES_AT_ONCE, "8", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    grown, budget, made = map(int, done.stdout.split())
    assert made == 8
    assert grown <= budget + 8_000_000, (grown, budget)  # threads' stacks and the like


_GROWTH_OF_A_COMMAND = """
import resource, sys
from convert.cli import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
code = main(sys.argv[1:])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(after - before, code, file=sys.stderr)
"""


def test_a_book_of_webps_at_the_cap_stays_within_the_memory_budget(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """The issue's reproduction: four 3 KB WebPs of 80 megapixels took 2.56 GB. Now each
    is refused from its header, with one warning, and the book is written."""
    image = Image.new("RGBA", (16_383, 4_883), (90, 160, 200, 255))
    urls = []
    for number in range(4):
        image.putpixel((0, 0), (number, 0, 0, 255))  # four distinct files
        urls.append(serve(httpserver, f"/w{number}.webp", encode(image, "WEBP", lossless=True)))
    del image
    figures = "".join(f'<figure><img src="{url}"></figure>' for url in urls)
    article = tmp_path / "article.txt"
    article.write_text(
        "<!--1716540598000-->\n[大图](https://cn.nytimes.com/china/20240524/big/)\n------\n\n"
        f'<time pudate="2024-05-24 16:08:33">2024年5月24日</time>{figures}<p>四张大图。</p>',
        encoding="utf-8",
    )
    config = tmp_path / "job.yaml"
    config.write_text(
        f"download:\n  allow_private: true\n  cache_dir: {tmp_path / 'cache'}\n", "utf-8"
    )
    book = tmp_path / "book.epub"
    command = ["-c", str(config), "epub", str(article), "-o", str(book), "--week", "all"]
    done = subprocess.run(
        [sys.executable, "-c", _GROWTH_OF_A_COMMAND, *command],
        capture_output=True,
        text=True,
        check=False,
    )
    *said, last = done.stderr.strip().splitlines()
    grown, code = map(int, last.split())
    assert code == 0, done.stderr
    assert sum("too large to decode: 16383×4883 pixels" in line for line in said) == 4
    assert grown < PictureOptions().memory_bytes, grown
    assert book.stat().st_size > 0


def test_decodes_wait_for_room_and_one_that_never_fits_is_refused() -> None:
    budget = MemoryBudget(100)
    entered = threading.Event()
    order: list[str] = []

    def second() -> None:
        with budget.reserve(50):
            order.append("second")
            entered.set()

    with budget.reserve(70):
        order.append("first")
        waiting = threading.Thread(target=second)
        waiting.start()
        assert not entered.wait(0.3)  # 70 + 50 > 100: it waits
    waiting.join(5)
    assert order == ["first", "second"]
    with pytest.raises(OverBudget, match="needs about"), budget.reserve(101):
        pass


def test_pictures_over_the_budget_are_absent_with_a_warning(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a small budget, a picture needing more is refused; the others are made."""
    small = serve(httpserver, "/small.jpg", encode(scene((400, 300)), "JPEG"))
    large = serve(httpserver, "/large.png", encode(scene((3000, 3000)), "PNG"), "image/png")
    caplog.set_level(logging.WARNING, logger="convert.media")
    options = PictureOptions(memory_bytes=20_000_000)

    pictures = fetch([small, large], tmp_path, tmp_path / "cache", options)

    assert list(pictures) == [small]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{large}: too large to decode: 3000×3000 pixels needs about")
    assert "more than the 20 MB the memory budget leaves for pictures (memory_mb)" in warnings[0]


def test_pictures_reduced_in_strips_match_the_whole_picture_resized(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Strips leave no seam: the result is the picture laid on white and resized whole."""
    image = scene((3001, 2203), "RGBA")
    alpha = Image.linear_gradient("L").resize(image.size)
    image.putalpha(alpha)
    url = serve(httpserver, "/wide.png", encode(image, "PNG"), "image/png")

    picture = fetch([url], tmp_path, tmp_path / "cache")[url]

    made = decoded(picture).convert("RGB")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    whole = Image.alpha_composite(white, image).convert("RGB").resize(made.size, Image.LANCZOS)
    difference = ImageChops.difference(made, whole).convert("L")
    rows = [difference.crop((0, y, made.width, y + 1)) for y in range(made.height)]
    worst_row = max(ImageStat.Stat(row).mean[0] for row in rows)
    assert ImageStat.Stat(difference).mean[0] < 1.5
    assert worst_row < 4, worst_row  # a seam would be a row far off


def test_a_png_turned_by_its_exif_fits_the_box_as_shown(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A PNG's EXIF is read once its memory is reserved (Pillow decodes to find it)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    url = serve(
        httpserver, "/turned.png", encode(scene((4000, 1000)), "PNG", exif=exif), "image/png"
    )
    picture = fetch([url], tmp_path, tmp_path / "cache")[url]
    assert (picture.width, picture.height) == (480, 1920)


# --- the cache ----------------------------------------------------------------------------


def three_pictures(server: HTTPServer) -> list[str]:
    return [
        serve(server, "/1.jpg", encode(scene((90, 60)), "JPEG")),
        serve(server, "/2.png", encode(scene((50, 40)), "PNG")),
        serve(server, "/3.webp", encode(scene((70, 50)), "WEBP")),
    ]


def test_a_warm_cache_makes_no_request(httpserver: HTTPServer, tmp_path: Path) -> None:
    urls = three_pictures(httpserver)
    cache = tmp_path / "cache"
    first = fetch(urls, tmp_path, cache)
    assert requests_to(httpserver) == 3

    second = fetch(urls, tmp_path, cache)  # a new downloader, as in a new run
    assert requests_to(httpserver) == 3
    assert second == first


def test_other_options_prepare_again(httpserver: HTTPServer, tmp_path: Path) -> None:
    urls = three_pictures(httpserver)
    cache = tmp_path / "cache"
    fetch(urls, tmp_path, cache)
    grey = fetch(urls, tmp_path, cache, PictureOptions(grayscale=True))
    assert requests_to(httpserver) == 6  # the originals are not kept: fetched again
    assert {decoded(p).mode for p in grey.values()} == {"L"}


@pytest.mark.parametrize("damaged", ["prepared/*.bin", "prepared/*.json", "urls/*.json"])
def test_a_damaged_cache_entry_is_fetched_again(
    httpserver: HTTPServer, tmp_path: Path, damaged: str
) -> None:
    urls = three_pictures(httpserver)
    cache = tmp_path / "cache"
    first = fetch(urls, tmp_path, cache)
    files = sorted(cache.glob(damaged))
    assert len(files) == 3
    files[0].write_bytes(files[0].read_bytes()[:10] + b"garbage")

    second = fetch(urls, tmp_path, cache)
    assert requests_to(httpserver) == 4
    assert second == first
    fetch(urls, tmp_path, cache)
    assert requests_to(httpserver) == 4  # and the entry was repaired


def test_same_bytes_share_one_prepared_file(httpserver: HTTPServer, tmp_path: Path) -> None:
    body = encode(scene((60, 40)), "WEBP")
    one = serve(httpserver, "/one.webp", body)
    two = serve(httpserver, "/elsewhere/two.webp", body)
    cache = tmp_path / "cache"
    pictures = fetch([one, two], tmp_path, cache, PictureOptions(workers=1))
    assert pictures[one].name == pictures[two].name
    assert pictures[one].data == pictures[two].data
    assert (pictures[one].url, pictures[two].url) == (one, two)
    assert len(list(cache.glob("prepared/*.bin"))) == 1
    assert len(list(cache.glob("urls/*.json"))) == 2


def test_duplicate_urls_are_fetched_once(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = serve(httpserver, "/a.jpg", encode(scene((40, 30)), "JPEG"))
    pictures = fetch([url, url, url, url], tmp_path, tmp_path / "cache")
    assert list(pictures) == [url]
    assert requests_to(httpserver) == 1


def test_pictures_beyond_the_count_are_skipped(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = encode(scene((20, 20)), "PNG")
    urls = [serve(httpserver, f"/{i}.png", body) for i in range(5)]
    caplog.set_level(logging.WARNING, logger="convert.media")
    pictures = fetch([*urls, urls[0]], tmp_path, tmp_path / "cache", PictureOptions(max_count=3))
    assert sorted(pictures) == sorted(urls[:3])
    assert requests_to(httpserver) == 3
    assert [r.getMessage() for r in caplog.records] == [
        f"2 pictures beyond the limit of 3 per book skipped, the first being {urls[3]}"
    ]


def test_output_is_deterministic(httpserver: HTTPServer, tmp_path: Path) -> None:
    urls = three_pictures(httpserver)
    urls.append(serve(httpserver, "/4.png", transparent_png()))
    urls.append(serve(httpserver, "/5.jpg", encode(scene((3000, 2000)), "JPEG")))
    first = fetch(urls, tmp_path, tmp_path / "cold-1")
    second = fetch(urls, tmp_path, tmp_path / "cold-2")
    assert requests_to(httpserver) == 10
    assert first == second


# --- the budget ----------------------------------------------------------------------------


@pytest.fixture
def large_pictures(httpserver: HTTPServer, tmp_path: Path) -> dict[str, Picture]:
    urls = [serve(httpserver, f"/{i}.jpg", encode(noise((600, 400), i), "JPEG")) for i in range(4)]
    urls.append(serve(httpserver, "/photo.png", encode(noise((500, 400), 7), "PNG")))
    urls.append(serve(httpserver, "/anim.gif", encode(noise((300, 200), 8).convert("P"), "GIF")))
    pictures = fetch(urls, tmp_path, tmp_path / "cache")
    assert len(pictures) == 6
    return pictures


def total(pictures: dict[str, Picture]) -> int:
    return sum(len(p.data) for p in {p.name: p for p in pictures.values()}.values())


def test_pictures_are_shrunk_to_fit_a_budget(
    large_pictures: dict[str, Picture], caplog: pytest.LogCaptureFixture
) -> None:
    before = total(large_pictures)
    budget = before // 3
    caplog.set_level(logging.INFO, logger="convert.media")

    shrunk = shrink_to_budget(large_pictures, budget, PictureOptions())

    assert set(shrunk) == set(large_pictures)
    assert total(shrunk) <= budget
    for url, picture in shrunk.items():
        assert picture.url == url
        assert NAME.fullmatch(picture.name)
        assert picture.name[2:18] == hashlib.sha256(picture.data).hexdigest()[:16]
        assert decoded(picture).size == (picture.width, picture.height)
    png = next(p for u, p in shrunk.items() if u.endswith("/photo.png"))
    assert png.media_type == "image/jpeg"  # a photo saved as PNG is far smaller as JPEG
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # said to the user
    assert "pictures shrunk from" in caplog.records[0].getMessage()


def test_pictures_within_the_budget_are_left_alone(large_pictures: dict[str, Picture]) -> None:
    assert shrink_to_budget(large_pictures, total(large_pictures), PictureOptions()) == (
        large_pictures
    )


def test_an_impossible_budget_gives_the_smallest_attempt(
    large_pictures: dict[str, Picture], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="convert.media")
    shrunk = shrink_to_budget(large_pictures, 1000, PictureOptions())
    assert total(shrunk) < total(large_pictures) // 3
    jpeg = next(p for u, p in shrunk.items() if u.endswith("/0.jpg"))
    assert (jpeg.width, jpeg.height) == (300, 200)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "still over the 0.0 MB left for them" in caplog.records[0].getMessage()


def fetch_fitted(urls: list[str], tmp_path: Path, cache: Path, budget: int) -> dict[str, Picture]:
    """fetch_to_budget with a fresh downloader, as a new run would."""
    with Downloader(limits(tmp_path)) as client:
        return fetch_to_budget(urls, client, cache, PictureOptions(), budget)


def damage(path: str | bytes) -> None:
    """Change a cache file's bytes, keeping its length (only its hash tells)."""
    assert isinstance(path, str)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))


def test_fetching_to_a_budget_is_fetching_then_shrinking(
    httpserver: HTTPServer, tmp_path: Path, large_pictures: dict[str, Picture]
) -> None:
    urls, cache = list(large_pictures), tmp_path / "cache"
    budget = total(large_pictures) // 3
    expected = shrink_to_budget(large_pictures, budget, PictureOptions(), cache)
    requests = requests_to(httpserver)
    assert fetch_fitted(urls, tmp_path, cache, budget) == expected
    assert fetch_fitted(urls, tmp_path, cache, total(large_pictures)) == large_pictures
    assert requests_to(httpserver) == requests  # all from the cache


@dataclasses.dataclass(frozen=True)
class FittedOnce:
    """A book's pictures fitted to a third of their size once: the cache is warm."""

    urls: list[str]
    cache: Path
    budget: int
    first: dict[str, Picture]
    requests: int  # made to the server so far

    def again(self, tmp_path: Path) -> dict[str, Picture]:
        """The same pictures fitted by a new run."""
        return fetch_fitted(self.urls, tmp_path, self.cache, self.budget)


@pytest.fixture
def fitted_once(
    httpserver: HTTPServer, tmp_path: Path, large_pictures: dict[str, Picture]
) -> FittedOnce:
    urls, cache = list(large_pictures), tmp_path / "cache"
    budget = total(large_pictures) // 3
    first = fetch_fitted(urls, tmp_path, cache, budget)
    return FittedOnce(urls, cache, budget, first, requests_to(httpserver))


def test_a_warm_rebuild_over_budget_needs_only_the_shrunk_pictures(
    httpserver: HTTPServer,
    tmp_path: Path,
    large_pictures: dict[str, Picture],
    fitted_once: FittedOnce,
) -> None:
    for picture in large_pictures.values():
        damage(picture.source)  # the originals, which the remembered shrinking replaces

    again = fitted_once.again(tmp_path)
    assert again == fitted_once.first
    assert total(again) <= fitted_once.budget  # every byte in the book checked, and right
    assert requests_to(httpserver) == fitted_once.requests


def test_a_damaged_shrunk_picture_is_made_again(
    httpserver: HTTPServer,
    tmp_path: Path,
    large_pictures: dict[str, Picture],
    fitted_once: FittedOnce,
) -> None:
    first = fitted_once.first
    shrunk = next(p for p in first.values() if p.source != large_pictures[p.url].source)
    damage(shrunk.source)

    again = fitted_once.again(tmp_path)
    assert again == first
    assert again[shrunk.url].data == first[shrunk.url].data  # made again from the original
    assert requests_to(httpserver) == fitted_once.requests


def test_a_damaged_original_is_fetched_again_when_needed(
    httpserver: HTTPServer, tmp_path: Path, large_pictures: dict[str, Picture]
) -> None:
    urls, cache = list(large_pictures), tmp_path / "cache"
    requests, size = requests_to(httpserver), total(large_pictures)
    damage(large_pictures[urls[0]].source)

    again = fetch_fitted(urls, tmp_path, cache, size)  # within the budget: the originals
    assert again == large_pictures
    assert total(again) == size  # every byte checked: the damaged file was repaired
    assert requests_to(httpserver) == requests + 1


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="jpeg_quality"):
        PictureOptions(jpeg_quality=0)
    with pytest.raises(ValueError, match="workers"):
        PictureOptions(workers=0)


def test_a_stricter_address_rule_does_not_take_what_a_looser_one_cached(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a run with allow_private: true, a run with false embedded the cached
    loopback pictures without a fetch or a warning. Now it asks, and the guard refuses."""
    url = serve(httpserver, "/local.png", encode(scene((40, 30)), "PNG"))
    cache = tmp_path / "pictures"
    assert set(fetch([url], tmp_path, cache)) == {url}  # allowed: fetched and cached
    served = len(httpserver.log)
    strict = dataclasses.replace(limits(tmp_path), allow_private=False)
    with Downloader(strict) as client:
        pictures = fetch_pictures([url], client, cache, PictureOptions())
    assert pictures == {}
    assert len(httpserver.log) == served  # refused before any connection
    assert any("127.0.0.1" in r.getMessage() and url in r.getMessage() for r in caplog.records)
    assert set(fetch([url], tmp_path, cache)) == {url}  # the looser rule still has it
    assert len(httpserver.log) == served  # from the cache: no request
