"""What each model family accepts as an input image, as data (CONTRACT.md). Kept
apart from `preflight`, which applies them, so that the model registry can name
them without loading Pillow into every function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

# The largest upload read at all (preflight compares the S3 object size with it; the
# API's upload links refuse larger files).
MAX_INPUT_BYTES = 50 * 1000 * 1000
# The largest image decoded, checked against the header before any pixel is read. It
# covers the 48-50 MP modes of current phones; the worst case at that size (an RGBA
# PNG) peaks at about 550 MB, inside a 1 GB Lambda.
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class ImageRules:
    """What one model family accepts as an input image."""

    label: str  # the family in messages: "the qwen-image-2.0 models take at most 10 MB"
    min_bytes: int
    max_bytes: int
    min_side: int
    max_side: int
    # Pillow format -> (content type, extension) of the formats sent as they are, when
    # everything else is in order. JPEG and PNG must be among them: they are what
    # preflight writes.
    pass_through: Mapping[str, tuple[str, str]]
    # A side under min_side is upscaled (and the fix recorded) instead of rejected, down
    # to UPSCALE_FLOOR.
    upscale_small: bool
    # Pass-through formats whose palette images (without transparency) are sent as they
    # are: a GIF is always one, and a palette PNG decodes the same everywhere.
    palette_formats: frozenset[str] = frozenset()
    # Who the messages say sets the rules, instead of "the <label>" (singular then).
    subject: str = ""


_JPEG_PNG = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}

# OutfitAnyone (aitryon-plus, aitryon; CONTRACT: 5 KB-5 MB, each side 150-4096 px). KB
# and MB are read the strict way at both ends: at least 5 KiB, at most 5,000,000 bytes.
# The provider documents BMP, WEBP and HEIC as accepted too, but JPEG is the one format
# every input path of the try-on API takes, so whatever is not already a conforming JPEG
# or PNG becomes a JPEG. These rules predate the other families, and their messages keep
# saying "the provider".
TRYON_RULES = ImageRules(
    label="aitryon models", min_bytes=5 * 1024, max_bytes=5 * 1000 * 1000, min_side=150,
    max_side=4096, pass_through=MappingProxyType(_JPEG_PNG), upscale_small=False,
    subject="the provider")
# qwen-image-2.0 and -2.0-pro (CONTRACT, successor models): JPG, JPEG, PNG, BMP, TIFF,
# WEBP, GIF; at most 10 MB (read as 10,000,000 bytes); sides 384-3072 px recommended,
# held here as a rule. No minimum file size is documented, so 1 byte: the re-encoding
# to reach a minimum never applies. An animated GIF stays rejected although the
# provider takes one: it would use the first frame and silently drop the rest.
QWEN2_RULES = ImageRules(
    label="qwen-image-2.0 models", min_bytes=1, max_bytes=10_000_000, min_side=384,
    max_side=3072,
    pass_through=MappingProxyType({
        **_JPEG_PNG, "BMP": ("image/bmp", "bmp"), "TIFF": ("image/tiff", "tiff"),
        "WEBP": ("image/webp", "webp"), "GIF": ("image/gif", "gif"),
    }),
    upscale_small=True, palette_formats=frozenset({"GIF", "PNG"}))
# qwen-image-3.0 and -3.0-pro: as 2.0, with sides 384-2048 px recommended.
QWEN3_RULES = replace(QWEN2_RULES, label="qwen-image-3.0 models", max_side=2048)
