"""The simulated parsing model: garment crops cut from fixed body regions.

`aitryon-parsing-v1` (CONTRACT.md, "Parsing") segments the person's own top,
bottom or dress so that it can be fed back to try-on as a garment. The
emulator cuts the regions of images.py where a full-body, front-facing figure
wears them. A region counts as found when it is not (nearly) plain
background, so a blank picture yields `null` while the shipped sample person
yields both a top and a bottom.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageStat

from . import drawing
from .drawing import Box
from .images import (
    LEGS_REGION,
    MAX_BYTES,
    MAX_SIDE,
    MIN_BYTES,
    MIN_SIDE,
    TORSO_REGION,
)

GARMENTS = ("upper", "lower", "dress")
# The only `clothes_type` values the provider documents.
CLOTHES_TYPES = (("upper",), ("lower",), ("dress",), ("upper", "lower"))
REGIONS = {
    "upper": TORSO_REGION,
    "lower": LEGS_REGION,
    # A dress covers the torso and the legs.
    "dress": (
        min(TORSO_REGION[0], LEGS_REGION[0]),
        TORSO_REGION[1],
        max(TORSO_REGION[2], LEGS_REGION[2]),
        LEGS_REGION[3],
    ),
}
# Grey-level standard deviation under which a region is plain background: a
# studio backdrop or a blank wall varies by a few levels, a worn garment (with
# its edges, folds and the skin and backdrop around it) by tens.
FOUND_STDDEV = 8.0
_JPEG_QUALITY = 95
_MAX_ENCODES = 12


@dataclass(frozen=True)
class Segment:
    """One found garment: where it is and the two images the provider returns."""

    garment: str
    bbox: Box  # x1, y1, x2, y2 in input-image pixels
    crop_jpeg: bytes  # RGB, a valid try-on input (5 KB-5 MB, sides 150-4096 px)
    preview_png: bytes  # RGBA: the crop with the background made transparent


def segment(
    person: bytes, clothes_type: Sequence[str], missing: Collection[str] = ()
) -> list[Segment | None]:
    """A Segment, or None when not found, per garment of `clothes_type`, in order.

    `missing` garments are reported as not found (the test knob). Meant to run
    in a worker thread: it decodes and encodes whole images.
    """
    figure = drawing.open_rgb(person)
    whole = (0, 0, figure.width, figure.height)
    found: list[Segment | None] = []
    for garment in clothes_type:
        box = drawing.region_in(whole, REGIONS[garment])
        crop = figure.crop(box)
        if garment in missing or not is_garment(crop):
            found.append(None)
            continue
        crop, jpeg = _encode_as_input(_fit_sides(crop))
        found.append(Segment(garment, box, jpeg, _preview(crop)))
    return found


def is_garment(region: Image.Image) -> bool:
    """Whether a region holds something other than (nearly) uniform background."""
    if region.width == 0 or region.height == 0:
        return False
    return ImageStat.Stat(region.convert("L")).stddev[0] > FOUND_STDDEV


def _fit_sides(crop: Image.Image) -> Image.Image:
    """Upscale a small crop so every side reaches 150 px, padding with its backdrop
    colour when the aspect ratio would push the long side past 4096 px."""
    short, long = min(crop.size), max(crop.size)
    scale = min(max(1.0, MIN_SIDE / short), MAX_SIDE / long)
    if scale > 1.0:
        size = (min(MAX_SIDE, round(crop.width * scale)), min(MAX_SIDE, round(crop.height * scale)))
        crop = crop.resize(size, Image.Resampling.LANCZOS)
    if min(crop.size) >= MIN_SIDE:
        return crop
    padded_size = (max(MIN_SIDE, crop.width), max(MIN_SIDE, crop.height))
    padded = Image.new("RGB", padded_size, drawing.backdrop_colour(crop))
    padded.paste(crop, ((padded.width - crop.width) // 2, (padded.height - crop.height) // 2))
    return padded


def _encode_as_input(crop: Image.Image) -> tuple[Image.Image, bytes]:
    """JPEG bytes that pass the try-on input rules, with the image they encode.

    A smooth crop can encode under the 5 KB floor and a noisy full-size one
    over the 5 MB ceiling; rescaling moves the size the right way.
    """
    data = _jpeg(crop)
    for _ in range(_MAX_ENCODES):
        if len(data) < MIN_BYTES and max(crop.size) < MAX_SIDE:
            factor = min(1.5, MAX_SIDE / max(crop.size))
        elif len(data) > MAX_BYTES and min(crop.size) > MIN_SIDE:
            factor = max(0.7, MIN_SIDE / min(crop.size))
        else:
            break
        size = (round(crop.width * factor), round(crop.height * factor))
        crop = crop.resize(size, Image.Resampling.LANCZOS)
        data = _jpeg(crop)
    return crop, data


def _jpeg(image: Image.Image) -> bytes:
    out = BytesIO()
    # Full-resolution chroma: the crop is re-read as a garment, keep its colours.
    image.save(out, format="JPEG", quality=_JPEG_QUALITY, subsampling=0)
    return out.getvalue()


def _preview(crop: Image.Image) -> bytes:
    preview = crop.convert("RGBA")
    preview.putalpha(drawing.garment_mask(crop))
    out = BytesIO()
    preview.save(out, format="PNG")
    return out.getvalue()
