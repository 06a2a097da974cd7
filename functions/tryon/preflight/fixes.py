"""The faithful fixes: EXIF orientation applied, colour modes and deep samples brought
to 8-bit RGB or grayscale, transparency flattened onto white. Each appends a
human-readable line to `fixes`."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

from tryon.preflight.messages import InputRejected

# EXIF orientation: the turn that makes the stored pixels upright (as ImageOps.exif_transpose).
ORIENTATIONS = {
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
# Modes whose pixels can be interpolated, so resized before they are converted.
RESAMPLED_AS_IS = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", *_GRAY_MODES})


def orientation_fix(orientation: int) -> str:
    if orientation in ORIENTATIONS:
        return f"applied EXIF orientation ({ORIENTATIONS[orientation][1]})"
    return f"dropped an invalid EXIF orientation ({orientation})"


def to_rgb_or_gray(name: str, image: Image.Image, icc_profile: bytes | None,
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


def matching_profile(mode: str, icc_profile: bytes | None) -> bytes | None:
    """The source's ICC profile if it describes the output's color space (a CMYK
    profile has been applied, not carried)."""
    expected = b"RGB " if mode == "RGB" else b"GRAY"
    if icc_profile and icc_profile[16:20] == expected:
        return icc_profile
    return None


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
