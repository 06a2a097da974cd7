"""Preflight of input images, before any paid provider call: each photo is checked
by its content (never its file name) against the provider's image rules, what can
be fixed faithfully is fixed and recorded, and the rest is rejected with a message
that names the file, the rule and the fix. Pure: bytes in, result out; nothing here
knows about S3 or Lambda."""

from __future__ import annotations

import codecs
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pillow_heif
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

pillow_heif.register_heif_opener()

# The provider's rules (CONTRACT: 5 KB-5 MB, each side 150-4096 px). KB and MB are
# read the strict way at both ends: at least 5 KiB, at most 5,000,000 bytes.
MIN_BYTES = 5 * 1024
MAX_BYTES = 5 * 1000 * 1000
MIN_SIDE = 150
MAX_SIDE = 4096

# The largest upload read at all; the caller compares the S3 object size with it.
MAX_INPUT_BYTES = 50 * 1000 * 1000
# The largest image decoded, checked against the header before any pixel is read. It
# covers the 48-50 MP modes of current phones; the worst case at that size (an RGBA
# PNG) peaks at about 550 MB, inside a 1 GB Lambda.
MAX_PIXELS = 50_000_000

JPEG_QUALITY = 92
# Tried in turn, then downscale steps, when a re-encoded photo is still over 5 MB.
SMALLER_JPEG_QUALITIES = (90, 85, 80, 75)
DOWNSCALE_STEP = 0.85

# Sent untouched when everything else is in order.
_PASS_THROUGH = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
# Still raster formats re-encoded as JPEG. The provider documents BMP, WEBP and HEIC
# as accepted too, but JPEG is the one format every input path of the provider takes,
# so whatever is not already a conforming JPEG or PNG becomes a JPEG. Other formats
# Pillow reads are rejected: PSD layers and icon sets have no single faithful still
# image, EPS would run Ghostscript, and formats known only by weak header checks
# (TGA, PCX) could turn stray bytes into a "photo".
_CONVERTED = frozenset({
    "MPO", "HEIF", "AVIF", "WEBP", "TIFF", "BMP", "GIF", "JPEG2000", "PPM", "QOI",
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
    def oversized(cls, name: str, size: int) -> InputRejected:
        """For a file too large to read: the caller raises it from the S3 object size."""
        return cls("InvalidInputLength",
                   f"{name}: the file is {_mb(size)}; files over {_mb(MAX_INPUT_BYTES)} are not "
                   "read, and the provider takes at most 5 MB. Export the photo as a JPEG of "
                   "at most 5 MB.")


def prepare_image(name: str, data: bytes) -> Prepared:
    """Check one input image (`name` is its S3 key, for messages) and return what to
    send to the provider, or raise InputRejected."""
    if not data:
        raise InputRejected("NotAnImage", f"{name}: the file is empty (0 bytes); the provider "
                            "needs an image of 5 KB-5 MB. Upload the photo again.")
    if len(data) > MAX_INPUT_BYTES:
        raise InputRejected.oversized(name, len(data))
    with warnings.catch_warnings():  # process-wide, fine for one image at a time
        # Pillow only warns between its own limit and twice that; here both are refusals.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open(name, data) as image:
            return _prepare(name, data, image)


def _prepare(name: str, data: bytes, image: Image.Image) -> Prepared:
    fmt = image.format or "unknown"
    width, height = image.size
    original = {"format": fmt, "width": width, "height": height, "bytes": len(data)}
    _check_header(name, image)
    _decode(name, image)
    if not _violations(image, data, (width, height)):
        content_type, extension = _PASS_THROUGH[fmt]
        return Prepared(data, content_type, extension, width, height, (), original)

    icc_profile = image.info.get("icc_profile")
    png_bit_depth = _png_bit_depth(data)
    fixes: list[str] = []
    # pillow-heif hands HEIF images over upright (the container's rotation is the
    # authoritative one) with the EXIF tag reset, so this concerns the other formats.
    orientation = _orientation(image)
    if orientation != 1:
        fixes.append(_orientation_fix(orientation))
    # Downscale first, so the conversions and the turn work on fewer pixels; only
    # palette indices and 1-bit pixels, which cannot be interpolated, convert before.
    converted = image.mode not in _RESAMPLED_AS_IS
    if converted:
        image = _to_rgb_or_gray(name, image, icc_profile, png_bit_depth, fixes)
    if max(width, height) > MAX_SIDE:
        image = image.resize(_fit(width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        fixes.append(f"downscaled {_dimensions(upright)} to {_dimensions(_fit(*upright))}")
    if not converted:
        image = _to_rgb_or_gray(name, image, icc_profile, png_bit_depth, fixes)
    if orientation in _ORIENTATIONS:
        image = image.transpose(_ORIENTATIONS[orientation][0])

    image.info.clear()  # no EXIF (GPS, the applied orientation) or comments in the output
    out_format, encoded = _encode(name, image, _matching_profile(image.mode, icc_profile),
                                  len(data), fixes)
    if fmt == "MPO":
        fixes.insert(0, "re-encoded MPO (multi-picture JPEG) as a plain JPEG of its first frame")
    elif out_format != fmt:
        fixes.insert(0, f"re-encoded {_FORMAT_NAMES.get(fmt, fmt)} as {out_format}")
    out_width, out_height = _verified_output(name, encoded, fixes)
    content_type, extension = _PASS_THROUGH[out_format]
    return Prepared(encoded, content_type, extension, out_width, out_height, tuple(fixes),
                    original)


def _open(name: str, data: bytes) -> Image.Image:
    """Open the image, reading its header only."""
    try:
        return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(name, None, error) from None
    except MemoryError:
        raise
    except Exception as error:  # unidentified, or a decoder failed on the header
        recognized = _signature(data)
        if recognized:
            detail = ("its header cannot be read" if isinstance(error, UnidentifiedImageError)
                      else str(error))
            raise _corrupt(name, recognized, detail) from None
        raise InputRejected(
            "NotAnImage",
            f"{name}: the file is not an image (its content is {_describe(data)}); the "
            "provider takes photos in JPEG, PNG, BMP, HEIC or WEBP format. Upload the "
            "photo itself.") from None


def _check_header(name: str, image: Image.Image) -> None:
    """Refuse what the header already rules out, before any pixel is decoded."""
    fmt = image.format or "unknown"
    if fmt not in _PASS_THROUGH and fmt not in _CONVERTED:
        raise InputRejected(
            "InvalidURL",
            f"{name}: the image is in {fmt} format, which the provider does not accept and "
            "this pipeline does not convert. Export the photo as JPEG or PNG.")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(name, (width, height))
    if min(width, height) < MIN_SIDE:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; each side must be at least "
            f"{MIN_SIDE} px. Use a larger photo.")
    if max(width, height) > MAX_SIDE and min(_fit(width, height)) < MIN_SIDE:
        raise InputRejected(
            "InvalidInputLength",
            f"{name}: the image is {width}x{height} px; fitting its longer side into "
            f"{MAX_SIDE} px would make the shorter side {min(_fit(width, height))} px, under "
            f"the {MIN_SIDE} px minimum. Crop it to an aspect ratio of at most "
            f"{MAX_SIDE // MIN_SIDE}:1.")
    if fmt not in _PRIMARY_IMAGE_FORMATS and _is_animated(name, image):
        what = _ANIMATION_NAMES.get(fmt, f"an animated {_FORMAT_NAMES.get(fmt, fmt)}")
        raise InputRejected(
            "InvalidURL",
            f"{name}: the image is {what}; export a single frame as JPEG (the provider "
            "takes one still image).")


def _is_animated(name: str, image: Image.Image) -> bool:
    try:
        return bool(getattr(image, "is_animated", False))
    except MemoryError:
        raise
    except Exception as error:  # frame headers past the first one are damaged
        raise _corrupt(name, image.format, str(error)) from None


def _decode(name: str, image: Image.Image) -> None:
    """Decode every pixel of the (first) image, so a damaged file is found here and
    not by the provider. LOAD_TRUNCATED_IMAGES stays False for this."""
    if image.format in ("JPEG", "MPO") and max(image.size) > MAX_SIDE:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers the target.
        image.draft(None, _fit(*image.size))
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_many_pixels(name, image.size, error) from None
    except MemoryError:
        raise
    except Exception as error:
        raise _corrupt(name, image.format, str(error)) from None


def _violations(image: Image.Image, data: bytes, size: tuple[int, int]) -> list[str]:
    """What keeps a decoded image from going to the provider as it is (empty: nothing).
    The same rules judge the uploads and, as a last check, everything produced here."""
    problems = []
    if image.format not in _PASS_THROUGH:
        problems.append(f"format {image.format}")
    if image.mode not in ("RGB", "L") or _png_bit_depth(data) not in (None, 8):
        problems.append(f"mode {image.mode}")
    if "transparency" in image.info:
        problems.append("transparency")
    if _orientation(image) != 1:
        problems.append("EXIF orientation")
    if not MIN_BYTES <= len(data) <= MAX_BYTES:
        problems.append(f"{len(data)} bytes")
    if not (min(size) >= MIN_SIDE and max(size) <= MAX_SIDE):
        problems.append(f"{size[0]}x{size[1]} px")
    return problems


def _to_rgb_or_gray(name: str, image: Image.Image, icc_profile: bytes | None,
                    png_bit_depth: int | None, fixes: list[str]) -> Image.Image:
    """8-bit RGB, or 8-bit grayscale for gray sources, with transparency flattened."""
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
        if png_bit_depth not in (None, 8):
            fixes.append(f"converted {png_bit_depth}-bit PNG samples to 8-bit")
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
            fixes: list[str]) -> tuple[str, bytes]:
    """(format, bytes) of a JPEG within 5 KB-5 MB, or a PNG for flat images a JPEG
    cannot carry to 5 KB."""
    encoded = _jpeg(image, JPEG_QUALITY, icc_profile)
    if len(encoded) > MAX_BYTES:
        image, encoded = _shrink(name, image, icc_profile, fixes)
    elif original_bytes > MAX_BYTES:
        fixes.append(f"re-encoded as JPEG quality {JPEG_QUALITY} to get under 5 MB "
                     f"(was {_mb(original_bytes)}, now {_mb(len(encoded))})")
    if len(encoded) >= MIN_BYTES:
        if original_bytes < MIN_BYTES:
            fixes.append(f"re-encoded to reach the 5 KB minimum (JPEG quality {JPEG_QUALITY})")
        return "JPEG", encoded
    for out_format, how, candidate in _larger_encodings(image, icc_profile):
        if MIN_BYTES <= len(candidate) <= MAX_BYTES:
            fixes.append(f"re-encoded to reach the 5 KB minimum ({how})")
            return out_format, candidate
    raise InputRejected(
        "InvalidInputLength",
        f"{name}: the image cannot be encoded in at least 5 KB, the provider's minimum. "
        "Export a larger or more detailed photo.")


def _shrink(name: str, image: Image.Image, icc_profile: bytes | None,
            fixes: list[str]) -> tuple[Image.Image, bytes]:
    """Lower the JPEG quality, then the size, until the file is at most 5 MB."""
    for quality in SMALLER_JPEG_QUALITIES:
        encoded = _jpeg(image, quality, icc_profile)
        if len(encoded) <= MAX_BYTES:
            fixes.append(f"lowered JPEG quality to {quality} to get under 5 MB")
            return image, encoded
    quality, scale, smaller = SMALLER_JPEG_QUALITIES[-1], 1.0, image
    while len(encoded) > MAX_BYTES:
        scale *= DOWNSCALE_STEP
        size = (round(image.width * scale), round(image.height * scale))
        if min(size) < MIN_SIDE:
            raise InputRejected(
                "InvalidInputLength",
                f"{name}: the image cannot be compressed under 5 MB without a side falling "
                f"under {MIN_SIDE} px. Export a smaller JPEG.")
        smaller = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        encoded = _jpeg(smaller, quality, icc_profile)
    fixes.append(f"lowered JPEG quality to {quality} and downscaled {image.width}x"
                 f"{image.height} to {smaller.width}x{smaller.height} to get under 5 MB")
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


def _verified_output(name: str, data: bytes, fixes: list[str]) -> tuple[int, int]:
    """Re-read what was produced and hold it to the provider's rules: a bug here must
    not reach a paid call. Returns its size."""
    with Image.open(io.BytesIO(data)) as produced:
        produced.load()
        problems = _violations(produced, data, produced.size)
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


def _fit(width: int, height: int) -> tuple[int, int]:
    """The size with the longer side at MAX_SIDE, keeping the aspect ratio."""
    scale = MAX_SIDE / max(width, height)
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


def _png_bit_depth(data: bytes) -> int | None:
    """Bits per sample from the PNG header; Pillow reads 16-bit RGB as 8-bit RGB."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return data[24]
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


def _corrupt(name: str, fmt: str | None, detail: str) -> InputRejected:
    what = f"{_FORMAT_NAMES.get(fmt, fmt)} image" if fmt else "image"
    return InputRejected(
        "CorruptImage",
        f"{name}: the {what} is truncated or damaged and cannot be decoded "
        f"({detail.strip()[:120] or 'no detail'}). Upload the photo again, or re-export it.")


def _too_many_pixels(name: str, size: tuple[int, int] | None,
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
        f"{MAX_SIDE} px on its longer side.")


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
