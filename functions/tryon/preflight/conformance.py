"""What keeps a decoded image from going to the provider as it is. The same rules
judge the uploads and, as a last check, everything preflight produces."""

from __future__ import annotations

from PIL import ExifTags, Image

from tryon.image_rules import ImageRules

# TIFF compressions every TIFF reader decodes; a TIFF compressed otherwise (JPEG-in-TIFF,
# LZMA, ZSTD, WEBP, CCITT) is re-encoded even where TIFF passes through.
_PLAIN_TIFF_COMPRESSIONS = frozenset({
    "raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits",
})


def violations(image: Image.Image, data: bytes, size: tuple[int, int],
               rules: ImageRules) -> list[str]:
    """The rules `image` (decoded from `data`, `size` px) breaks; empty: none."""
    problems = []
    if image.format not in rules.pass_through:
        problems.append(f"format {image.format}")
    elif image.format == "TIFF" and image.info.get("compression") not in _PLAIN_TIFF_COMPRESSIONS:
        problems.append(f"TIFF compression {image.info.get('compression')}")
    if not ((image.mode in ("RGB", "L") and bit_depth(image, data) in (None, 8))
            or (image.mode == "P" and image.format in rules.palette_formats)):
        problems.append(f"mode {image.mode}")
    if "transparency" in image.info:
        problems.append("transparency")
    if orientation(image) != 1:
        problems.append("EXIF orientation")
    if not rules.min_bytes <= len(data) <= rules.max_bytes:
        problems.append(f"{len(data)} bytes")
    if not (min(size) >= rules.min_side and max(size) <= rules.max_side):
        problems.append(f"{size[0]}x{size[1]} px")
    return problems


def orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (SyntaxError, ValueError, TypeError, OSError):
        return 1  # EXIF Pillow cannot parse carries no orientation anyone can apply


def bit_depth(image: Image.Image, data: bytes) -> int | None:
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
