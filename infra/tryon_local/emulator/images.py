"""Input images (download and validation) and the simulated try-on result.

The try-on rules are the provider's (CONTRACT.md, "Create a try-on task"):
every input is 5 KB-5 MB, each side 150-4096 px, JPEG/JPG/PNG/BMP/WEBP/HEIC,
judged by the file's content rather than its name. The Qwen Image models have
their own rules (`generation.py`); both are an `InputRules`. The result is a
visible composite (garments pasted over the person, marked SIMULATED) so a
person looking at a demo can tell which inputs went in and that no model ran.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import urlsplit

import httpx
from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

from . import drawing

MIN_BYTES = 5 * 1024
MAX_BYTES = 5 * 1024 * 1024
MIN_SIDE = 150
MAX_SIDE = 4096

# Pillow's names for the accepted formats. MPO is the multi-picture JPEG many
# phone cameras write; HEIF is what the pillow-heif plugin reports.
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "HEIF"})
ACCEPTED_FORMATS_TEXT = "JPEG/JPG/PNG/BMP/WEBP/HEIC"

register_heif_opener()  # Pillow cannot decode HEIC by itself

# Output sizes of `parameters.resolution` (-1 keeps the person image's size).
OUTPUT_SIZES: Mapping[int, tuple[int, int]] = {1024: (576, 1024), 1280: (720, 1280)}

# Where a full-body, front-facing figure's parts usually sit, as fractions
# (left, top, right, bottom) of the person image. The shipped sample person is
# drawn to these proportions; for other photos the paste is approximate, which
# is enough to show which garment went where.
FACE_REGION = (0.36, 0.03, 0.64, 0.17)
TORSO_REGION = (0.22, 0.18, 0.78, 0.50)
LEGS_REGION = (0.27, 0.47, 0.73, 0.93)
DRESS_REGION = (0.22, 0.18, 0.78, 0.80)
DRESS_ASPECT = 1.3  # height / width from which a lone top is treated as a dress




class InputRejected(Exception):
    """An input failed the provider's checks; the task ends FAILED with `code`,
    a synchronous call answers HTTP `status`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class InputRules:
    """What one family of models accepts as an input image, and the codes it
    answers when an input breaks a rule."""

    formats: frozenset[str]  # Pillow's format names
    formats_text: str
    min_bytes: int
    max_bytes: int
    min_side: int
    max_side: int
    # A reference that is no URL the model takes (a local path, a missing header).
    bad_reference: str
    # An input that could not be fetched, and the HTTP status of a synchronous answer.
    unreachable: str
    unreachable_status: int
    # An input that is fetched but is not an accepted image, or too large or small.
    bad_format: str
    bad_size: str
    # Fetching took longer than the download timeout.
    timed_out: str
    timed_out_status: int
    timed_out_message: str
    # `data:<mime>;base64,...` references are accepted.
    data_urls: bool = False

    def bytes_text(self) -> str:
        mb = f"{self.max_bytes // (1024 * 1024)} MB"
        if self.min_bytes:
            return f"between {self.min_bytes // 1024} KB and {mb}"
        return f"at most {mb}"

    def reject_reference(self, message: str) -> InputRejected:
        return InputRejected(self.bad_reference, message)

    def reject_unreachable(self, message: str) -> InputRejected:
        return InputRejected(self.unreachable, message, self.unreachable_status)

    def reject_timeout(self, field: str) -> InputRejected:
        message = f"{self.timed_out_message} ({field})."
        return InputRejected(self.timed_out, message, self.timed_out_status)

    def reject_format(self, message: str) -> InputRejected:
        return InputRejected(self.bad_format, message)

    def reject_size(self, message: str) -> InputRejected:
        return InputRejected(self.bad_size, message)


TRYON_RULES = InputRules(
    formats=ACCEPTED_FORMATS,
    formats_text=ACCEPTED_FORMATS_TEXT,
    min_bytes=MIN_BYTES,
    max_bytes=MAX_BYTES,
    min_side=MIN_SIDE,
    max_side=MAX_SIDE,
    bad_reference="InvalidURL",
    unreachable="InvalidURL",
    unreachable_status=400,
    bad_format="InvalidURL",
    bad_size="InvalidInputLength",
    # The provider's wording for an input it could not fetch in time.
    timed_out="InvalidParameter",
    timed_out_status=400,
    timed_out_message="Download the media resource timed out during the data inspection process",
)


@dataclass(frozen=True)
class CheckedImage:
    format: str
    width: int
    height: int


async def fetch_input(
    client: httpx.AsyncClient,
    field: str,
    url: str,
    timeout: float,
    rules: InputRules = TRYON_RULES,
) -> bytes:
    """Download one input URL the way pre-processing does (or decode a `data:`
    URL where `rules` allow them), or raise InputRejected."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "data" and rules.data_urls:
        return decode_data_url(field, url, rules)
    if scheme not in ("http", "https"):
        raise rules.reject_reference(
            f"{field}: {url[:80]!r} is not a public http(s) URL; local paths are not accepted.",
        )
    try:
        # One budget for the whole download: httpx's own timeout is per read,
        # so a slow trickle would otherwise never time out.
        async with asyncio.timeout(timeout):
            return await _download(client, field, url, timeout, rules)
    except TimeoutError:
        raise rules.reject_timeout(field) from None


def decode_data_url(field: str, url: str, rules: InputRules) -> bytes:
    """The bytes of `data:<mime>;base64,<payload>` (the MIME type is not
    trusted: the content is checked like a download's)."""
    header, comma, payload = url.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise rules.reject_reference(
            f"{field}: a data URL must look like data:<mime>;base64,<payload>."
        )
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise rules.reject_reference(f"{field}: the data URL is not valid base64.") from None


async def _download(
    client: httpx.AsyncClient, field: str, url: str, timeout: float, rules: InputRules
) -> bytes:
    try:
        async with client.stream("GET", url, timeout=timeout) as response:
            if response.status_code >= 400:
                raise rules.reject_unreachable(
                    f"{field}: downloading the image failed with HTTP {response.status_code}.",
                )
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > rules.max_bytes:
                    # Stop reading: the file is already too large to accept.
                    raise rules.reject_size(
                        f"{field}: the file is larger than {rules.max_bytes // (1024 * 1024)} MB; "
                        f"each image must be {rules.bytes_text()}.",
                    )
            return bytes(data)
    except httpx.TimeoutException:
        raise TimeoutError from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise rules.reject_unreachable(
            f"{field}: the URL could not be downloaded ({type(exc).__name__}); "
            "it must be a publicly reachable http(s) URL.",
        ) from None


def check_image(field: str, data: bytes, rules: InputRules = TRYON_RULES) -> CheckedImage:
    """Validate downloaded bytes by content, or raise InputRejected.

    Meant to run in a worker thread: decoding a large image takes a while.
    """
    sides = f"each side must be between {rules.min_side} and {rules.max_side} px"
    try:
        with Image.open(BytesIO(data)) as image:
            fmt = image.format or "unknown"
            width, height = image.size
            if fmt not in rules.formats:
                raise rules.reject_format(
                    f"{field}: the file is a {fmt} image; "
                    f"accepted formats are {rules.formats_text}.",
                )
            if not rules.min_bytes <= len(data) <= rules.max_bytes:
                raise rules.reject_size(
                    f"{field}: the file is {len(data)} bytes; "
                    f"each image must be {rules.bytes_text()}.",
                )
            if not (
                rules.min_side <= width <= rules.max_side
                and rules.min_side <= height <= rules.max_side
            ):
                raise rules.reject_size(f"{field}: the image is {width}x{height} px; {sides}.")
            # Sides are bounded before decoding, so this cannot allocate more
            # than max_side x max_side pixels. (A GIF decodes its first frame.)
            image.load()
    except Image.DecompressionBombError:
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) tripped while reading the header.
        raise rules.reject_size(f"{field}: the image has too many pixels; {sides}.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise rules.reject_format(
            f"{field}: the file is not a decodable image; "
            f"accepted formats are {rules.formats_text}.",
        ) from None
    return CheckedImage(format=fmt, width=width, height=height)


@functools.lru_cache(maxsize=64)
def _cut_out(garment: bytes) -> drawing.Cutout:
    """A garment cut out of its background, once per garment: a catalogue puts each
    garment on many persons, and the cut was four fifths of a render (cProfile).
    Read only by paste_garment, so shared between threads."""
    return drawing.cut_out(drawing.open_rgb(garment))


def render_composite(
    *,
    person: bytes,
    top: bytes | None,
    bottom: bytes | None,
    resolution: int,
    restore_face: bool,
    model: str,
    task_id: str,
) -> bytes:
    """The simulated try-on result as JPEG bytes (run in a worker thread)."""
    figure = drawing.open_rgb(person)
    if resolution in OUTPUT_SIZES:
        canvas, box = drawing.fit_into(figure, OUTPUT_SIZES[resolution])
    else:
        canvas, box = figure, (0, 0, figure.width, figure.height)

    # The bottom goes first so a top's hem falls over the waistband.
    if bottom is not None:
        legs = drawing.region_in(box, LEGS_REGION)
        drawing.paste_garment(canvas, _cut_out(bottom), legs)
    if top is not None:
        cut = _cut_out(top)
        # A "top" given alone that is much taller than wide is a dress or a
        # jumpsuit (CONTRACT.md: then leave bottom empty): it covers the legs too.
        tall = cut[0].height >= DRESS_ASPECT * cut[0].width
        region = DRESS_REGION if bottom is None and tall else TORSO_REGION
        drawing.paste_garment(canvas, cut, drawing.region_in(box, region))
    if not restore_face:
        drawing.mark_new_face(canvas, drawing.region_in(box, FACE_REGION))
    drawing.draw_banner(canvas, model, f"task {task_id[:8]}")

    out = BytesIO()
    canvas.save(out, format="JPEG", quality=88)
    return out.getvalue()
