"""How a look becomes the request its model speaks (the wire formats themselves
live in `tryon.providers.request_bodies`)."""

from __future__ import annotations

import math

from tryon.job_record import JobRecord
from tryon.models.instructions import Outfit, instruction_for, reference_roles
from tryon.models.registry import ModelSpec, OutputSizes
from tryon.providers.request_bodies import (
    QWEN_CALL_PATH,
    QWEN_TASK_PATH,
    QwenImageRequest,
    TryOnRequest,
)

# The try-on resolutions, as Qwen sizes (CONTRACT: 1024 -> 576*1024, 1280 -> 720*1280).
FIXED_SIZES = {1024: (576, 1024), 1280: (720, 1280)}


def output_size(sizes: OutputSizes, resolution: int, person: tuple[int, int]) -> str:
    """The `size` to ask for: a try-on resolution's fixed size, or (-1) the person
    photo's aspect scaled into the model's pixel bounds, each side a multiple of 16."""
    if resolution in FIXED_SIZES:
        return "{}*{}".format(*FIXED_SIZES[resolution])
    width, height = person
    if sizes.max_aspect:  # never reached by a preflighted photo (384-2048 px a side)
        width = min(width, height * sizes.max_aspect)
        height = min(height, width * sizes.max_aspect)
    step = sizes.multiple_of
    scale = 1.0
    if width * height > sizes.max_pixels:
        scale = math.sqrt(sizes.max_pixels / (width * height))
    elif width * height < sizes.min_pixels:
        scale = math.sqrt(sizes.min_pixels / (width * height))
    w = max(step, round(width * scale / step) * step)
    h = max(step, round(height * scale / step) * step)
    # Rounding may cross a bound by a sliver: step the longer side back inside.
    while w * h > sizes.max_pixels:
        w, h = (w - step, h) if w >= h else (w, h - step)
    while w * h < sizes.min_pixels:
        w, h = (w + step, h) if w <= h else (w, h + step)
    return f"{w}*{h}"


def build_request(spec: ModelSpec, job: JobRecord, urls: dict[str, str]
                  ) -> TryOnRequest | QwenImageRequest:
    """`urls`: where the provider reads each input (by role: person, top, bottom)."""
    parameters = job.parameters or {}
    if spec.family == "tryon":
        return TryOnRequest(
            model=spec.model_id,
            person_image_url=urls["person"],
            top_garment_url=urls.get("top"),
            bottom_garment_url=urls.get("bottom"),
            resolution=parameters.get("resolution", -1),
            restore_face=parameters.get("restore_face", True),
        )
    outfit = Outfit(top="top" in urls and not job.top_is_dress,
                    bottom="bottom" in urls, dress=bool(job.top_is_dress),
                    keep=job.keep, restore_face=parameters.get("restore_face", True),
                    extra=job.instruction)
    person = job.submit_inputs["person"]
    assert spec.sizes is not None, spec.model_id
    return QwenImageRequest(
        model=spec.model_id,
        images=tuple(urls[role] for role in reference_roles(outfit)),
        instruction=instruction_for(outfit),
        size=output_size(spec.sizes, parameters.get("resolution", -1),
                         (person["width"], person["height"])),
        path=QWEN_CALL_PATH if spec.protocol == "call" else QWEN_TASK_PATH,
    )


def request_summary(request: TryOnRequest | QwenImageRequest) -> dict[str, str] | None:
    """What a Qwen model was asked, for the record and the sidecar (no URLs: they
    are credentials)."""
    if isinstance(request, QwenImageRequest):
        return {"size": request.size, "instruction": request.instruction}
    return None
