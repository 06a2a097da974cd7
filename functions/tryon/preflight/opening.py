"""Opening an upload: its format told by content with only the accepted formats'
decoders, what its header already rules out refused before any pixel is read, then
every pixel decoded within bounds, so a damaged file is found here."""

from __future__ import annotations

import codecs
import io

import pillow_heif
from PIL import Image, UnidentifiedImageError

from tryon.image_rules import MAX_PIXELS, ImageRules
from tryon.preflight.messages import (
    FORMAT_NAMES,
    InputRejected,
    corrupt,
    not_converted,
    of,
    they,
    too_many_pixels,
)
from tryon.preflight.sizes import fit, scaled

pillow_heif.register_heif_opener()

# Under rules that upscale small photos, the shortest side still taken. It is the try-on
# models' minimum, so a photo those take is taken for every model; it is also as far as
# upscaling goes (150 to 384 px is 2.6x). A smaller image is a thumbnail or an icon, and
# blown up further it would give the model blur to copy, not a garment.
UPSCALE_FLOOR = 150

# Still raster formats preflight can convert, re-encoded as JPEG when the rules do not
# pass them through. Other formats Pillow reads are rejected: PSD layers and icon sets
# have no single faithful still image, EPS would run Ghostscript, and formats known only
# by weak header checks (TGA, PCX) could turn stray bytes into a "photo".
CONVERTED = frozenset({
    "MPO", "HEIF", "AVIF", "WEBP", "TIFF", "BMP", "GIF", "JPEG2000", "PPM", "QOI",
})
# The only decoders ever reached (`Image.open(formats=...)`): an upload in any other
# format is refused by its magic bytes without running that format's decoder, so a
# flaw in a decoder the pipeline has no use for cannot be reached by an upload.
# (An MPO is read by the JPEG decoder: Pillow registers no MPO opener.)
OPENED_FORMATS = tuple(sorted((CONVERTED - {"MPO"}) | {"JPEG", "PNG"}))
# Formats told by their magic bytes alone, to name them in the refusal.
_REFUSED_SIGNATURES = (
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"8BPS", "PSD"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"icns", "ICNS"),
    (b"DDS ", "DDS"),
    (b"\x01\xda", "SGI"),
    (b"gimp xcf", "XCF"),
)
# Multi-image files whose first image is the photo: an MPO's other frames are previews
# or depth maps, and pillow-heif opens a HEIF's primary image.
_PRIMARY_IMAGE_FORMATS = frozenset({"MPO", "HEIF"})
_ANIMATION_NAMES = {"PNG": "an animated PNG (APNG)", "TIFF": "a multi-page TIFF"}

# Magic bytes of image formats, to tell a damaged image from something that is not one.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}


def open_image(name: str, data: bytes, rules: ImageRules) -> Image.Image:
    """Open the image, reading its header only, with the accepted formats' decoders."""
    try:
        return Image.open(io.BytesIO(data), formats=OPENED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise too_many_pixels(name, rules, None, error) from None
    except MemoryError:
        raise
    except Exception as error:  # unidentified, or a decoder failed on the header
        recognized = _signature(data)
        if recognized:
            detail = ("its header cannot be read" if isinstance(error, UnidentifiedImageError)
                      else str(error))
            raise corrupt(name, recognized, detail) from None
        refused = next((fmt for magic, fmt in _REFUSED_SIGNATURES if data.startswith(magic)),
                       None)
        if refused:
            raise not_converted(name, refused) from None
        raise InputRejected(
            "NotAnImage",
            f"{name}: the file is not an image (its content is {_describe(data)}); the "
            "provider takes photos in JPEG, PNG, BMP, HEIC or WEBP format. Upload the "
            "photo itself.") from None


def check_header(name: str, image: Image.Image, rules: ImageRules) -> None:
    """Refuse what the header already rules out, before any pixel is decoded."""
    fmt = image.format or "unknown"
    if fmt not in rules.pass_through and fmt not in CONVERTED:
        raise not_converted(name, fmt)
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise too_many_pixels(name, rules, (width, height))
    _check_sides(name, width, height, rules)
    # An animated GIF, WEBP or PNG is refused even where the models take the format (the
    # Qwen models take GIFs): they would use the first frame and silently drop the rest,
    # and the first frame is not necessarily the photo meant.
    if fmt not in _PRIMARY_IMAGE_FORMATS and _is_animated(name, image):
        what = _ANIMATION_NAMES.get(fmt, f"an animated {FORMAT_NAMES.get(fmt, fmt)}")
        raise InputRejected(
            "InvalidURL",
            f"{name}: the image is {what}; export a single frame as JPEG (the provider "
            "takes one still image).")


def decode(name: str, image: Image.Image, rules: ImageRules) -> None:
    """Decode every pixel of the (first) image, so a damaged file is found here and
    not by the provider. LOAD_TRUNCATED_IMAGES stays False for this."""
    if image.format in ("JPEG", "MPO") and max(image.size) > rules.max_side:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers the target.
        image.draft(None, fit(*image.size, rules.max_side))
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise too_many_pixels(name, rules, image.size, error) from None
    except MemoryError:
        raise
    except Exception as error:
        raise corrupt(name, image.format, str(error)) from None


def _check_sides(name: str, width: int, height: int, rules: ImageRules) -> None:
    """Refuse a size that no faithful scaling brings within the rules."""
    shorter, minimum, maximum = min(width, height), rules.min_side, rules.max_side
    if shorter < minimum and not rules.upscale_small:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; each side must be at least "
            f"{minimum} px. Use a larger photo.")
    if shorter < minimum and shorter < UPSCALE_FLOOR:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; {they(rules, 'need')} at least "
            f"{minimum} px a side, and only images of at least {UPSCALE_FLOOR} px a side are "
            "upscaled to that (a smaller one is too small to enlarge faithfully). Use a photo "
            f"of at least {minimum} px a side.")
    target = scaled(width, height, rules)
    crop = f"Crop it to an aspect ratio of at most {maximum // minimum}:1."
    if max(width, height) > maximum and min(target) < minimum:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; fitting its longer side into "
            f"{maximum} px would make the shorter side {min(target)} px, under the {minimum} "
            f"px minimum{of(rules)}. {crop}")
    if max(target) > maximum:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; upscaling its shorter side to the "
            f"{minimum} px minimum{of(rules)} would make the longer side {max(target)} px, "
            f"over the {maximum} px maximum. {crop}")


def _is_animated(name: str, image: Image.Image) -> bool:
    try:
        return bool(getattr(image, "is_animated", False))
    except MemoryError:
        raise
    except Exception as error:  # frame headers past the first one are damaged
        raise corrupt(name, image.format, str(error)) from None


def _signature(data: bytes) -> str | None:
    """The image format the magic bytes claim, if any."""
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    if data.startswith(b"BM") and data[6:10] == b"\x00\x00\x00\x00":
        return "BMP"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "HEIC"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    return None


def _describe(data: bytes) -> str:
    """What a non-image upload looks like, for the message."""
    if data.startswith(b"%PDF"):
        return "a PDF document"
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data[:512])
    if "\ufffd" not in text and all(c.isprintable() or c.isspace() for c in text):
        return "HTML or XML text" if text.lstrip().startswith("<") else "text"
    return "unrecognized binary data"
