"""The Qwen Image models: the synchronous call, and (3.0 family) tasks."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import qwen_render
from ..config import QWEN_MODELS
from ..generation import FAMILIES, GenerationRequest, InvalidRequest, parse_request
from ..images import InputRejected
from ..state import EmulatorState
from ..tasks import RESULT_URL_LIFETIME
from .protocol import (
    API_PREFIX,
    NO_ASYNC,
    NO_SYNC,
    asynchronous,
    emulator_state,
    error,
    new_request_id,
    oss_resolve,
    refused,
    result_urls,
    route,
    served_request,
    throttled,
)
from .tasks import accept_task

GENERATION_PATH = "/services/aigc/multimodal-generation/generation"
GENERATION_TASK_PATH = "/services/aigc/image-generation/generation"


async def generate_images(request: Request) -> Response:
    """The synchronous call: answers once the images are made."""
    state = emulator_state(request)
    if (denied := refused(request, state, "generation_requests", "generation")) is not None:
        return denied
    if asynchronous(request):
        return error(403, "AccessDenied", NO_ASYNC)
    checked = await _generation_request(request, state)
    if isinstance(checked, JSONResponse):
        return checked
    model, parsed, admitted = checked
    if not admitted:
        return throttled(state, "generation", model)
    # An async-capable model's sync calls are unlimited in number (CONTRACT.md):
    # only a sync-only model given a concurrency bounds them.
    token = state.board.claim_call(model, bounded=not FAMILIES[model].asynchronous)
    if token is None:
        return throttled(
            state, "generation", model,
            "Too many concurrent requests for this model, please try again later.",
        )
    request_id = new_request_id()
    try:
        started = time.monotonic()
        references = await state.scheduler.fetch_references(parsed, model)
        size, pngs = await asyncio.to_thread(
            qwen_render.render_request, parsed, references, model, f"request {request_id[:8]}"
        )
        # Rendering counts towards the generation time, as the provider's clock runs
        # from the request.
        remaining = state.clock.scaled(state.draw_gen_seconds(model))
        await asyncio.sleep(max(0.0, remaining - (time.monotonic() - started)))
    except InputRejected as rejected:
        return error(rejected.status, rejected.code, rejected.message)
    except Exception as exc:  # a rendering bug must answer like the provider's 500s
        return error(500, "InternalError.Algo", f"Generation failed: {exc}")
    finally:
        state.board.release_call(model, token)

    expires_at = state.clock.now() + state.clock.scaled(RESULT_URL_LIFETIME)
    names = tuple(f"generation-{request_id}-{k}.png" for k in range(1, len(pngs) + 1))
    for name, png in zip(names, pngs, strict=True):
        state.results.put(name, png, expires_at)
    urls = result_urls(request, state, names)
    state.counters["generations"] += 1
    state.counters[f"generations.{model}"] += 1
    state.counters[f"images.{model}"] += len(pngs)
    if (delay := state.take_lost_call()) is not None:
        # Made and billed, but a client that gives up first never sees the URL.
        await asyncio.sleep(delay)
    return JSONResponse(
        {
            "output": parsed.output(urls),
            "usage": parsed.family.usage(size, len(pngs)),
            "request_id": request_id,
        }
    )


async def submit_generation(request: Request) -> Response:
    """The asynchronous call (3.0 family): a task, followed like a try-on task."""
    state = emulator_state(request)
    if (denied := refused(request, state, "submit_requests", "submit")) is not None:
        return denied
    if not asynchronous(request):
        return error(403, "AccessDenied", NO_SYNC)
    checked = await _generation_request(request, state)
    if isinstance(checked, JSONResponse):
        return checked
    model, parsed, admitted = checked
    if not admitted:
        return throttled(state, "submit", model)
    return await accept_task(state, model, parsed)


async def _generation_request(
    request: Request, state: EmulatorState
) -> tuple[str, GenerationRequest, bool] | JSONResponse:
    """The model, the checked body and whether the model's rate window
    admitted the call; or the error answer."""
    checked = await served_request(request, state, QWEN_MODELS)
    if isinstance(checked, JSONResponse):
        return checked
    body, model = checked
    if asynchronous(request) and not FAMILIES[model].asynchronous:
        # Not confirmed: the contract says the 2.0 family is sync only, not
        # what its async endpoint answers; this code and message are ours.
        return error(
            400,
            "InvalidParameter",
            f"Model {model} does not support asynchronous calls; call {GENERATION_PATH} "
            "without the X-DashScope-Async header.",
        )
    # As for submits: a malformed call takes its place in the model's window
    # but is reported as malformed rather than throttled.
    admitted = state.model_limiters[model].try_acquire()
    try:
        parsed = parse_request(body, model, oss_resolve=oss_resolve(request))
    except InvalidRequest as invalid:
        return error(400, "InvalidParameter", invalid.message)
    return model, parsed, admitted


ROUTES = [
    *route(API_PREFIX + GENERATION_PATH, generate_images, ["POST"]),
    *route(API_PREFIX + GENERATION_TASK_PATH, submit_generation, ["POST"]),
]
