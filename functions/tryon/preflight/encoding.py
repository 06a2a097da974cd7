"""Encoding a fixed image within the rules' byte limits: JPEG, lower qualities and
then smaller sizes over the maximum, honest larger encodings under the minimum; and
what was produced read back and held to the same rules."""

from __future__ import annotations

import io
from collections.abc import Iterator

from PIL import Image

from tryon.image_rules import ImageRules
from tryon.preflight.conformance import violations
from tryon.preflight.messages import InputRejected, limit_text, mb
from tryon.preflight.opening import OPENED_FORMATS

JPEG_QUALITY = 92
# Tried in turn, then downscale steps, when a re-encoded photo is still over the rules'
# byte limit.
SMALLER_JPEG_QUALITIES = (90, 85, 80, 75)
DOWNSCALE_STEP = 0.85


def encode(name: str, image: Image.Image, icc_profile: bytes | None, original_bytes: int,
           fixes: list[str], rules: ImageRules) -> tuple[str, bytes]:
    """(format, bytes) of a JPEG within the rules' byte limits, or a PNG for flat
    images a JPEG cannot carry to the minimum."""
    low, high = rules.min_bytes, rules.max_bytes
    encoded = _jpeg(image, JPEG_QUALITY, icc_profile)
    if len(encoded) > high:
        image, encoded = _shrink(name, image, icc_profile, fixes, rules)
    elif original_bytes > high:
        fixes.append(f"re-encoded as JPEG quality {JPEG_QUALITY} to get under "
                     f"{limit_text(high)} (was {mb(original_bytes)}, now {mb(len(encoded))})")
    if len(encoded) >= low:
        if original_bytes < low:
            fixes.append(f"re-encoded to reach the {limit_text(low)} minimum "
                         f"(JPEG quality {JPEG_QUALITY})")
        return "JPEG", encoded
    for out_format, how, candidate in _larger_encodings(image, icc_profile):
        if low <= len(candidate) <= high:
            fixes.append(f"re-encoded to reach the {limit_text(low)} minimum ({how})")
            return out_format, candidate
    raise InputRejected(
        "InvalidInputLength",
        f"{name}: the image cannot be encoded in at least {limit_text(low)}, the provider's "
        "minimum. Export a larger or more detailed photo.")


def verified_output(name: str, data: bytes, fixes: list[str],
                    rules: ImageRules) -> tuple[int, int]:
    """Re-read what was produced and hold it to the same rules: a bug here must not
    reach a paid call. Returns its size."""
    with Image.open(io.BytesIO(data), formats=OPENED_FORMATS) as produced:
        produced.load()
        problems = violations(produced, data, produced.size, rules)
        size = produced.size
    if problems or not fixes:
        raise AssertionError(f"{name}: preflight produced an image that breaks the "
                             f"provider's rules ({', '.join(problems) or 'no fix recorded'})")
    return size


def _shrink(name: str, image: Image.Image, icc_profile: bytes | None, fixes: list[str],
            rules: ImageRules) -> tuple[Image.Image, bytes]:
    """Lower the JPEG quality, then the size, until the file is within the byte limit."""
    limit = limit_text(rules.max_bytes)
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
