"""Test knobs under /_emulator (no auth): faults, holding or failing a task,
retiring a model, a model's limits, the clock, stats, timelines, reset."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import parsing
from ..clock import format_provider_time
from ..config import MODELS, ModelQuota, check_quota
from ..state import (
    RESULT_FAULT_MODES,
    EmulatorState,
    LostAnswerFault,
    ParsingFault,
    RequestFault,
    ResultFault,
    TaskFault,
)
from ..tasks import ENDED, Failure
from .protocol import emulator_state, json_object, route
from .tasks import describe

FAULT_TARGETS = (
    "submit", "query", "generation", "limits", "task", "lost_submit", "lost_call", "hold",
    "parsing", "result",
)


def _knob_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _count(body: dict[str, Any]) -> int | None:
    count = body.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return None
    return count


async def add_fault(request: Request) -> Response:
    state = emulator_state(request)
    body = await json_object(request)
    if body is None:
        return _knob_error(400, "body must be a JSON object")
    target, count = body.get("target"), _count(body)
    if count is None:
        return _knob_error(400, "count must be an integer >= 1")
    code, message = body.get("code"), body.get("message")
    if target in ("submit", "query", "generation", "limits", "task") and (
        not isinstance(code, str) or not code
    ):
        return _knob_error(400, f"a {target} fault needs a code")
    if message is not None and not isinstance(message, str):
        return _knob_error(400, "message must be a string")
    if target in ("submit", "query", "generation", "limits"):
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
    return JSONResponse({"armed": emulator_state(request).armed_faults()})


async def disarm_faults(request: Request) -> Response:
    """Disarm every fault and release held tasks, leaving the tasks themselves:
    what a shared emulator needs between tests (reset would forget the tasks)."""
    state = emulator_state(request)
    state.disarm()
    return JSONResponse({"armed": state.armed_faults()})


async def read_timelines(request: Request) -> Response:
    """Every task since the last reset, oldest first, purged ones included
    (`purged`: the provider's API no longer shows it)."""
    state = emulator_state(request)
    return JSONResponse(
        [
            {**task.timeline(), "purged": state.board.get(task.task_id) is None}
            for task in state.board.history()
        ]
    )


async def fail_task(request: Request) -> Response:
    state = emulator_state(request)
    task = state.board.get(request.path_params["task_id"])
    if task is None:
        return _knob_error(404, "no such task")
    if task.status in ENDED:
        return _knob_error(409, f"task already ended as {task.status}")
    body = await json_object(request) or {}
    code = body.get("code") or "InternalError"
    message = body.get("message") or f"Injected by the emulator ({code})."
    if not isinstance(code, str) or not isinstance(message, str):
        return _knob_error(400, "code and message must be strings")
    state.scheduler.fail_now(task, Failure(code, message))
    return JSONResponse({"output": describe(state, task, request)})


async def hold_task(request: Request) -> Response:
    state = emulator_state(request)
    task = state.board.get(request.path_params["task_id"])
    if task is None:
        return _knob_error(404, "no such task")
    body = await json_object(request) or {}
    hold = body.get("hold", True)
    if not isinstance(hold, bool):
        return _knob_error(400, "hold must be true or false")
    if task.status in ENDED:
        return _knob_error(409, f"task already ended as {task.status}")
    state.set_hold(task, hold)
    return JSONResponse({"output": describe(state, task, request), "held": task.held})


async def retire_model(request: Request) -> Response:
    """Retire a model (or bring it back) at run time: `{"model", "retired"}`."""
    state = emulator_state(request)
    body = await json_object(request)
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
    return JSONResponse({"retired": sorted(emulator_state(request).retired)})


QUOTA_FIELDS = ("request_limit", "request_limit_period", "concurrency", "queue")


def _quota(given: dict[str, Any], base: ModelQuota) -> ModelQuota:
    """`base` with the fields `given` names (ValueError when one is not a whole number)."""
    if any(isinstance(given.get(f), bool) or not isinstance(given.get(f), int | None)
           for f in QUOTA_FIELDS) or set(given) - set(QUOTA_FIELDS):
        raise ValueError(f"the limits are whole numbers: {', '.join(QUOTA_FIELDS)}")
    quota = replace(base, **{f: given[f] for f in QUOTA_FIELDS if f in given})
    check_quota("limits", quota)
    return quota


def _limits_body(state: EmulatorState) -> dict[str, Any]:
    return {model: {**asdict(state.quotas[model]),
                    "workspace": (asdict(state.workspace_quotas[model])
                                  if state.workspace_quotas[model] else None),
                    "enforced": asdict(state.quota(model))}
            for model in state.quotas}


async def set_limits(request: Request) -> Response:
    """A model's limits changed at run time, enforced and answered by the limits API
    at once: `{"model", "request_limit"?, "request_limit_period"?, "concurrency"?,
    "queue"?, "workspace"?: {...the same...} | null}`."""
    state = emulator_state(request)
    body = await json_object(request)
    if body is None:
        return _knob_error(400, "body must be a JSON object")
    model = body.pop("model", None)
    if model not in state.quotas:
        return _knob_error(400, f"model must be one of {', '.join(state.quotas)}")
    workspace = body.pop("workspace", state.workspace_quotas[model])
    try:
        quota = _quota(body, state.quotas[model])
        if isinstance(workspace, dict):
            workspace = _quota(workspace, quota)
        elif workspace is not None and not isinstance(workspace, ModelQuota):
            raise ValueError("workspace must be an object of limits, or null")
    except ValueError as exc:
        return _knob_error(400, str(exc))
    state.set_quota(model, quota, workspace)
    return JSONResponse(_limits_body(state))


async def list_limits(request: Request) -> Response:
    return JSONResponse(_limits_body(emulator_state(request)))


def _clock_body(state: EmulatorState) -> dict[str, Any]:
    return {
        "now": format_provider_time(state.clock.now()),
        "offset_seconds": state.clock.offset,
        "speedup": state.clock.speedup,
    }


async def advance_clock(request: Request) -> Response:
    state = emulator_state(request)
    body = await json_object(request) or {}
    seconds = body.get("advance_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return _knob_error(400, "advance_seconds must be a number >= 0")
    state.advance_clock(float(seconds))
    return JSONResponse(_clock_body(state))


async def read_clock(request: Request) -> Response:
    return JSONResponse(_clock_body(emulator_state(request)))


async def read_stats(request: Request) -> Response:
    return JSONResponse(emulator_state(request).stats())


async def reset(request: Request) -> Response:
    emulator_state(request).reset()
    return JSONResponse({"reset": True})


ROUTES = [
    *route("/_emulator/faults", add_fault, ["POST"]),
    *route("/_emulator/faults", list_faults, ["GET"]),
    *route("/_emulator/faults", disarm_faults, ["DELETE"]),
    *route("/_emulator/tasks", read_timelines, ["GET"]),
    *route("/_emulator/tasks/{task_id}/fail", fail_task, ["POST"]),
    *route("/_emulator/tasks/{task_id}/hold", hold_task, ["POST"]),
    *route("/_emulator/retire", retire_model, ["POST"]),
    *route("/_emulator/retire", list_retired, ["GET"]),
    *route("/_emulator/limits", set_limits, ["POST"]),
    *route("/_emulator/limits", list_limits, ["GET"]),
    *route("/_emulator/clock", advance_clock, ["POST"]),
    *route("/_emulator/clock", read_clock, ["GET"]),
    *route("/_emulator/stats", read_stats, ["GET"]),
    *route("/_emulator/reset", reset, ["POST"]),
]
