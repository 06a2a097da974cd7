"""What the provider's routes share: the key, the async header, JSON bodies,
and DashScope's answers (a fresh `request_id` on each; errors put `code` and
`message` at the top level)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..state import EmulatorState
from ..uploads import RESOLVE_HEADER

API_PREFIX = "/api/v1"
RATE_EXCEEDED = "Requests rate limit exceeded, please try again later."
NO_SYNC = "current user api does not support synchronous calls"
NO_ASYNC = "current user api does not support asynchronous calls"

Handler = Callable[[Request], Awaitable[Response]]


def route(path: str, endpoint: Handler, methods: list[str]) -> list[Route]:
    # Both spellings are routed directly: a redirect to add or drop the slash
    # would lose the body of a POST with many clients.
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


def emulator_state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    # Start the lifecycle loop even under ASGI clients that skip lifespan events.
    state.scheduler.ensure_running()
    return state


def new_request_id() -> str:
    return str(uuid.uuid4())


def ok(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({**body, "request_id": new_request_id()})


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "request_id": new_request_id()}, status_code=status
    )


async def http_exception(_request: Request, exc: HTTPException) -> JSONResponse:
    codes = {404: "NotFound", 405: "MethodNotAllowed"}
    return error(exc.status_code, codes.get(exc.status_code, "InvalidParameter"), exc.detail)


def paging(request: Request, default_size: int) -> tuple[int, int] | JSONResponse:
    """`page_no` and `page_size` of a listing, or the answer to bad ones."""
    try:
        page_no = int(request.query_params.get("page_no", "1"))
        page_size = int(request.query_params.get("page_size", str(default_size)))
    except ValueError:
        return error(400, "InvalidParameter", "page_no and page_size must be integers.")
    if page_no < 1 or page_size < 1:
        return error(400, "InvalidParameter", "page_no and page_size must be >= 1.")
    return page_no, page_size


def authenticate(request: Request, state: EmulatorState) -> JSONResponse | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return error(401, "InvalidApiKey", "No API-key provided.")
    if key not in state.config.api_keys:
        return error(401, "InvalidApiKey", "Invalid API-key provided.")
    return None


def refused(request: Request, state: EmulatorState, counter: str,
            fault: str) -> JSONResponse | None:
    """Count the request; the answer to a bad key or an injected fault, if any."""
    state.counters[counter] += 1
    denied = authenticate(request, state)
    return denied if denied is not None else _injected(state, fault)


def _injected(state: EmulatorState, target: str) -> JSONResponse | None:
    fault = state.take_request_fault(target)
    if fault is None:
        return None
    return error(fault.status, fault.code, fault.message)


def throttled(
    state: EmulatorState, target: str, model: str | None = None, message: str = RATE_EXCEEDED,
    code: str = "Throttling.RateQuota",
) -> JSONResponse:
    state.counters[f"throttled.{target}"] += 1
    if model is not None:
        state.counters[f"throttled.{model}"] += 1
    return error(429, code, message)


def asynchronous(request: Request) -> bool:
    return request.headers.get("x-dashscope-async", "").strip().lower() == "enable"


def oss_resolve(request: Request) -> bool:
    return request.headers.get(RESOLVE_HEADER, "").strip().lower() == "enable"


async def served_request(request: Request, state: EmulatorState, served: tuple[str, ...]
                         ) -> tuple[dict[str, Any], str] | JSONResponse:
    """The JSON body and the model it names, if the emulator serves that model for
    this endpoint; or the provider's error answer."""
    body = await json_object(request)
    if body is None:
        return error(400, "InvalidParameter", "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error(400, "InvalidParameter", "The request is missing required parameters: model")
    if not state.serves(model, served):
        return model_not_exist()
    return body, model


def model_not_exist() -> JSONResponse:
    # What unknown ids have been seen answering (CONTRACT.md, "Retirement");
    # a retired model answers the same, as no other answer is documented.
    return error(400, "InvalidParameter", "Model not exist.")


async def json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def root_url(request: Request) -> str:
    # Built from the URL the client used, so links work on any host and port.
    return str(request.base_url).rstrip("/")


def result_urls(request: Request, state: EmulatorState, names: tuple[str, ...]) -> list[str]:
    """Signed URLs of the stored images among `names` (purged ones are left out)."""
    paths = (state.results.signed_path(name) for name in names)
    return [root_url(request) + path for path in paths if path is not None]
