"""The temporary upload's policy (getPolicy): where and how to post a file."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .file_host import OSS_UPLOAD_PATH
from .protocol import (
    API_PREFIX,
    authenticate,
    emulator_state,
    error,
    model_not_exist,
    ok,
    root_url,
    route,
    throttled,
)

UPLOADS_PATH = "/uploads"


async def get_upload_policy(request: Request) -> Response:
    state = emulator_state(request)
    if (denied := authenticate(request, state)) is not None:
        return denied
    action = request.query_params.get("action")
    model = request.query_params.get("model")
    if not action or not model:
        return error(
            400, "InvalidParameter", "The request is missing required parameters: action, model"
        )
    if action != "getPolicy":
        return error(400, "InvalidParameter", f"Unsupported action {action!r}: use getPolicy.")
    # Any model name is accepted but a retired one: the provider serves many
    # more models than the emulator, and a file is bound to the model named
    # here when it is used.
    if model in state.retired:
        return model_not_exist()
    if not state.policy_limiter(model).try_acquire():
        return throttled(state, "upload_policy")
    state.counters["upload_policies"] += 1
    return ok({"data": state.uploads.issue_policy(model, root_url(request) + OSS_UPLOAD_PATH)})


ROUTES = route(API_PREFIX + UPLOADS_PATH, get_upload_policy, ["GET"])
