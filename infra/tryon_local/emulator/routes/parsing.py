"""Garment parsing: the synchronous segmentation endpoint."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import parsing
from ..config import PARSING_MODEL
from ..images import InputRejected
from ..state import EmulatorState
from ..tasks import RESULT_URL_LIFETIME
from .protocol import (
    API_PREFIX,
    NO_ASYNC,
    asynchronous,
    authenticate,
    emulator_state,
    error,
    ok,
    oss_resolve,
    root_url,
    route,
    served_request,
    throttled,
)

PARSING_PATH = "/services/vision/image-process/process"


async def parse_garments(request: Request) -> Response:
    state = emulator_state(request)
    state.counters["parsing_requests"] += 1
    if (denied := authenticate(request, state)) is not None:
        return denied
    # Parsing has its own window: the provider limits each model (10 requests/s).
    admitted = state.model_limiters[PARSING_MODEL].try_acquire()
    # Inferred, not documented: the provider refuses the async header on its
    # synchronous endpoints, as the try-on endpoint refuses synchronous calls.
    if asynchronous(request):
        return error(403, "AccessDenied", NO_ASYNC)
    checked = await served_request(request, state, (PARSING_MODEL,))
    if isinstance(checked, JSONResponse):
        return checked
    body, model = checked
    parsed = _parse_parsing(body)
    if isinstance(parsed, JSONResponse):
        return parsed
    image_url, clothes_type = parsed
    if not admitted:
        return throttled(state, "parsing", model)
    try:
        person = await state.scheduler.fetch_input(
            "image_url", image_url, model=model, oss_resolve=oss_resolve(request)
        )
    except InputRejected as rejected:
        # Synchronous: what fails a try-on task later is an HTTP 400 here.
        return error(rejected.status, rejected.code, rejected.message)
    missing = state.take_parsing_misses(clothes_type)
    try:
        segments = await asyncio.to_thread(parsing.segment, person, clothes_type, missing)
    except Exception as exc:  # a segmentation bug must answer like the provider's 500s
        return error(500, "InternalError.Algo", f"Parsing failed: {exc}")

    expires_at = state.clock.now() + state.clock.scaled(RESULT_URL_LIFETIME)
    stem = f"parsing-{uuid.uuid4()}"
    output: dict[str, list[Any]] = {"parsing_img_url": [], "crop_img_url": [], "bbox": []}
    for segment in segments:
        if segment is None:
            for urls in output.values():
                urls.append(None)
            continue
        crop, preview = f"{stem}-{segment.garment}-crop.jpg", f"{stem}-{segment.garment}.png"
        state.results.put(crop, segment.crop_jpeg, expires_at)
        state.results.put(preview, segment.preview_png, expires_at)
        output["parsing_img_url"].append(_result_url(request, state, preview))
        output["crop_img_url"].append(_result_url(request, state, crop))
        output["bbox"].append(list(segment.bbox))
    state.counters["parsings"] += 1
    return ok({"output": output, "usage": {"image_count": 1}})


def _parse_parsing(body: dict[str, Any]) -> tuple[str, tuple[str, ...]] | JSONResponse:
    payload = body.get("input")
    if not isinstance(payload, dict):
        return error(
            400,
            "InvalidParameter",
            "The request is missing required parameters: input (a JSON object)",
        )
    image_url = payload.get("image_url")
    if not isinstance(image_url, str) or not image_url:
        return error(
            400, "InvalidParameter", "The request is missing required parameters: input.image_url"
        )
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        return error(400, "InvalidParameter", "parameters must be a JSON object")
    clothes_type = parameters.get("clothes_type")
    if not isinstance(clothes_type, list) or tuple(clothes_type) not in parsing.CLOTHES_TYPES:
        return error(
            400,
            "InvalidParameter.ClothesType",
            'parameters.clothes_type must be one of ["upper"], ["lower"], ["dress"] '
            'or ["upper", "lower"].',
        )
    return image_url, tuple(clothes_type)


def _result_url(request: Request, state: EmulatorState, name: str) -> str:
    path = state.results.signed_path(name)
    assert path is not None, name  # stored just before
    return root_url(request) + path


ROUTES = route(API_PREFIX + PARSING_PATH, parse_garments, ["POST"])
