"""Preflight of input images, before any paid provider call: each photo is checked
by its content (never its file name) against the image rules of the model family it
goes to (an ImageRules, passed in by the caller), what can be fixed faithfully is
fixed and recorded, and the rest is rejected with a message that names the file, the
rule and the fix. Pure: bytes in, result out; nothing here knows about S3 or Lambda."""

from __future__ import annotations

import codecs
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pillow_heif
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from tryon.image_rules import (
    MAX_BYTES,
    MAX_INPUT_BYTES,
    MAX_SIDE,
    MIN_BYTES,
    MIN_SIDE,
    QWEN2_RULES,
    QWEN3_RULES,
    TRYON_RULES,
    ImageRules,
)

__all__ = ["MAX_INPUT_BYTES", "QWEN2_RULES", "QWEN3_RULES", "TRYON_RULES", "ImageRules",
           "InputRejected", "Prepared", "prepare_image"]

pillow_heif.register_heif_opener()

# The largest image decoded, checked against the header before any pixel is read. It
# covers the 48-50 MP modes of current phones; the worst case at that size (an RGBA
# PNG) peaks at about 550 MB, inside a 1 GB Lambda.
MAX_PIXELS = 50_000_000

JPEG_QUALITY = 92
# Tried in turn, then downscale steps, when a re-encoded photo is still over the rules'
# byte limit.
SMALLER_JPEG_QUALITIES = (90, 85, 80, 75)
DOWNSCALE_STEP = 0.85

# Under rules that upscale small photos, the shortest side still taken. It is the try-on
# models' minimum, so a photo those take is taken for every model; it is also as far as
# upscaling goes (150 to 384 px is 2.6x). A smaller image is a thumbnail or an icon, and
# blown up further it would give the model blur to copy, not a garment.
UPSCALE_FLOOR = 150


# Still raster formats preflight can convert, re-encoded as JPEG when the rules do not
# pass them through. Other formats Pillow reads are rejected: PSD layers and icon sets
# have no single faithful still image, EPS would run Ghostscript, and formats known only
# by weak header checks (TGA, PCX) could turn stray bytes into a "photo".
_CONVERTED = frozenset({
    "MPO", "HEIF", "AVIF", "WEBP", "TIFF", "BMP", "GIF", "JPEG2000", "PPM", "QOI",
})
# The only decoders ever reached (`Image.open(formats=...)`): an upload in any other
# format is refused by its magic bytes without running that format's decoder, so a
# flaw in a decoder the pipeline has no use for cannot be reached by an upload.
# (An MPO is read by the JPEG decoder: Pillow registers no MPO opener.)
OPENED_FORMATS = tuple(sorted((_CONVERTED - {"MPO"}) | {"JPEG", "PNG"}))
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
# TIFF compressions every TIFF reader decodes; a TIFF compressed otherwise (JPEG-in-TIFF,
# LZMA, ZSTD, WEBP, CCITT) is re-encoded even where TIFF passes through.
_PLAIN_TIFF_COMPRESSIONS = frozenset({
    "raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits",
})
# Multi-image files whose first image is the photo: an MPO's other frames are previews
# or depth maps, and pillow-heif opens a HEIF's primary image.
_PRIMARY_IMAGE_FORMATS = frozenset({"MPO", "HEIF"})
_FORMAT_NAMES = {"HEIF": "HEIC", "JPEG2000": "JPEG 2000"}
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

# EXIF orientation: the turn that makes the stored pixels upright (as ImageOps.exif_transpose).
_ORIENTATIONS = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, "mirror left to right"),
    3: (Image.Transpose.ROTATE_180, "rotate 180°"),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, "mirror top to bottom"),
    5: (Image.Transpose.TRANSPOSE, "mirror along the diagonal"),
    6: (Image.Transpose.ROTATE_270, "rotate 90° clockwise"),
    7: (Image.Transpose.TRANSVERSE, "mirror along the anti-diagonal"),
    8: (Image.Transpose.ROTATE_90, "rotate 90° counter-clockwise"),
}
_GRAY_MODES = {
    "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale",
    "I;16N": "16-bit grayscale", "I": "32-bit grayscale", "F": "floating-point grayscale",
}
_RESAMPLED_AS_IS = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", *_GRAY_MODES})


@dataclass(frozen=True)
class Prepared:
    """An input image the provider will take, and what was done to get there."""

    data: bytes  # the original bytes when nothing needed fixing, else the re-encoded image
    content_type: str
    extension: str
    width: int
    height: int
    fixes: tuple[str, ...]  # one human-readable line per fix
    original: dict[str, Any]  # format, width, height, bytes of the upload

    @property
    def changed(self) -> bool:
        return bool(self.fixes)


class InputRejected(ValueError):
    """An input image the provider would refuse and preflight cannot fix faithfully.
    `code` is the provider's code where one fits, so callers report both alike."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def oversized(cls, name: str, size: int, rules: ImageRules | None = None) -> InputRejected:
        """For a file too large to read: the caller raises it from the S3 object size.
        `rules` are the target models' (None: TRYON_RULES)."""
        if rules is None:
            rules = _tryon_rules()
        limit = _limit(rules.max_bytes)
        return cls("InvalidInputLength",
                   f"{name}: the file is {_mb(size)}; files over {_mb(MAX_INPUT_BYTES)} are not "
                   f"read, and {_they(rules, 'take')} at most {limit}. Export the photo as a "
                   f"JPEG of at most {limit}.")


def prepare_image(name: str, data: bytes, rules: ImageRules | None = None) -> Prepared:
    """Check one input image (`name` is its S3 key, for messages) against the rules of
    the models it goes to (None: the try-on models', TRYON_RULES) and return what to
    send to the provider, or raise InputRejected."""
    if rules is None:
        rules = _tryon_rules()
    if not data:
        raise InputRejected("NotAnImage", f"{name}: the file is empty (0 bytes); "
                            f"{_they(rules, 'need')} an image of {_byte_range(rules)}. "
                            "Upload the photo again.")
    if len(data) > MAX_INPUT_BYTES:
        raise InputRejected.oversized(name, len(data), rules)
    with warnings.catch_warnings():  # process-wide, fine for one image at a time
        # Pillow only warns between its own limit and twice that; here both are refusals.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open(name, data, rules) as image:
            return _prepare(name, data, image, rules)


def _tryon_rules() -> ImageRules:
    """TRYON_RULES with the module's try-on numbers as they are now."""
    return replace(TRYON_RULES, min_bytes=MIN_BYTES, max_bytes=MAX_BYTES, min_side=MIN_SIDE,
                   max_side=MAX_SIDE)


def _prepare(name: str, data: bytes, image: Image.Image, rules: ImageRules) -> Prepared:
    fmt = image.format or "unknown"
    width, height = image.size
    original = {"format": fmt, "width": width, "height": height, "bytes": len(data)}
    _check_header(name, image, rules)
    _decode(name, image, rules)
    if not _violations(image, data, (width, height), rules):
        content_type, extension = rules.pass_through[fmt]
        return Prepared(data, content_type, extension, width, height, (), original)

    icc_profile = image.info.get("icc_profile")
    bit_depth = _bit_depth(image, data)
    deep = f"{bit_depth}-bit {fmt}" if bit_depth not in (None, 8) else None
    target = _scaled(width, height, rules)  # the header check made sure it is within rules
    fixes: list[str] = []
    # pillow-heif hands HEIF images over upright (the container's rotation is the
    # authoritative one) with the EXIF tag reset, so this concerns the other formats.
    orientation = _orientation(image)
    if orientation != 1:
        fixes.append(_orientation_fix(orientation))
    # Downscale first, so the conversions and the turn work on fewer pixels; only
    # palette indices and 1-bit pixels, which cannot be interpolated, convert before.
    # Upscaling comes last, after the conversions, for the same reason.
    converted = image.mode not in _RESAMPLED_AS_IS
    if converted:
        image = _to_rgb_or_gray(name, image, icc_profile, deep, fixes)
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if max(target) < max(width, height):
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        fixes.append(f"downscaled {_dimensions(upright)} to "
                     f"{_dimensions(_scaled(*upright, rules))}")
    if not converted:
        image = _to_rgb_or_gray(name, image, icc_profile, deep, fixes)
    if max(target) > max(width, height):
        image = image.resize(target, Image.Resampling.LANCZOS)
        fixes.append(f"upscaled {_dimensions(upright)} to {_dimensions(_scaled(*upright, rules))}"
                     f" ({_they(rules, 'need')} at least {rules.min_side} px a side)")
    if orientation in _ORIENTATIONS:
        image = image.transpose(_ORIENTATIONS[orientation][0])

    image.info.clear()  # no EXIF (GPS, the applied orientation) or comments in the output
    out_format, encoded = _encode(name, image, _matching_profile(image.mode, icc_profile),
                                  len(data), fixes, rules)
    if fmt == "MPO":
        fixes.insert(0, "re-encoded MPO (multi-picture JPEG) as a plain JPEG of its first frame")
    elif out_format != fmt:
        fixes.insert(0, f"re-encoded {_FORMAT_NAMES.get(fmt, fmt)} as {out_format}")
    out_width, out_height = _verified_output(name, encoded, fixes, rules)
    content_type, extension = rules.pass_through[out_format]
    return Prepared(encoded, content_type, extension, out_width, out_height, tuple(fixes),
                    original)


def _open(name: str, data: bytes, rules: ImageRules) -> Image.Image:
    """Open the image, reading its header only, with the accepted formats' decoders."""
    try:
        return Image.open(io.BytesIO(data), formats=OPENED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(name, rules, None, error) from None
    except MemoryError:
        raise
    except Exception as error:  # unidentified, or a decoder failed on the header
        recognized = _signature(data)
        if recognized:
            detail = ("its header cannot be read" if isinstance(error, UnidentifiedImageError)
                      else str(error))
            raise _corrupt(name, recognized, detail) from None
        refused = next((fmt for magic, fmt in _REFUSED_SIGNATURES if data.startswith(magic)),
                       None)
        if refused:
            raise _not_converted(name, refused) from None
        raise InputRejected(
            "NotAnImage",
            f"{name}: the file is not an image (its content is {_describe(data)}); the "
            "provider takes photos in JPEG, PNG, BMP, HEIC or WEBP format. Upload the "
            "photo itself.") from None


def _check_header(name: str, image: Image.Image, rules: ImageRules) -> None:
    """Refuse what the header already rules out, before any pixel is decoded."""
    fmt = image.format or "unknown"
    if fmt not in rules.pass_through and fmt not in _CONVERTED:
        raise _not_converted(name, fmt)
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(name, rules, (width, height))
    _check_sides(name, width, height, rules)
    # An animated GIF, WEBP or PNG is refused even where the models take the format (the
    # Qwen models take GIFs): they would use the first frame and silently drop the rest,
    # and the first frame is not necessarily the photo meant.
    if fmt not in _PRIMARY_IMAGE_FORMATS and _is_animated(name, image):
        what = _ANIMATION_NAMES.get(fmt, f"an animated {_FORMAT_NAMES.get(fmt, fmt)}")
        raise InputRejected(
            "InvalidURL",
            f"{name}: the image is {what}; export a single frame as JPEG (the provider "
            "takes one still image).")


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
            f"{name}: the image is {width}x{height} px; {_they(rules, 'need')} at least "
            f"{minimum} px a side, and only images of at least {UPSCALE_FLOOR} px a side are "
            "upscaled to that (a smaller one is too small to enlarge faithfully). Use a photo "
            f"of at least {minimum} px a side.")
    target = _scaled(width, height, rules)
    crop = f"Crop it to an aspect ratio of at most {maximum // minimum}:1."
    if max(width, height) > maximum and min(target) < minimum:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; fitting its longer side into "
            f"{maximum} px would make the shorter side {min(target)} px, under the {minimum} "
            f"px minimum{_of(rules)}. {crop}")
    if max(target) > maximum:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; upscaling its shorter side to the "
            f"{minimum} px minimum{_of(rules)} would make the longer side {max(target)} px, "
            f"over the {maximum} px maximum. {crop}")


def _is_animated(name: str, image: Image.Image) -> bool:
    try:
        return bool(getattr(image, "is_animated", False))
    except MemoryError:
        raise
    except Exception as error:  # frame headers past the first one are damaged
        raise _corrupt(name, image.format, str(error)) from None


def _decode(name: str, image: Image.Image, rules: ImageRules) -> None:
    """Decode every pixel of the (first) image, so a damaged file is found here and
    not by the provider. LOAD_TRUNCATED_IMAGES stays False for this."""
    if image.format in ("JPEG", "MPO") and max(image.size) > rules.max_side:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers the target.
        image.draft(None, _fit(*image.size, rules.max_side))
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(name, rules, image.size, error) from None
    except MemoryError:
        raise
    except Exception as error:
        raise _corrupt(name, image.format, str(error)) from None


def _violations(image: Image.Image, data: bytes, size: tuple[int, int],
                rules: ImageRules) -> list[str]:
    """What keeps a decoded image from going to the provider as it is (empty: nothing).
    The same rules judge the uploads and, as a last check, everything produced here."""
    problems = []
    if image.format not in rules.pass_through:
        problems.append(f"format {image.format}")
    elif image.format == "TIFF" and image.info.get("compression") not in _PLAIN_TIFF_COMPRESSIONS:
        problems.append(f"TIFF compression {image.info.get('compression')}")
    if not ((image.mode in ("RGB", "L") and _bit_depth(image, data) in (None, 8))
            or (image.mode == "P" and image.format in rules.palette_formats)):
        problems.append(f"mode {image.mode}")
    if "transparency" in image.info:
        problems.append("transparency")
    if _orientation(image) != 1:
        problems.append("EXIF orientation")
    if not rules.min_bytes <= len(data) <= rules.max_bytes:
        problems.append(f"{len(data)} bytes")
    if not (min(size) >= rules.min_side and max(size) <= rules.max_side):
        problems.append(f"{size[0]}x{size[1]} px")
    return problems


def _to_rgb_or_gray(name: str, image: Image.Image, icc_profile: bytes | None,
                    deep: str | None, fixes: list[str]) -> Image.Image:
    """8-bit RGB, or 8-bit grayscale for gray sources, with transparency flattened.
    `deep` names samples Pillow reads as 8-bit although stored deeper: "16-bit PNG"."""
    mode = image.mode
    if mode == "CMYK":
        image = _cmyk_to_rgb(image, icc_profile)
        fixes.append("converted CMYK to RGB")
    elif mode in _GRAY_MODES:
        image = _to_8bit_gray(image)
        fixes.append(f"converted {_GRAY_MODES[mode]} to 8-bit grayscale")
    elif mode == "1":
        image = image.convert("L")
        fixes.append("converted 1-bit black and white to 8-bit grayscale")
    elif mode in ("P", "PA"):
        image = image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
        fixes.append("converted palette colors to RGB")
    elif mode in ("RGB", "L"):
        if deep:
            fixes.append(f"converted {deep} samples to 8-bit")
        if "transparency" in image.info:  # one color marked transparent (tRNS)
            image = image.convert("LA" if mode == "L" else "RGBA")
    elif mode not in ("RGBA", "LA"):  # premultiplied alpha, RGBX, YCbCr, LAB, HSV...
        try:
            image = image.convert("RGBA" if mode.endswith(("A", "a")) else "RGB")
        except ValueError:
            raise InputRejected(
                "InvalidURL",
                f"{name}: the image uses the {mode} color mode, which cannot be converted to "
                "RGB here. Export the photo as an RGB JPEG.") from None
        fixes.append(f"converted {mode} to RGB")
    if image.mode in ("RGBA", "LA"):
        image = _flatten(image, fixes)
    return image


def _cmyk_to_rgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Through the embedded CMYK profile when there is one: a plain conversion shifts
    the colors of print-oriented files noticeably."""
    if icc_profile and icc_profile[16:20] == b"CMYK":
        try:
            return ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc_profile)),
                ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            return image.convert("RGB")  # an unusable profile: the plain conversion
    return image.convert("RGB")


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """Scale deep grayscale to 0-255 by the range it was written in (not by its own
    extremes, which would change the exposure). Negative values clip to black."""
    if image.mode.startswith("I;16"):
        scale = 1 / 257
    else:
        high = image.getextrema()[1]
        if image.mode == "F" and high <= 1.0:
            scale = 255.0
        elif high <= 255:
            scale = 1.0
        elif high <= 65535:
            scale = 1 / 257
        else:
            scale = 255 / high
    return image.convert("F").point(lambda value: value * scale).convert("L")


def _flatten(image: Image.Image, fixes: list[str]) -> Image.Image:
    """Composite onto white: the provider has no notion of transparency, and a
    garment cut out on white is what its flat-lay examples show."""
    alpha = image.getchannel("A")
    color_mode = image.mode[:-1]
    if alpha.getextrema()[0] == 255:
        fixes.append("dropped an alpha channel that was fully opaque")
        return image.convert(color_mode)
    flat = Image.new(color_mode, image.size, "white")
    flat.paste(image.convert(color_mode), mask=alpha)
    fixes.append("flattened transparency onto white")
    return flat


def _encode(name: str, image: Image.Image, icc_profile: bytes | None, original_bytes: int,
            fixes: list[str], rules: ImageRules) -> tuple[str, bytes]:
    """(format, bytes) of a JPEG within the rules' byte limits, or a PNG for flat
    images a JPEG cannot carry to the minimum."""
    low, high = rules.min_bytes, rules.max_bytes
    encoded = _jpeg(image, JPEG_QUALITY, icc_profile)
    if len(encoded) > high:
        image, encoded = _shrink(name, image, icc_profile, fixes, rules)
    elif original_bytes > high:
        fixes.append(f"re-encoded as JPEG quality {JPEG_QUALITY} to get under {_limit(high)} "
                     f"(was {_mb(original_bytes)}, now {_mb(len(encoded))})")
    if len(encoded) >= low:
        if original_bytes < low:
            fixes.append(f"re-encoded to reach the {_limit(low)} minimum "
                         f"(JPEG quality {JPEG_QUALITY})")
        return "JPEG", encoded
    for out_format, how, candidate in _larger_encodings(image, icc_profile):
        if low <= len(candidate) <= high:
            fixes.append(f"re-encoded to reach the {_limit(low)} minimum ({how})")
            return out_format, candidate
    raise InputRejected(
        "InvalidInputLength",
        f"{name}: the image cannot be encoded in at least {_limit(low)}, the provider's "
        "minimum. Export a larger or more detailed photo.")


def _shrink(name: str, image: Image.Image, icc_profile: bytes | None, fixes: list[str],
            rules: ImageRules) -> tuple[Image.Image, bytes]:
    """Lower the JPEG quality, then the size, until the file is within the byte limit."""
    limit = _limit(rules.max_bytes)
    for quality in SMALLER_JPEG_QUALITIES:
        encoded = _jpeg(image, quality, icc_profile)
        if len(encoded) <= rules.max_bytes:
            fixes.append(f"lowered JPEG quality to {quality} to get under {limit}")
            return image, encoded
    quality, scale, smaller = SMALLER_JPEG_QUALITIES[-1], 1.0, image
    while len(encoded) > rules.max_bytes:
        scale *= DOWNSCALE_STEP
        size = (round(image.width * scale), round(image.height * scale))
        if min(size) < rules.min_side:
            raise InputRejected(
                "InvalidInputLength",
                f"{name}: the image cannot be compressed under {limit} without a side falling "
                f"under {rules.min_side} px. Export a smaller JPEG.")
        smaller = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        encoded = _jpeg(smaller, quality, icc_profile)
    fixes.append(f"lowered JPEG quality to {quality} and downscaled {image.width}x"
                 f"{image.height} to {smaller.width}x{smaller.height} to get under {limit}")
    return smaller, encoded


def _larger_encodings(image: Image.Image, icc_profile: bytes | None
                      ) -> Iterator[tuple[str, str, bytes]]:
    """Honest encodings of a flat image, smallest first: no synthetic detail is added."""
    yield "JPEG", "JPEG quality 100", _jpeg(image, 100, icc_profile, subsampling=0)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0, icc_profile=icc_profile)
    yield "PNG", "uncompressed PNG", buffer.getvalue()


def _jpeg(image: Image.Image, quality: int, icc_profile: bytes | None,
          subsampling: int = -1) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True, subsampling=subsampling,
               icc_profile=icc_profile)
    return buffer.getvalue()


def _verified_output(name: str, data: bytes, fixes: list[str],
                     rules: ImageRules) -> tuple[int, int]:
    """Re-read what was produced and hold it to the same rules: a bug here must not
    reach a paid call. Returns its size."""
    with Image.open(io.BytesIO(data), formats=OPENED_FORMATS) as produced:
        produced.load()
        problems = _violations(produced, data, produced.size, rules)
        size = produced.size
    if problems or not fixes:
        raise AssertionError(f"{name}: preflight produced an image that breaks the "
                             f"provider's rules ({', '.join(problems) or 'no fix recorded'})")
    return size


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (SyntaxError, ValueError, TypeError, OSError):
        return 1  # EXIF Pillow cannot parse carries no orientation anyone can apply


def _orientation_fix(orientation: int) -> str:
    if orientation in _ORIENTATIONS:
        return f"applied EXIF orientation ({_ORIENTATIONS[orientation][1]})"
    return f"dropped an invalid EXIF orientation ({orientation})"


def _scaled(width: int, height: int, rules: ImageRules) -> tuple[int, int]:
    """The size preflight sends, keeping the aspect ratio: the longer side fitted into
    max_side, or the shorter side upscaled to min_side where the rules say so, or the
    size as it is. Within the rules unless the aspect ratio rules it out."""
    if max(width, height) > rules.max_side:
        return _fit(width, height, rules.max_side)
    if rules.upscale_small and min(width, height) < rules.min_side:
        if width <= height:
            return rules.min_side, round(height * rules.min_side / width)
        return round(width * rules.min_side / height), rules.min_side
    return width, height


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size with the longer side at max_side, keeping the aspect ratio."""
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _dimensions(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _matching_profile(mode: str, icc_profile: bytes | None) -> bytes | None:
    """The source's ICC profile if it describes the output's color space (a CMYK
    profile has been applied, not carried)."""
    expected = b"RGB " if mode == "RGB" else b"GRAY"
    if icc_profile and icc_profile[16:20] == expected:
        return icc_profile
    return None


def _bit_depth(image: Image.Image, data: bytes) -> int | None:
    """Bits per sample of a PNG (from its header) or a TIFF (its BitsPerSample tag):
    Pillow reads 16-bit RGB of both as 8-bit RGB. None for other formats."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return data[24]
    if image.format == "TIFF":
        bits = getattr(image, "tag_v2", {}).get(258)  # BitsPerSample, one per sample
        if isinstance(bits, tuple) and bits:
            return max(bits)
        return bits if isinstance(bits, int) else None
    return None


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


def _not_converted(name: str, fmt: str) -> InputRejected:
    return InputRejected(
        "InvalidURL",
        f"{name}: the image is in {fmt} format, which the provider does not accept and "
        "this pipeline does not convert. Export the photo as JPEG or PNG.")


def _corrupt(name: str, fmt: str | None, detail: str) -> InputRejected:
    what = f"{_FORMAT_NAMES.get(fmt, fmt)} image" if fmt else "image"
    return InputRejected(
        "CorruptImage",
        f"{name}: the {what} is truncated or damaged and cannot be decoded "
        f"({detail.strip()[:120] or 'no detail'}). Upload the photo again, or re-export it.")


def _too_many_pixels(name: str, rules: ImageRules, size: tuple[int, int] | None,
                     error: Exception | None = None) -> InputRejected:
    if size:
        declared = f"{size[0]}x{size[1]} px ({size[0] * size[1] / 1e6:.0f} megapixels)"
    else:  # refused by Pillow's own, higher limit while reading the header
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        declared = (f"{int(pixels[1]) / 1e6:.0f} megapixels" if pixels
                    else f"more than {MAX_PIXELS // 1_000_000} megapixels")
    return InputRejected(
        "InvalidInputLength",
        f"{name}: the image declares {declared}; images over {MAX_PIXELS // 1_000_000} "
        "megapixels are refused unread to protect memory. Export the photo at most "
        f"{rules.max_side} px on its longer side.")


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _limit(size: int) -> str:
    """A byte limit as the contract writes it: 5 KB (5 KiB), 5 MB, 10 MB."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size / 1_000_000:.3g} MB"


def _byte_range(rules: ImageRules) -> str:
    if rules.min_bytes > 1:
        return f"{_limit(rules.min_bytes)}-{_limit(rules.max_bytes)}"
    return f"at most {_limit(rules.max_bytes)}"


def _they(rules: ImageRules, verb: str) -> str:
    """Who sets the rules, with `verb` (given in the plural) agreeing: "the
    qwen-image-2.0 models take", or for the try-on rules "the provider takes"."""
    if rules.subject:
        return f"{rules.subject} {verb}s"
    return f"the {rules.label} {verb}"


def _of(rules: ImageRules) -> str:
    """Whose limit a number is, after it: " of the qwen-image-2.0 models" ("" for the
    try-on rules, whose messages always left it implicit)."""
    return "" if rules.subject else f" of the {rules.label}"
