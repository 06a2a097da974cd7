"""One input image taken through preflight: opened and checked, sent as it is when it
conforms, else fixed, re-encoded and checked again."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image

from tryon.image_rules import MAX_INPUT_BYTES, ImageRules
from tryon.preflight.conformance import bit_depth, orientation, violations
from tryon.preflight.encoding import encode, verified_output
from tryon.preflight.fixes import (
    ORIENTATIONS,
    RESAMPLED_AS_IS,
    matching_profile,
    orientation_fix,
    to_rgb_or_gray,
)
from tryon.preflight.messages import FORMAT_NAMES, InputRejected, byte_range, dimensions, they
from tryon.preflight.opening import check_header, decode, open_image
from tryon.preflight.sizes import scaled


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


def prepare_image(name: str, data: bytes, rules: ImageRules) -> Prepared:
    """Check one input image (`name` is its S3 key, for messages) against the rules of
    the models it goes to and return what to send to the provider, or raise
    InputRejected."""
    if not data:
        raise InputRejected("NotAnImage", f"{name}: the file is empty (0 bytes); "
                            f"{they(rules, 'need')} an image of {byte_range(rules)}. "
                            "Upload the photo again.")
    if len(data) > MAX_INPUT_BYTES:
        raise InputRejected.oversized(name, len(data), rules)
    with warnings.catch_warnings():  # process-wide, fine for one image at a time
        # Pillow only warns between its own limit and twice that; here both are refusals.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with open_image(name, data, rules) as image:
            return _prepare(name, data, image, rules)


def _prepare(name: str, data: bytes, image: Image.Image, rules: ImageRules) -> Prepared:
    fmt = image.format or "unknown"
    width, height = image.size
    original = {"format": fmt, "width": width, "height": height, "bytes": len(data)}
    check_header(name, image, rules)
    decode(name, image, rules)
    if not violations(image, data, (width, height), rules):
        content_type, extension = rules.pass_through[fmt]
        return Prepared(data, content_type, extension, width, height, (), original)

    icc_profile = image.info.get("icc_profile")
    depth = bit_depth(image, data)
    deep = f"{depth}-bit {fmt}" if depth not in (None, 8) else None
    target = scaled(width, height, rules)  # the header check made sure it is within rules
    fixes: list[str] = []
    # pillow-heif hands HEIF images over upright (the container's rotation is the
    # authoritative one) with the EXIF tag reset, so this concerns the other formats.
    turn = orientation(image)
    if turn != 1:
        fixes.append(orientation_fix(turn))
    # Downscale first, so the conversions and the turn work on fewer pixels; only
    # palette indices and 1-bit pixels, which cannot be interpolated, convert before.
    # Upscaling comes last, after the conversions, for the same reason.
    converted = image.mode not in RESAMPLED_AS_IS
    if converted:
        image = to_rgb_or_gray(name, image, icc_profile, deep, fixes)
    upright = (height, width) if turn in (5, 6, 7, 8) else (width, height)
    if max(target) < max(width, height):
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        fixes.append(f"downscaled {dimensions(upright)} to "
                     f"{dimensions(scaled(*upright, rules))}")
    if not converted:
        image = to_rgb_or_gray(name, image, icc_profile, deep, fixes)
    if max(target) > max(width, height):
        image = image.resize(target, Image.Resampling.LANCZOS)
        fixes.append(f"upscaled {dimensions(upright)} to {dimensions(scaled(*upright, rules))}"
                     f" ({they(rules, 'need')} at least {rules.min_side} px a side)")
    if turn in ORIENTATIONS:
        image = image.transpose(ORIENTATIONS[turn][0])

    image.info.clear()  # no EXIF (GPS, the applied orientation) or comments in the output
    out_format, encoded = encode(name, image, matching_profile(image.mode, icc_profile),
                                 len(data), fixes, rules)
    if fmt == "MPO":
        fixes.insert(0, "re-encoded MPO (multi-picture JPEG) as a plain JPEG of its first frame")
    elif out_format != fmt:
        fixes.insert(0, f"re-encoded {FORMAT_NAMES.get(fmt, fmt)} as {out_format}")
    out_width, out_height = verified_output(name, encoded, fixes, rules)
    content_type, extension = rules.pass_through[out_format]
    return Prepared(encoded, content_type, extension, out_width, out_height, tuple(fixes),
                    original)
