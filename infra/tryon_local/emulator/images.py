"""Input images (download and validation) and the simulated try-on result.

The rules are the provider's (CONTRACT.md, "Create a try-on task"): every
input is 5 KB-5 MB, each side 150-4096 px, JPEG/JPG/PNG/BMP/WEBP/HEIC, judged by
the file's content rather than its name. The result is a visible composite
(garments pasted over the person, marked SIMULATED) so a person looking at a
demo can tell which inputs went in and that no model ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import urlsplit

import httpx
from PIL import (
    Image,
    ImageChops,
    ImageDraw,
    ImageFilter,
    ImageFont,
    ImageOps,
    UnidentifiedImageError,
)
from pillow_heif import register_heif_opener

MIN_BYTES = 5 * 1024
MAX_BYTES = 5 * 1024 * 1024
MIN_SIDE = 150
MAX_SIDE = 4096

# Pillow's names for the accepted formats. MPO is the multi-picture JPEG many
# phone cameras write; HEIF is what the pillow-heif plugin reports.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "HEIF"})
ACCEPTED_FORMATS_TEXT = "JPEG/JPG/PNG/BMP/WEBP/HEIC"

register_heif_opener()  # Pillow cannot decode HEIC by itself

# Output sizes of `parameters.resolution` (-1 keeps the person image's size).
OUTPUT_SIZES: Mapping[int, tuple[int, int]] = {1024: (576, 1024), 1280: (720, 1280)}

# Where a full-body, front-facing figure's parts usually sit, as fractions
# (left, top, right, bottom) of the person image. The shipped sample person is
# drawn to these proportions; for other photos the paste is approximate, which
# is enough to show which garment went where.
FACE_REGION = (0.36, 0.03, 0.64, 0.17)
TORSO_REGION = (0.22, 0.18, 0.78, 0.50)
LEGS_REGION = (0.27, 0.47, 0.73, 0.93)
DRESS_REGION = (0.22, 0.18, 0.78, 0.80)
DRESS_ASPECT = 1.3  # height / width from which a lone top is treated as a dress


Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels
Cutout = tuple[Image.Image, Image.Image]  # a garment and its mask, cropped to the garment
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


class InputRejected(Exception):
    """An input failed the provider's checks; the task ends FAILED with `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CheckedImage:
    format: str
    width: int
    height: int


async def fetch_input(client: httpx.AsyncClient, field: str, url: str, timeout: float) -> bytes:
    """Download one input URL the way pre-processing does, or raise InputRejected."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise InputRejected(
            "InvalidURL",
            f"{field}: {url!r} is not a public http(s) URL; local paths are not accepted.",
        )
    try:
        # One budget for the whole download: httpx's own timeout is per read,
        # so a slow trickle would otherwise never time out.
        async with asyncio.timeout(timeout):
            return await _download(client, field, url, timeout)
    except TimeoutError:
        # The provider's wording for an input it could not fetch in time.
        raise InputRejected(
            "InvalidParameter",
            "Download the media resource timed out during the data inspection process "
            f"({field}).",
        ) from None


async def _download(client: httpx.AsyncClient, field: str, url: str, timeout: float) -> bytes:
    try:
        async with client.stream("GET", url, timeout=timeout) as response:
            if response.status_code >= 400:
                raise InputRejected(
                    "InvalidURL",
                    f"{field}: downloading the image failed with HTTP {response.status_code}.",
                )
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_BYTES:
                    # Stop reading: the file is already too large to accept.
                    raise InputRejected(
                        "InvalidInputLength",
                        f"{field}: the file is larger than 5 MB; "
                        "each image must be between 5 KB and 5 MB.",
                    )
            return bytes(data)
    except httpx.TimeoutException:
        raise TimeoutError from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InputRejected(
            "InvalidURL",
            f"{field}: the URL could not be downloaded ({type(exc).__name__}); "
            "it must be a publicly reachable http(s) URL.",
        ) from None


def check_image(field: str, data: bytes) -> CheckedImage:
    """Validate downloaded bytes by content, or raise InputRejected.

    Meant to run in a worker thread: decoding a large image takes a while.
    """
    try:
        with Image.open(BytesIO(data)) as image:
            fmt = image.format or "unknown"
            width, height = image.size
            if fmt not in ACCEPTED_FORMATS:
                raise InputRejected(
                    "InvalidURL",
                    f"{field}: the file is a {fmt} image; "
                    f"accepted formats are {ACCEPTED_FORMATS_TEXT}.",
                )
            if not MIN_BYTES <= len(data) <= MAX_BYTES:
                raise InputRejected(
                    "InvalidInputLength",
                    f"{field}: the file is {len(data)} bytes; "
                    "each image must be between 5 KB and 5 MB.",
                )
            if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
                raise InputRejected(
                    "InvalidInputLength",
                    f"{field}: the image is {width}x{height} px; "
                    f"each side must be between {MIN_SIDE} and {MAX_SIDE} px.",
                )
            # Sides are bounded before decoding, so this cannot allocate more
            # than 4096x4096 pixels.
            image.load()
    except Image.DecompressionBombError:
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) tripped while reading the header.
        raise InputRejected(
            "InvalidInputLength",
            f"{field}: the image has too many pixels; "
            f"each side must be between {MIN_SIDE} and {MAX_SIDE} px.",
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InputRejected(
            "InvalidURL",
            f"{field}: the file is not a decodable image; "
            f"accepted formats are {ACCEPTED_FORMATS_TEXT}.",
        ) from None
    return CheckedImage(format=fmt, width=width, height=height)


def render_composite(
    *,
    person: bytes,
    top: bytes | None,
    bottom: bytes | None,
    resolution: int,
    restore_face: bool,
    model: str,
    task_id: str,
) -> bytes:
    """The simulated try-on result as JPEG bytes (run in a worker thread)."""
    figure = _open_rgb(person)
    if resolution in OUTPUT_SIZES:
        canvas, box = _fit(figure, OUTPUT_SIZES[resolution])
    else:
        canvas, box = figure, (0, 0, figure.width, figure.height)

    # The bottom goes first so a top's hem falls over the waistband.
    if bottom is not None:
        _paste_garment(canvas, _cut_out(_open_rgb(bottom)), _region(box, LEGS_REGION))
    if top is not None:
        cut = _cut_out(_open_rgb(top))
        # A "top" given alone that is much taller than wide is a dress or a
        # jumpsuit (CONTRACT.md: then leave bottom empty): it covers the legs too.
        tall = cut[0].height >= DRESS_ASPECT * cut[0].width
        region = DRESS_REGION if bottom is None and tall else TORSO_REGION
        _paste_garment(canvas, cut, _region(box, region))
    if not restore_face:
        _mark_new_face(canvas, _region(box, FACE_REGION))
    _draw_banner(canvas, model, task_id)

    out = BytesIO()
    canvas.save(out, format="JPEG", quality=88)
    return out.getvalue()


def _open_rgb(data: bytes) -> Image.Image:
    with Image.open(BytesIO(data)) as image:
        # Respect camera orientation, and flatten transparency onto white.
        upright = ImageOps.exif_transpose(image).convert("RGBA")
    flat = Image.new("RGB", upright.size, (255, 255, 255))
    flat.paste(upright, mask=upright.getchannel("A"))
    return flat


def _fit(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, Box]:
    """Scale to fit inside `size` keeping the aspect ratio; pad with the backdrop colour."""
    scaled = ImageOps.contain(image, size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, _backdrop(image))
    left = (size[0] - scaled.width) // 2
    top = (size[1] - scaled.height) // 2
    canvas.paste(scaled, (left, top))
    return canvas, (left, top, left + scaled.width, top + scaled.height)


def _backdrop(image: Image.Image) -> tuple[int, int, int]:
    """The colour of a plain background, taken as the median of the four corners."""
    w, h = image.width - 1, image.height - 1
    corners = [image.getpixel(xy) for xy in ((0, 0), (w, 0), (0, h), (w, h))]
    channels = zip(*corners, strict=True)
    return tuple(sorted(c)[len(corners) // 2] for c in channels)  # type: ignore[return-value]


def _region(box: Box, fractions: tuple[float, float, float, float]) -> Box:
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    fl, ft, fr, fb = fractions
    return (left + round(fl * w), top + round(ft * h), left + round(fr * w), top + round(fb * h))


def _cut_out(garment: Image.Image) -> Cutout:
    mask = _garment_mask(garment)
    bbox = mask.getbbox()
    if bbox is None:
        return garment, Image.new("L", garment.size, 235)
    return garment.crop(bbox), mask.crop(bbox)


def _paste_garment(canvas: Image.Image, cutout: Cutout, region: Box) -> None:
    garment, mask = cutout
    left, top, right, bottom = region
    scale = min((right - left) / garment.width, (bottom - top) / garment.height)
    size = (max(1, round(garment.width * scale)), max(1, round(garment.height * scale)))
    x = left + (right - left - size[0]) // 2
    y = top + (bottom - top - size[1]) // 2
    canvas.paste(
        garment.resize(size, Image.Resampling.LANCZOS),
        (x, y),
        mask=mask.resize(size, Image.Resampling.LANCZOS),
    )


def _garment_mask(garment: Image.Image) -> Image.Image:
    """Cut a flat-lay garment out of its plain background, with soft edges.

    Background is what differs little from the corner colour *and* touches the
    border, so a white print inside the garment stays opaque.
    """
    plain = Image.new("RGB", garment.size, _backdrop(garment))
    r, g, b = ImageChops.difference(garment, plain).split()
    strongest = ImageChops.lighter(ImageChops.lighter(r, g), b)
    mask = strongest.point(lambda v: 255 if v > 32 else 0)
    coverage = mask.histogram()[255] / (mask.width * mask.height)
    if not 0.05 <= coverage <= 0.97:
        # No plain background to remove (a photo, or a garment filling the
        # frame): paste the whole picture so the input is still recognisable.
        return Image.new("L", garment.size, 235)
    # Pillow's flood fill is pure Python, so it runs on a thumbnail; the
    # full-size threshold keeps the edges sharp, the thumbnail fills the holes.
    small = mask.copy()
    small.thumbnail((_FILL_SIDE, _FILL_SIDE), Image.Resampling.NEAREST)
    w, h = small.width - 1, small.height - 1
    for corner in ((0, 0), (w, 0), (0, h), (w, h)):
        if small.getpixel(corner) == 0:
            ImageDraw.floodfill(small, corner, _OUTSIDE)
    inside = small.point(lambda v: 0 if v == _OUTSIDE else 255)
    inside = inside.resize(mask.size, Image.Resampling.NEAREST).filter(ImageFilter.MinFilter(5))
    mask = ImageChops.lighter(mask, inside)
    return mask.filter(ImageFilter.MedianFilter(5)).filter(ImageFilter.GaussianBlur(1.2))


_FILL_SIDE = 160  # thumbnail side for finding the background
_OUTSIDE = 128  # marker for background pixels reached from the border


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):
        # A Pillow built without FreeType: the small bitmap font still reads.
        return ImageFont.load_default()


def _mark_new_face(canvas: Image.Image, region: Box) -> None:
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle(region, fill=(255, 200, 40, 90), outline=(255, 170, 0, 230), width=3)
    font = _font(max(12, (region[2] - region[0]) // 6))
    centre = ((region[0] + region[2]) // 2, (region[1] + region[3]) // 2)
    _centred_text(draw, centre, "new face", font, (40, 20, 0, 255))
    _composite(canvas, overlay)


def _draw_banner(canvas: Image.Image, model: str, task_id: str) -> None:
    """A translucent band across the bottom: SIMULATED, the model and the task."""
    width, height = canvas.size
    band = max(36, height // 9)
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, height - band, width, height), fill=(15, 15, 20, 165))
    top = height - band
    _centred_text(
        draw, (width // 2, top + band * 2 // 5), "SIMULATED", _font(max(14, band // 2)),
        (255, 215, 0, 255),
    )
    _centred_text(
        draw, (width // 2, top + band * 4 // 5), f"{model} | task {task_id[:8]}",
        _font(max(10, band // 5)), (240, 240, 240, 255),
    )
    _composite(canvas, overlay)


def _centred_text(
    draw: ImageDraw.ImageDraw,
    centre: tuple[int, int],
    text: str,
    font: Font,
    fill: tuple[int, int, int, int],
) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = centre[0] - (left + right) / 2
    y = centre[1] - (top + bottom) / 2
    draw.text((x, y), text, font=font, fill=fill)


def _composite(canvas: Image.Image, overlay: Image.Image) -> None:
    merged = Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")
    canvas.paste(merged)
