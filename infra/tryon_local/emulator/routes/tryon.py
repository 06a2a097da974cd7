"""The try-on models' submit: a task, followed through `tasks`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import TRYON_MODELS
from ..images import OUTPUT_SIZES
from ..tasks import TryOnRequest
from .protocol import (
    API_PREFIX,
    NO_SYNC,
    asynchronous,
    emulator_state,
    error,
    oss_resolve,
    refused,
    route,
    served_request,
    throttled,
)
from .tasks import accept_task

SUBMIT_PATH = "/services/aigc/image2image/image-synthesis"
RESOLUTIONS = (-1, *OUTPUT_SIZES)


async def submit_task(request: Request) -> Response:
    state = emulator_state(request)
    if (denied := refused(request, state, "submit_requests", "submit")) is not None:
        return denied
    if not asynchronous(request):
        return error(403, "AccessDenied", NO_SYNC)
    checked = await served_request(request, state, TRYON_MODELS)
    if isinstance(checked, JSONResponse):
        return checked
    body, model = checked
    # Every call naming the model takes its place in the model's rate window, but
    # the provider reports malformed requests before throttling them.
    admitted = state.model_limiters[model].try_acquire()
    parsed = _parse_tryon(body, oss_resolve=oss_resolve(request))
    if isinstance(parsed, JSONResponse):
        return parsed
    if not admitted:
        return throttled(state, "submit", model)
    return await accept_task(state, model, parsed)


def _parse_tryon(body: dict[str, Any], *, oss_resolve: bool) -> TryOnRequest | JSONResponse:
    def invalid(message: str) -> JSONResponse:
        return error(400, "InvalidParameter", message)

    payload = body.get("input")
    if not isinstance(payload, dict):
        return invalid("The request is missing required parameters: input (a JSON object)")
    person = payload.get("person_image_url")
    if not isinstance(person, str) or not person:
        return invalid("The request is missing required parameters: input.person_image_url")
    garments: dict[str, str | None] = {}
    for name in ("top_garment_url", "bottom_garment_url"):
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            return invalid(f"input.{name} must be a string URL")
        # An empty string is how callers "leave bottom empty" for a dress.
        garments[name] = value or None

    parameters = body.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        return invalid("parameters must be a JSON object")
    resolution = parameters.get("resolution", -1)
    # bool is an int in Python; `true` is not a resolution.
    if isinstance(resolution, bool) or not isinstance(resolution, int) or (
        resolution not in RESOLUTIONS
    ):
        return invalid("parameters.resolution must be one of -1, 1024, 1280")
    restore_face = parameters.get("restore_face", True)
    if not isinstance(restore_face, bool):
        return invalid("parameters.restore_face must be true or false")

    if garments["top_garment_url"] is None and garments["bottom_garment_url"] is None:
        return error(
            400,
            "InvalidGarment",
            "Missing garment: give input.top_garment_url, input.bottom_garment_url or both.",
        )
    return TryOnRequest(
        person_image_url=person,
        top_garment_url=garments["top_garment_url"],
        bottom_garment_url=garments["bottom_garment_url"],
        resolution=resolution,
        restore_face=restore_face,
        oss_resolve=oss_resolve,
    )


ROUTES = route(API_PREFIX + SUBMIT_PATH, submit_task, ["POST"])
