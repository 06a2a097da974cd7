"""The rejections preflight raises, and the wording its messages share: each message
names the file, the rule and the fix."""

from __future__ import annotations

import re

from tryon.image_rules import MAX_INPUT_BYTES, MAX_PIXELS, ImageRules

# How messages and fixes name a format Pillow calls otherwise.
FORMAT_NAMES = {"HEIF": "HEIC", "JPEG2000": "JPEG 2000"}


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
    def oversized(cls, name: str, size: int, rules: ImageRules) -> InputRejected:
        """For a file too large to read: the caller raises it from the S3 object size.
        `rules` are the target models'."""
        limit = limit_text(rules.max_bytes)
        return cls("InvalidInputLength",
                   f"{name}: the file is {mb(size)}; files over {mb(MAX_INPUT_BYTES)} are not "
                   f"read, and {they(rules, 'take')} at most {limit}. Export the photo as a "
                   f"JPEG of at most {limit}.")


def not_converted(name: str, fmt: str) -> InputRejected:
    return InputRejected(
        "InvalidURL",
        f"{name}: the image is in {fmt} format, which the provider does not accept and "
        "this pipeline does not convert. Export the photo as JPEG or PNG.")


def corrupt(name: str, fmt: str | None, detail: str) -> InputRejected:
    what = f"{FORMAT_NAMES.get(fmt, fmt)} image" if fmt else "image"
    return InputRejected(
        "CorruptImage",
        f"{name}: the {what} is truncated or damaged and cannot be decoded "
        f"({detail.strip()[:120] or 'no detail'}). Upload the photo again, or re-export it.")


def too_many_pixels(name: str, rules: ImageRules, size: tuple[int, int] | None,
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


def mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def limit_text(size: int) -> str:
    """A byte limit as the contract writes it: 5 KB (5 KiB), 5 MB, 10 MB."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size / 1_000_000:.3g} MB"


def byte_range(rules: ImageRules) -> str:
    if rules.min_bytes > 1:
        return f"{limit_text(rules.min_bytes)}-{limit_text(rules.max_bytes)}"
    return f"at most {limit_text(rules.max_bytes)}"


def dimensions(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def they(rules: ImageRules, verb: str) -> str:
    """Who sets the rules, with `verb` (given in the plural) agreeing: "the
    qwen-image-2.0 models take", or for the try-on rules "the provider takes"."""
    if rules.subject:
        return f"{rules.subject} {verb}s"
    return f"the {rules.label} {verb}"


def of(rules: ImageRules) -> str:
    """Whose limit a number is, after it: " of the qwen-image-2.0 models" ("" for the
    try-on rules, whose messages always left it implicit)."""
    return "" if rules.subject else f" of the {rules.label}"
