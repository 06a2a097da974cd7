"""The Qwen Image models (CONTRACT.md, "Successor models"): request checks,
input rules, the output size and the shape of a successful answer.

Both endpoints take the same body; every rule the contract states is enforced
with 400 `InvalidParameter` and a message naming the field, so a pipeline that
breaks one learns it here rather than from the provider.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .images import InputRules

MAX_REFERENCES = 3
MAX_TEXT = 800
MAX_N = 6
MAX_SEED = 2_147_483_647
MAX_NEGATIVE_PROMPT = 500
MIN_PIXELS = 512 * 512
MAX_PIXELS = 2048 * 2048
MAX_ASPECT = 8  # 3.0: between 1:8 and 8:1
SNAP = 16  # 2.0: each side a multiple of 16
# 3.0 without `size` "picks one from the prompt", which cannot be reproduced
# offline; the emulator always picks this one.
DEFAULT_3_0_SIZE = (1024, 1024)

_SIZE = re.compile(r"(\d{1,6})\*(\d{1,6})")


def _rules(max_side: int) -> InputRules:
    # The contract calls the side limits "recommended"; the emulator enforces
    # them strictly so the pipeline is held to them.
    return InputRules(
        formats=frozenset({"JPEG", "MPO", "PNG", "BMP", "TIFF", "WEBP", "GIF"}),
        formats_text="JPG/JPEG/PNG/BMP/TIFF/WEBP/GIF",
        min_bytes=0,
        max_bytes=10 * 1024 * 1024,
        min_side=384,
        max_side=max_side,
        bad_reference="InvalidParameter",
        unreachable="BadRequest.InputDownloadFailed",
        unreachable_status=415,
        bad_format="InvalidParameter",
        bad_size="InvalidParameter",
        # Our choice: an input not fetched in time is one that could not be fetched.
        timed_out="BadRequest.InputDownloadFailed",
        timed_out_status=415,
        timed_out_message="Download the media resource timed out",
        data_urls=True,
    )


class InvalidRequest(Exception):
    """The body breaks a rule: 400 `InvalidParameter` with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Family:
    name: str
    rules: InputRules
    # Whether the async endpoint takes the family's models.
    asynchronous: bool
    # 3.0: the aspect-ratio bound and `enable_thinking`; 2.0: sides snapped to 16.
    newest: bool

    def check_size(self, width: int, height: int) -> tuple[int, int]:
        """The size a requested `size` produces, or raise InvalidRequest."""
        if not MIN_PIXELS <= width * height <= MAX_PIXELS:
            raise InvalidRequest(
                f"parameters.size {width}*{height} has {width * height} pixels; the total "
                "must be between 512*512 and 2048*2048."
            )
        if self.newest:
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise InvalidRequest(
                    f"parameters.size {width}*{height}: the aspect ratio must be between "
                    "1:8 and 8:1."
                )
            return width, height
        return _snap(width, height)

    def default_size(self, last_image: tuple[int, int]) -> tuple[int, int]:
        """The size without `size`: 2.0 copies the last image's, brought into
        the pixel bounds; 3.0 picks one."""
        if self.newest:
            return DEFAULT_3_0_SIZE
        width, height = last_image
        pixels = width * height
        scale = 1.0
        if pixels < MIN_PIXELS:
            scale = math.sqrt(MIN_PIXELS / pixels)
        elif pixels > MAX_PIXELS:
            scale = math.sqrt(MAX_PIXELS / pixels)
        return _snap(max(1, round(width * scale)), max(1, round(height * scale)))

    def usage(self, size: tuple[int, int], count: int) -> dict[str, int]:
        # The two shapes the contract names: 3.0 prefixes the fields with `output_`.
        if self.newest:
            return {"output_width": size[0], "output_height": size[1], "output_image_count": count}
        return {"width": size[0], "height": size[1], "image_count": count}


QWEN_2 = Family("qwen-image-2.0", _rules(3072), asynchronous=False, newest=False)
QWEN_3 = Family("qwen-image-3.0", _rules(2048), asynchronous=True, newest=True)
FAMILIES: Mapping[str, Family] = {
    "qwen-image-2.0": QWEN_2,
    "qwen-image-2.0-pro": QWEN_2,
    "qwen-image-3.0": QWEN_3,
    "qwen-image-3.0-pro": QWEN_3,
}


@dataclass(frozen=True)
class GenerationRequest:
    family: Family
    images: tuple[str, ...]  # reference URLs, "image 1" first
    text: str
    # None: the family's default, known once the inputs are downloaded.
    size: tuple[int, int] | None
    n: int = 1
    prompt_extend: bool = True
    watermark: bool = False
    seed: int | None = None
    negative_prompt: str | None = None
    enable_thinking: bool | None = None  # 3.0 only
    oss_resolve: bool = False
    reports_phases: ClassVar[bool] = False

    @property
    def rules(self) -> InputRules:
        return self.family.rules

    def image_urls(self) -> Iterator[tuple[str, str]]:
        """(label, url) of every reference in order: "image 1", "image 2", ..."""
        for number, url in enumerate(self.images, start=1):
            yield f"image {number}", url

    def output(self, urls: list[str]) -> dict[str, Any]:
        """The result part of a successful answer's `output`."""
        output: dict[str, Any] = {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": [{"image": u} for u in urls]},
                }
            ]
        }
        if self.family.newest:
            # Values other than "skipped" are not documented; "succeeded" is ours.
            output["rewrite_status"] = "succeeded" if self.prompt_extend else "skipped"
        return output


def parse_request(
    body: Mapping[str, Any], model: str, *, oss_resolve: bool
) -> GenerationRequest:
    """The checked request of a known Qwen model, or raise InvalidRequest."""
    family = FAMILIES[model]
    images, text = _parse_messages(body.get("input"))
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidRequest("parameters must be a JSON object")
    # Parameters the contract does not name are ignored, as the SDK sends some
    # of its own (`is_async` with `ImageGeneration.async_call`).
    size = None
    if parameters.get("size") is not None:
        size = family.check_size(*_parse_size(parameters["size"]))
    prompt_extend = _flag(parameters, "prompt_extend", True)
    enable_thinking = None
    if parameters.get("enable_thinking") is not None:
        if not family.newest:
            raise InvalidRequest(
                f"parameters.enable_thinking is not supported by {model}; "
                "only the qwen-image-3.0 models take it."
            )
        enable_thinking = _flag(parameters, "enable_thinking", prompt_extend)
    negative_prompt = parameters.get("negative_prompt")
    if negative_prompt is not None and (
        not isinstance(negative_prompt, str) or len(negative_prompt) > MAX_NEGATIVE_PROMPT
    ):
        raise InvalidRequest(
            f"parameters.negative_prompt must be a string of at most {MAX_NEGATIVE_PROMPT} "
            "characters."
        )
    return GenerationRequest(
        family=family,
        images=images,
        text=text,
        size=size,
        n=_integer(parameters, "n", 1, MAX_N) or 1,
        prompt_extend=prompt_extend,
        watermark=_flag(parameters, "watermark", False),
        seed=_integer(parameters, "seed", 0, MAX_SEED),
        negative_prompt=negative_prompt,
        enable_thinking=enable_thinking,
        oss_resolve=oss_resolve,
    )


def _parse_messages(payload: object) -> tuple[tuple[str, ...], str]:
    if not isinstance(payload, dict):
        raise InvalidRequest("The request is missing required parameters: input (a JSON object)")
    messages = payload.get("messages")
    if not isinstance(messages, list) or len(messages) != 1:
        got = f"{len(messages)} messages" if isinstance(messages, list) else "no list"
        raise InvalidRequest(f"input.messages must be a list of exactly one message (got {got}).")
    message = messages[0]
    if not isinstance(message, dict) or message.get("role") != "user":
        raise InvalidRequest('input.messages[0] must be a message with role "user".')
    content = message.get("content")
    if not isinstance(content, list):
        raise InvalidRequest("input.messages[0].content must be a list of image and text items.")
    images: list[str] = []
    texts: list[str] = []
    for index, item in enumerate(content):
        single = isinstance(item, dict) and len(item) == 1
        kind, value = next(iter(item.items())) if single else (None, None)
        if kind not in ("image", "text") or not isinstance(value, str):
            raise InvalidRequest(
                f'input.messages[0].content[{index}] must be {{"image": "<url>"}} or '
                '{"text": "<instruction>"}.'
            )
        (images if kind == "image" else texts).append(value)
    if not 1 <= len(images) <= MAX_REFERENCES:
        raise InvalidRequest(
            f"input.messages[0].content has {len(images)} image items; "
            f"1 to {MAX_REFERENCES} are accepted."
        )
    if any(not url for url in images):
        raise InvalidRequest("input.messages[0].content: an image item is empty.")
    if len(texts) != 1:
        raise InvalidRequest(
            f"input.messages[0].content has {len(texts)} text items; exactly one is required."
        )
    text = texts[0]
    # Not stated by the contract: an edit without an instruction is refused.
    if not text.strip():
        raise InvalidRequest("input.messages[0].content: the text item is empty.")
    if len(text) > MAX_TEXT:
        raise InvalidRequest(
            f"input.messages[0].content: the text item has {len(text)} characters; "
            f"at most {MAX_TEXT} are accepted."
        )
    return tuple(images), text


def _parse_size(value: object) -> tuple[int, int]:
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None or min(int(match[1]), int(match[2])) < 1:
        raise InvalidRequest(
            f'parameters.size must be "<width>*<height>" in pixels, such as "1024*1024" '
            f"(got {_shown(value)})."
        )
    return int(match[1]), int(match[2])


def _flag(parameters: Mapping[str, Any], name: str, default: bool) -> bool:
    value = parameters.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidRequest(f"parameters.{name} must be true or false.")
    return value


def _integer(parameters: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = parameters.get(name)
    if value is None:
        return None
    # bool is an int in Python; `true` is not a number.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRequest(f"parameters.{name} must be an integer from {low} to {high}.")
    return value


def _snap(width: int, height: int) -> tuple[int, int]:
    """Each side to the nearest multiple of 16, rounding the other way where
    that would leave the pixel bounds."""
    snapped = (_round_to(width, SNAP), _round_to(height, SNAP))
    if snapped[0] * snapped[1] > MAX_PIXELS:
        snapped = (max(SNAP, width // SNAP * SNAP), max(SNAP, height // SNAP * SNAP))
    elif snapped[0] * snapped[1] < MIN_PIXELS:
        snapped = (-(-width // SNAP) * SNAP, -(-height // SNAP) * SNAP)
    return snapped


def _round_to(value: int, step: int) -> int:
    return max(step, (value + step // 2) // step * step)


def _shown(value: object) -> str:
    """A short rendering of a client's value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
