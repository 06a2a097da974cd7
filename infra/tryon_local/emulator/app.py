"""HTTP routes: the provider's API under /api/v1, result images, the upload
host, and test knobs.

Checks run in the order the provider's answers imply: key, then the async
header, then the model (unknown and retired ids alike), then the body, then the
rate limit. Every answer carries a fresh `request_id`; errors put `code` and
`message` at the top level. The upload host and the result images answer like
OSS instead: XML errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import parsing, qwen_render
from .clock import format_provider_time, parse_list_time
from .config import MODELS, PARSING_MODEL, QWEN_MODELS, TRYON_MODELS, EmulatorConfig
from .generation import FAMILIES, GenerationRequest, InvalidRequest, parse_request
from .images import OUTPUT_SIZES, InputRejected
from .results import Access
from .state import (
    RESULT_FAULT_MODES,
    EmulatorState,
    LostAnswerFault,
    ParsingFault,
    RequestFault,
    ResultFault,
    TaskFault,
)
from .tasks import (
    ENDED,
    RESULT_URL_LIFETIME,
    STATUSES,
    SUCCEEDED,
    UNKNOWN,
    Failure,
    Task,
    TaskRequest,
    TryOnRequest,
)
from .uploads import FORM_OVERHEAD, RESOLVE_HEADER, UploadRejected, parse_form

API_PREFIX = "/api/v1"
SUBMIT_PATH = "/services/aigc/image2image/image-synthesis"
PARSING_PATH = "/services/vision/image-process/process"
# The Qwen Image models: synchronous calls, and (3.0 family) tasks.
GENERATION_PATH = "/services/aigc/multimodal-generation/generation"
GENERATION_TASK_PATH = "/services/aigc/image-generation/generation"
UPLOADS_PATH = "/uploads"
# Where getPolicy's `upload_host` points: the emulator's stand-in for the OSS bucket.
OSS_UPLOAD_PATH = "/oss"
RESOLUTIONS = (-1, *OUTPUT_SIZES)

Handler = Callable[[Request], Awaitable[Response]]


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """The emulator as an ASGI app; `app.state.emulator` is its EmulatorState.

    Tasks progress in a background loop of the event loop that serves the app,
    so it needs one long-lived loop: uvicorn (see `server.py`), httpx's
    ASGITransport, or Starlette's TestClient used as a context manager.
    """
    state = EmulatorState(config or EmulatorConfig())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state.scheduler.ensure_running()
        yield
        await state.scheduler.aclose()

    routes = [
        *_route(API_PREFIX + SUBMIT_PATH, submit_task, ["POST"]),
        *_route(API_PREFIX + PARSING_PATH, parse_garments, ["POST"]),
        *_route(API_PREFIX + GENERATION_PATH, generate_images, ["POST"]),
        *_route(API_PREFIX + GENERATION_TASK_PATH, submit_generation, ["POST"]),
        *_route(API_PREFIX + UPLOADS_PATH, get_upload_policy, ["GET"]),
        *_route(OSS_UPLOAD_PATH, upload_file, ["POST"]),
        *_route(API_PREFIX + "/tasks", list_tasks, ["GET"]),
        *_route(API_PREFIX + "/tasks/{task_id}", query_task, ["GET"]),
        *_route(API_PREFIX + "/tasks/{task_id}/cancel", cancel_task, ["POST"]),
        *_route("/results/{name}", get_result, ["GET"]),
        *_route("/_emulator/faults", add_fault, ["POST"]),
        *_route("/_emulator/faults", list_faults, ["GET"]),
        *_route("/_emulator/tasks", read_timelines, ["GET"]),
        *_route("/_emulator/tasks/{task_id}/fail", fail_task, ["POST"]),
        *_route("/_emulator/tasks/{task_id}/hold", hold_task, ["POST"]),
        *_route("/_emulator/retire", retire_model, ["POST"]),
        *_route("/_emulator/retire", list_retired, ["GET"]),
        *_route("/_emulator/clock", advance_clock, ["POST"]),
        *_route("/_emulator/clock", read_clock, ["GET"]),
        *_route("/_emulator/stats", read_stats, ["GET"]),
        *_route("/_emulator/reset", reset, ["POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception},  # type: ignore[dict-item]
    )
    app.state.emulator = state
    return app


def _route(path: str, endpoint: Handler, methods: list[str]) -> list[Route]:
    # Both spellings are routed directly: a redirect to add or drop the slash
    # would lose the body of a POST with many clients.
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


# --- helpers -----------------------------------------------------------------


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    # Start the lifecycle loop even under ASGI clients that skip lifespan events.
    state.scheduler.ensure_running()
    return state


def _request_id() -> str:
    return str(uuid.uuid4())


def _ok(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({**body, "request_id": _request_id()})


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "request_id": _request_id()}, status_code=status
    )


def _authenticate(request: Request, state: EmulatorState) -> JSONResponse | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return _error(401, "InvalidApiKey", "No API-key provided.")
    if key not in state.config.api_keys:
        return _error(401, "InvalidApiKey", "Invalid API-key provided.")
    return None


def _refused(request: Request, state: EmulatorState, counter: str,
             fault: str) -> JSONResponse | None:
    """Count the request; the answer to a bad key or an injected fault, if any."""
    state.counters[counter] += 1
    denied = _authenticate(request, state)
    return denied if denied is not None else _injected(state, fault)


def _injected(state: EmulatorState, target: str) -> JSONResponse | None:
    fault = state.take_request_fault(target)
    if fault is None:
        return None
    return _error(fault.status, fault.code, fault.message)


RATE_EXCEEDED = "Requests rate limit exceeded, please try again later."
_NO_SYNC = "current user api does not support synchronous calls"
_NO_ASYNC = "current user api does not support asynchronous calls"


def _throttled(
    state: EmulatorState, target: str, model: str | None = None, message: str = RATE_EXCEEDED
) -> JSONResponse:
    state.counters[f"throttled.{target}"] += 1
    if model is not None:
        state.counters[f"throttled.{model}"] += 1
    return _error(429, "Throttling.RateQuota", message)


def _asynchronous(request: Request) -> bool:
    return request.headers.get("x-dashscope-async", "").strip().lower() == "enable"


async def _served_request(request: Request, state: EmulatorState, served: tuple[str, ...]
                          ) -> tuple[dict[str, Any], str] | JSONResponse:
    """The JSON body and the model it names, if the emulator serves that model for
    this endpoint; or the provider's error answer."""
    body = await _json_object(request)
    if body is None:
        return _error(400, "InvalidParameter", "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _error(400, "InvalidParameter", "The request is missing required parameters: model")
    if not state.serves(model, served):
        return _model_not_exist()
    return body, model


def _model_not_exist() -> JSONResponse:
    # What unknown ids have been seen answering (CONTRACT.md, "Retirement");
    # a retired model answers the same, as no other answer is documented.
    return _error(400, "InvalidParameter", "Model not exist.")


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _root_url(request: Request) -> str:
    # Built from the URL the client used, so links work on any host and port.
    return str(request.base_url).rstrip("/")


def _oss_resolve(request: Request) -> bool:
    return request.headers.get(RESOLVE_HEADER, "").strip().lower() == "enable"


def _describe(state: EmulatorState, task: Task, request: Request) -> dict[str, Any]:
    output = task.output()
    if task.status == SUCCEEDED:
        urls = _result_urls(request, state, task.results)
        if urls and isinstance(task.request, GenerationRequest):
            output.update(task.request.output(urls))
        elif urls:
            output["image_url"] = urls[0]
    return output


def _usage(task: Task) -> dict[str, int]:
    if isinstance(task.request, GenerationRequest) and task.output_size is not None:
        return task.request.family.usage(task.output_size, len(task.results))
    return {"image_count": 1}


def _result_urls(request: Request, state: EmulatorState, names: tuple[str, ...]) -> list[str]:
    """Signed URLs of the stored images among `names` (purged ones are left out)."""
    paths = (state.results.signed_path(name) for name in names)
    return [_root_url(request) + path for path in paths if path is not None]


async def _http_exception(_request: Request, exc: HTTPException) -> JSONResponse:
    codes = {404: "NotFound", 405: "MethodNotAllowed"}
    return _error(exc.status_code, codes.get(exc.status_code, "InvalidParameter"), exc.detail)


# --- the provider's API ----------------------------------------------------------


async def submit_task(request: Request) -> Response:
    state = _state(request)
    if (refused := _refused(request, state, "submit_requests", "submit")) is not None:
        return refused
    # Every authenticated call takes its place in the rate window, but the
    # provider reports malformed requests before throttling them.
    admitted = state.submit_limiter.try_acquire()
    if not _asynchronous(request):
        return _error(403, "AccessDenied", _NO_SYNC)
    checked = await _served_request(request, state, TRYON_MODELS)
    if isinstance(checked, JSONResponse):
        return checked
    body, model = checked
    parsed = _parse_tryon(body, oss_resolve=_oss_resolve(request))
    if isinstance(parsed, JSONResponse):
        return parsed
    if not admitted:
        return _throttled(state, "submit", model)
    return await _accept_task(state, model, parsed)


async def _accept_task(state: EmulatorState, model: str, parsed: TaskRequest) -> Response:
    task = state.create_task(model, parsed)
    state.counters["submits"] += 1
    state.counters[f"submits.{model}"] += 1
    if (delay := state.take_lost_answer()) is not None:
        # "Timeout after sending": the task runs, but a client that gives up
        # before the answer arrives never learns its id.
        await asyncio.sleep(delay)
    return _ok({"output": {"task_status": "PENDING", "task_id": task.task_id}})


def _parse_tryon(body: dict[str, Any], *, oss_resolve: bool) -> TryOnRequest | JSONResponse:
    def invalid(message: str) -> JSONResponse:
        return _error(400, "InvalidParameter", message)

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
        return _error(
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


async def query_task(request: Request) -> Response:
    state = _state(request)
    if (refused := _refused(request, state, "queries", "query")) is not None:
        return refused
    if not state.query_limiter.try_acquire():
        return _throttled(state, "query")
    task_id = request.path_params["task_id"]
    task = state.board.get(task_id)
    if task is None:
        # Never existed or purged after 24 h: the provider answers 200 UNKNOWN.
        return _ok({"output": {"task_id": task_id, "task_status": UNKNOWN}})
    body: dict[str, Any] = {"output": _describe(state, task, request)}
    if task.status == SUCCEEDED:
        body["usage"] = _usage(task)
    return _ok(body)


async def cancel_task(request: Request) -> Response:
    state = _state(request)
    if (denied := _authenticate(request, state)) is not None:
        return denied
    task_id = request.path_params["task_id"]
    task = state.board.get(task_id)
    # The provider documents that only PENDING tasks can be canceled but not
    # the error code for the others; `UnsupportedOperation` is our choice.
    if task is None:
        return _error(
            400, "UnsupportedOperation", f"Task {task_id} does not exist or has been purged."
        )
    if not state.board.cancel(task):
        return _error(
            400,
            "UnsupportedOperation",
            f"Only a PENDING task can be canceled; task {task_id} is {task.reported_status}.",
        )
    state.counters["cancels"] += 1
    state.scheduler.tick()
    return _ok({})


async def list_tasks(request: Request) -> Response:
    # The provider confirms this endpoint and its query parameters, but not the
    # response beyond `request_id`; this shape (data/total/page_no/page_size,
    # each item a query `output` plus `model`) is ours.
    state = _state(request)
    if (denied := _authenticate(request, state)) is not None:
        return denied
    params = request.query_params
    try:
        page_no = int(params.get("page_no", "1"))
        page_size = int(params.get("page_size", "10"))
        since = parse_list_time(params["start_time"]) if params.get("start_time") else None
        until = parse_list_time(params["end_time"]) if params.get("end_time") else None
    except ValueError:
        return _error(
            400,
            "InvalidParameter",
            "page_no and page_size must be integers; start_time and end_time look like "
            "20230420000000.",
        )
    if page_no < 1 or page_size < 1:
        return _error(400, "InvalidParameter", "page_no and page_size must be >= 1.")
    statuses = None
    if params.get("status"):
        statuses = [s.strip().upper() for s in params["status"].split(",") if s.strip()]
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            return _error(400, "InvalidParameter", f"Unknown task status: {', '.join(unknown)}")
    found = state.board.select(
        since=since, until=until, model=params.get("model_name") or None, statuses=statuses
    )
    page = found[(page_no - 1) * page_size : page_no * page_size]
    data = [{**_describe(state, t, request), "model": t.model} for t in page]
    return _ok({"data": data, "total": len(found), "page_no": page_no, "page_size": page_size})


# --- parsing (synchronous garment segmentation) -----------------------------------


async def parse_garments(request: Request) -> Response:
    state = _state(request)
    state.counters["parsing_requests"] += 1
    if (denied := _authenticate(request, state)) is not None:
        return denied
    # Parsing has its own window: the provider limits each model to 10 requests/s.
    admitted = state.parsing_limiter.try_acquire()
    # Inferred, not documented: the provider refuses the async header on its
    # synchronous endpoints, as the try-on endpoint refuses synchronous calls.
    if _asynchronous(request):
        return _error(403, "AccessDenied", _NO_ASYNC)
    checked = await _served_request(request, state, (PARSING_MODEL,))
    if isinstance(checked, JSONResponse):
        return checked
    body, model = checked
    parsed = _parse_parsing(body)
    if isinstance(parsed, JSONResponse):
        return parsed
    image_url, clothes_type = parsed
    if not admitted:
        return _throttled(state, "parsing", model)
    try:
        person = await state.scheduler.fetch_input(
            "image_url", image_url, model=model, oss_resolve=_oss_resolve(request)
        )
    except InputRejected as rejected:
        # Synchronous: what fails a try-on task later is an HTTP 400 here.
        return _error(rejected.status, rejected.code, rejected.message)
    missing = state.take_parsing_misses(clothes_type)
    try:
        segments = await asyncio.to_thread(parsing.segment, person, clothes_type, missing)
    except Exception as exc:  # a segmentation bug must answer like the provider's 500s
        return _error(500, "InternalError.Algo", f"Parsing failed: {exc}")

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
    return _ok({"output": output, "usage": {"image_count": 1}})


def _parse_parsing(body: dict[str, Any]) -> tuple[str, tuple[str, ...]] | JSONResponse:
    payload = body.get("input")
    if not isinstance(payload, dict):
        return _error(
            400,
            "InvalidParameter",
            "The request is missing required parameters: input (a JSON object)",
        )
    image_url = payload.get("image_url")
    if not isinstance(image_url, str) or not image_url:
        return _error(
            400, "InvalidParameter", "The request is missing required parameters: input.image_url"
        )
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        return _error(400, "InvalidParameter", "parameters must be a JSON object")
    clothes_type = parameters.get("clothes_type")
    if not isinstance(clothes_type, list) or tuple(clothes_type) not in parsing.CLOTHES_TYPES:
        return _error(
            400,
            "InvalidParameter.ClothesType",
            'parameters.clothes_type must be one of ["upper"], ["lower"], ["dress"] '
            'or ["upper", "lower"].',
        )
    return image_url, tuple(clothes_type)


def _result_url(request: Request, state: EmulatorState, name: str) -> str:
    path = state.results.signed_path(name)
    assert path is not None, name  # stored just before
    return _root_url(request) + path


# --- the Qwen Image models ------------------------------------------------------------


async def generate_images(request: Request) -> Response:
    """The synchronous call: answers once the images are made."""
    state = _state(request)
    if (refused := _refused(request, state, "generation_requests", "generation")) is not None:
        return refused
    if _asynchronous(request):
        return _error(403, "AccessDenied", _NO_ASYNC)
    checked = await _generation_request(request, state)
    if isinstance(checked, JSONResponse):
        return checked
    model, parsed, admitted = checked
    if not admitted:
        return _throttled(state, "generation", model)
    token = state.board.claim_call(model)
    if token is None:
        return _throttled(
            state, "generation", model,
            "Too many concurrent requests for this model, please try again later.",
        )
    request_id = _request_id()
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
        return _error(rejected.status, rejected.code, rejected.message)
    except Exception as exc:  # a rendering bug must answer like the provider's 500s
        return _error(500, "InternalError.Algo", f"Generation failed: {exc}")
    finally:
        state.board.release_call(model, token)

    expires_at = state.clock.now() + state.clock.scaled(RESULT_URL_LIFETIME)
    names = tuple(f"generation-{request_id}-{k}.png" for k in range(1, len(pngs) + 1))
    for name, png in zip(names, pngs, strict=True):
        state.results.put(name, png, expires_at)
    urls = _result_urls(request, state, names)
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
    state = _state(request)
    if (refused := _refused(request, state, "submit_requests", "submit")) is not None:
        return refused
    if not _asynchronous(request):
        return _error(403, "AccessDenied", _NO_SYNC)
    checked = await _generation_request(request, state)
    if isinstance(checked, JSONResponse):
        return checked
    model, parsed, admitted = checked
    if not admitted:
        return _throttled(state, "submit", model)
    return await _accept_task(state, model, parsed)


async def _generation_request(
    request: Request, state: EmulatorState
) -> tuple[str, GenerationRequest, bool] | JSONResponse:
    """The model, the checked body and whether the model's rate window
    admitted the call; or the error answer."""
    checked = await _served_request(request, state, QWEN_MODELS)
    if isinstance(checked, JSONResponse):
        return checked
    body, model = checked
    if _asynchronous(request) and not FAMILIES[model].asynchronous:
        # Not confirmed: the contract says the 2.0 family is sync only, not
        # what its async endpoint answers; this code and message are ours.
        return _error(
            400,
            "InvalidParameter",
            f"Model {model} does not support asynchronous calls; call {GENERATION_PATH} "
            "without the X-DashScope-Async header.",
        )
    # As for submits: a malformed call takes its place in the model's window
    # but is reported as malformed rather than throttled.
    admitted = state.model_limiters[model].try_acquire()
    try:
        parsed = parse_request(body, model, oss_resolve=_oss_resolve(request))
    except InvalidRequest as invalid:
        return _error(400, "InvalidParameter", invalid.message)
    return model, parsed, admitted


# --- temporary file upload ---------------------------------------------------------


async def get_upload_policy(request: Request) -> Response:
    state = _state(request)
    if (denied := _authenticate(request, state)) is not None:
        return denied
    action = request.query_params.get("action")
    model = request.query_params.get("model")
    if not action or not model:
        return _error(
            400, "InvalidParameter", "The request is missing required parameters: action, model"
        )
    if action != "getPolicy":
        return _error(400, "InvalidParameter", f"Unsupported action {action!r}: use getPolicy.")
    # Any model name is accepted but a retired one: the provider serves many
    # more models than the emulator, and a file is bound to the model named
    # here when it is used.
    if model in state.retired:
        return _model_not_exist()
    if not state.policy_limiter(model).try_acquire():
        return _throttled(state, "upload_policy")
    state.counters["upload_policies"] += 1
    return _ok({"data": state.uploads.issue_policy(model, _root_url(request) + OSS_UPLOAD_PATH)})


async def upload_file(request: Request) -> Response:
    """The upload host: an OSS PostObject form, `file` last (no DashScope key)."""
    state = _state(request)
    body = await _read_capped(request, state.uploads.max_file_bytes + FORM_OVERHEAD)
    try:
        if body is None:
            raise UploadRejected(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size "
                f"({state.uploads.max_file_mb} MB).",
            )
        content_type = request.headers.get("content-type", "")
        # The MIME parser is pure Python: keep a multi-megabyte body off the loop.
        form = await asyncio.to_thread(parse_form, content_type, body)
        key = state.uploads.accept(form)
    except UploadRejected as rejected:
        return _oss_error(request, rejected.status, rejected.code, rejected.message)
    state.counters["uploads"] += 1
    assert form.file is not None  # accept() refuses a form without one
    request_id = _oss_request_id()
    headers = {
        # OSS's ETag of a simple upload: the MD5 of the content.
        "ETag": f'"{hashlib.md5(form.file, usedforsecurity=False).hexdigest().upper()}"',
        "x-oss-request-id": request_id,
    }
    # OSS answers 204 unless the form asks for 200 (empty) or 201 (an XML receipt).
    status = form.fields.get("success_action_status")
    if status == "200":
        return Response(b"", status_code=200, headers=headers)
    if status == "201":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>\n'
            f"  <Location>{escape(_root_url(request) + OSS_UPLOAD_PATH + '/' + key)}</Location>\n"
            f"  <Key>{escape(key)}</Key>\n  <ETag>{headers['ETag']}</ETag>\n</PostResponse>\n"
        )
        return Response(xml, status_code=201, media_type="application/xml", headers=headers)
    return Response(status_code=204, headers=headers)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes."""
    body = bytearray()
    too_long = False
    async for chunk in request.stream():
        # Keep draining past the limit: answering mid-upload breaks many clients.
        if too_long:
            continue
        body += chunk
        if len(body) > limit:
            too_long = True
            body.clear()
    return None if too_long else bytes(body)


# --- result images (what `image_url` points at) -----------------------------------

_OSS_ERRORS = {
    Access.MISSING_SIGNATURE: (
        403, "AccessDenied", "You have no right to access this object because of bucket acl."
    ),
    Access.BAD_SIGNATURE: (
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    ),
    Access.EXPIRED: (403, "AccessDenied", "Request has expired."),
    Access.NOT_FOUND: (404, "NoSuchKey", "The specified key does not exist."),
}


async def get_result(request: Request) -> Response:
    state = _state(request)
    access, stored = state.results.open(
        request.path_params["name"],
        request.query_params.get("Expires"),
        request.query_params.get("Signature"),
        state.clock.now(),
    )
    if access is Access.OK and stored is not None:
        fault = state.take_result_fault()
        if fault is not None:
            return _faulty_result(fault)
        return Response(stored.data, media_type=stored.media_type)
    status, code, message = _OSS_ERRORS[access]
    return _oss_error(request, status, code, message)


def _faulty_result(fault: ResultFault) -> Response:
    """A result served as a hostile or broken host might (test knob)."""
    if fault.mode == "redirect":
        return Response(status_code=302, headers={"location": "http://example.invalid/r.jpg"})
    if fault.mode == "not_image":
        return Response(b"<html>not an image</html>", media_type="image/jpeg")

    async def filler() -> AsyncIterator[bytes]:
        yield b"\xff\xd8\xff\xe0"
        chunk = bytes(1024 * 1024)
        for start in range(0, fault.size, len(chunk)):
            yield chunk[: min(len(chunk), fault.size - start)]

    # No Content-Length: the client must count for itself.
    return StreamingResponse(filler(), media_type="image/jpeg")


def _oss_request_id() -> str:
    return uuid.uuid4().hex.upper()[:24]


def _oss_error(request: Request, status: int, code: str, message: str) -> Response:
    """The shape of an OSS error: what the provider's result URLs and upload host return."""
    request_id = _oss_request_id()
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{code}</Code>\n  <Message>{escape(message)}</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        f"  <HostId>{escape(request.url.netloc)}</HostId>\n</Error>\n"
    )
    return Response(
        xml, status_code=status, media_type="application/xml",
        headers={"x-oss-request-id": request_id},
    )


# --- test knobs (no auth) -------------------------------------------------------


def _knob_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _count(body: dict[str, Any]) -> int | None:
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return None
    return count


FAULT_TARGETS = (
    "submit", "query", "generation", "task", "lost_submit", "lost_call", "hold", "parsing",
    "result",
)


async def add_fault(request: Request) -> Response:
    state = _state(request)
    body = await _json_object(request)
    if body is None:
        return _knob_error(400, "body must be a JSON object")
    target, count = body.get("target"), _count(body)
    if count is None:
        return _knob_error(400, "count must be an integer >= 1")
    code, message = body.get("code"), body.get("message")
    if target in ("submit", "query", "generation", "task") and (
        not isinstance(code, str) or not code
    ):
        return _knob_error(400, f"a {target} fault needs a code")
    if message is not None and not isinstance(message, str):
        return _knob_error(400, "message must be a string")
    if target in ("submit", "query", "generation"):
        status = body.get("status", 500)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            return _knob_error(400, "status must be an HTTP error status (400-599)")
        text = message or f"Injected by the emulator ({code})."
        state.add_request_fault(target, RequestFault(status, code, text, count))  # type: ignore[arg-type]
    elif target == "task":
        text = message or f"Injected by the emulator ({code})."
        state.add_task_fault(TaskFault(Failure(code, text), count))  # type: ignore[arg-type]
    elif target in ("lost_submit", "lost_call"):
        delay = body.get("delay", 60)
        if (
            isinstance(delay, bool) or not isinstance(delay, int | float)
            or not math.isfinite(delay) or delay <= 0
        ):
            return _knob_error(400, "delay must be a number of seconds > 0")
        if target == "lost_submit":
            state.add_lost_answer(LostAnswerFault(float(delay), count))
        else:
            state.add_lost_call(LostAnswerFault(float(delay), count))
    elif target == "result":
        mode, size = body.get("mode"), body.get("size", 64 * 1000 * 1000)
        if mode not in RESULT_FAULT_MODES:
            return _knob_error(400, f"mode must be one of {', '.join(RESULT_FAULT_MODES)}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return _knob_error(400, "size must be a number of bytes >= 0")
        state.add_result_fault(ResultFault(mode, size, count))
    elif target == "hold":
        state.add_holds(count)
    elif target == "parsing":
        garment = body.get("garment")
        if garment not in parsing.GARMENTS:
            return _knob_error(400, f"garment must be one of {', '.join(parsing.GARMENTS)}")
        state.add_parsing_fault(ParsingFault(garment, count))  # type: ignore[arg-type]
    else:
        return _knob_error(400, f"target must be one of {', '.join(FAULT_TARGETS)}")
    return JSONResponse({"armed": state.armed_faults()})


async def list_faults(request: Request) -> Response:
    return JSONResponse({"armed": _state(request).armed_faults()})


async def read_timelines(request: Request) -> Response:
    """Every task since the last reset, oldest first, purged ones included
    (`purged`: the provider's API no longer shows it)."""
    state = _state(request)
    return JSONResponse(
        [
            {**task.timeline(), "purged": state.board.get(task.task_id) is None}
            for task in state.board.history()
        ]
    )


async def fail_task(request: Request) -> Response:
    state = _state(request)
    task = state.board.get(request.path_params["task_id"])
    if task is None:
        return _knob_error(404, "no such task")
    if task.status in ENDED:
        return _knob_error(409, f"task already ended as {task.status}")
    body = await _json_object(request) or {}
    code = body.get("code") or "InternalError"
    message = body.get("message") or f"Injected by the emulator ({code})."
    if not isinstance(code, str) or not isinstance(message, str):
        return _knob_error(400, "code and message must be strings")
    state.scheduler.fail_now(task, Failure(code, message))
    return JSONResponse({"output": _describe(state, task, request)})


async def hold_task(request: Request) -> Response:
    state = _state(request)
    task = state.board.get(request.path_params["task_id"])
    if task is None:
        return _knob_error(404, "no such task")
    body = await _json_object(request) or {}
    hold = body.get("hold", True)
    if not isinstance(hold, bool):
        return _knob_error(400, "hold must be true or false")
    if task.status in ENDED:
        return _knob_error(409, f"task already ended as {task.status}")
    state.set_hold(task, hold)
    return JSONResponse({"output": _describe(state, task, request), "held": task.held})


async def retire_model(request: Request) -> Response:
    """Retire a model (or bring it back) at run time: `{"model", "retired"}`."""
    state = _state(request)
    body = await _json_object(request)
    if body is None:
        return _knob_error(400, "body must be a JSON object")
    model, retired = body.get("model"), body.get("retired", True)
    if model not in MODELS:
        return _knob_error(400, f"model must be one of {', '.join(MODELS)}")
    if not isinstance(retired, bool):
        return _knob_error(400, "retired must be true or false")
    if retired:
        state.retired.add(model)
    else:
        state.retired.discard(model)
    return JSONResponse({"retired": sorted(state.retired)})


async def list_retired(request: Request) -> Response:
    return JSONResponse({"retired": sorted(_state(request).retired)})


def _clock_body(state: EmulatorState) -> dict[str, Any]:
    return {
        "now": format_provider_time(state.clock.now()),
        "offset_seconds": state.clock.offset,
        "speedup": state.clock.speedup,
    }


async def advance_clock(request: Request) -> Response:
    state = _state(request)
    body = await _json_object(request) or {}
    seconds = body.get("advance_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return _knob_error(400, "advance_seconds must be a number >= 0")
    state.advance_clock(float(seconds))
    return JSONResponse(_clock_body(state))


async def read_clock(request: Request) -> Response:
    return JSONResponse(_clock_body(_state(request)))


async def read_stats(request: Request) -> Response:
    return JSONResponse(_state(request).stats())


async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"reset": True})
