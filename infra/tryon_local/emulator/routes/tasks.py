"""The provider's asynchronous tasks, whatever the model: query, cancel, list;
and how a submit that passed its checks becomes a task."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..clock import parse_list_time
from ..generation import GenerationRequest
from ..state import EmulatorState
from ..tasks import STATUSES, SUCCEEDED, UNKNOWN, Task, TaskRequest
from .protocol import (
    API_PREFIX,
    authenticate,
    emulator_state,
    error,
    ok,
    refused,
    result_urls,
    route,
    throttled,
)


async def accept_task(state: EmulatorState, model: str, parsed: TaskRequest) -> Response:
    task = state.create_task(model, parsed)
    state.counters["submits"] += 1
    state.counters[f"submits.{model}"] += 1
    if (delay := state.take_lost_answer()) is not None:
        # "Timeout after sending": the task runs, but a client that gives up
        # before the answer arrives never learns its id.
        await asyncio.sleep(delay)
    return ok({"output": {"task_status": "PENDING", "task_id": task.task_id}})


def describe(state: EmulatorState, task: Task, request: Request) -> dict[str, Any]:
    """The task's `output` as a query answers it."""
    output = task.output()
    if task.status == SUCCEEDED:
        urls = result_urls(request, state, task.results)
        if urls and isinstance(task.request, GenerationRequest):
            output.update(task.request.output(urls))
        elif urls:
            output["image_url"] = urls[0]
    return output


def _usage(task: Task) -> dict[str, int]:
    if isinstance(task.request, GenerationRequest) and task.output_size is not None:
        return task.request.family.usage(task.output_size, len(task.results))
    return {"image_count": 1}


async def query_task(request: Request) -> Response:
    state = emulator_state(request)
    if (denied := refused(request, state, "queries", "query")) is not None:
        return denied
    if not state.query_limiter.try_acquire():
        return throttled(state, "query")
    task_id = request.path_params["task_id"]
    task = state.board.get(task_id)
    if task is None:
        # Never existed or purged after 24 h: the provider answers 200 UNKNOWN.
        return ok({"output": {"task_id": task_id, "task_status": UNKNOWN}})
    body: dict[str, Any] = {"output": describe(state, task, request)}
    if task.status == SUCCEEDED:
        body["usage"] = _usage(task)
    return ok(body)


async def cancel_task(request: Request) -> Response:
    state = emulator_state(request)
    if (denied := authenticate(request, state)) is not None:
        return denied
    task_id = request.path_params["task_id"]
    task = state.board.get(task_id)
    # The provider documents that only PENDING tasks can be canceled but not
    # the error code for the others; `UnsupportedOperation` is our choice.
    if task is None:
        return error(
            400, "UnsupportedOperation", f"Task {task_id} does not exist or has been purged."
        )
    if not state.board.cancel(task):
        return error(
            400,
            "UnsupportedOperation",
            f"Only a PENDING task can be canceled; task {task_id} is {task.reported_status}.",
        )
    state.counters["cancels"] += 1
    state.scheduler.tick()
    return ok({})


async def list_tasks(request: Request) -> Response:
    # The provider confirms this endpoint and its query parameters, but not the
    # response beyond `request_id`; this shape (data/total/page_no/page_size,
    # each item a query `output` plus `model`) is ours.
    state = emulator_state(request)
    if (denied := authenticate(request, state)) is not None:
        return denied
    params = request.query_params
    try:
        page_no = int(params.get("page_no", "1"))
        page_size = int(params.get("page_size", "10"))
        since = parse_list_time(params["start_time"]) if params.get("start_time") else None
        until = parse_list_time(params["end_time"]) if params.get("end_time") else None
    except ValueError:
        return error(
            400,
            "InvalidParameter",
            "page_no and page_size must be integers; start_time and end_time look like "
            "20230420000000.",
        )
    if page_no < 1 or page_size < 1:
        return error(400, "InvalidParameter", "page_no and page_size must be >= 1.")
    statuses = None
    if params.get("status"):
        statuses = [s.strip().upper() for s in params["status"].split(",") if s.strip()]
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            return error(400, "InvalidParameter", f"Unknown task status: {', '.join(unknown)}")
    found = state.board.select(
        since=since, until=until, model=params.get("model_name") or None, statuses=statuses
    )
    page = found[(page_no - 1) * page_size : page_no * page_size]
    data = [{**describe(state, t, request), "model": t.model} for t in page]
    return ok({"data": data, "total": len(found), "page_no": page_no, "page_size": page_size})


ROUTES = [
    *route(API_PREFIX + "/tasks", list_tasks, ["GET"]),
    *route(API_PREFIX + "/tasks/{task_id}", query_task, ["GET"]),
    *route(API_PREFIX + "/tasks/{task_id}/cancel", cancel_task, ["POST"]),
]
