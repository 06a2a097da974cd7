"""The provider's asynchronous tasks, whatever the model: query, cancel, list;
and how a submit that passed its checks becomes a task."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..clock import parse_list_time
from ..generation import GenerationRequest
from ..state import EmulatorState
from ..tasks import (
    CANCELED,
    FAILED,
    PENDING,
    POST_PROCESSING,
    PRE_PROCESSING,
    RUNNING,
    SUCCEEDED,
    UNKNOWN,
    Task,
    TaskRequest,
)
from .protocol import (
    API_PREFIX,
    authenticate,
    emulator_state,
    error,
    new_request_id,
    ok,
    paging,
    refused,
    result_urls,
    route,
    throttled,
)


async def accept_task(state: EmulatorState, model: str, parsed: TaskRequest) -> Response:
    quota = state.quota(model)
    if quota.queue is not None and state.board.pending(model) >= quota.queue:
        # Past the running tasks and a full queue: what the provider answers is not
        # documented ("expect 429"); this code and message are ours.
        state.counters[f"queue_full.{model}"] += 1
        return throttled(state, "submit", model,
                         f"Too many queued tasks for {model} (queue cap {quota.queue}); "
                         "try again later.", code="Throttling")
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
    if not state.query_limiter.try_acquire():  # query, list and cancel share 20/s
        return throttled(state, "query")
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


# How a listed task's status reads: the list knows no phases (CONTRACT.md, "List").
LISTED = {PRE_PROCESSING: RUNNING, POST_PROCESSING: RUNNING}
LISTED_STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, UNKNOWN)
REGION = "cn-beijing"
API_KEY_ID = "ak-emulator"


def _epoch_ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def listed(task: Task) -> dict[str, Any]:
    """One item of the task list, in the documented shape: `status`, epoch-ms times
    (`end_time` absent until the task ends), no result URL."""
    item: dict[str, Any] = {
        "task_id": task.task_id, "status": LISTED.get(task.status, task.status),
        "model_name": task.model, "gmt_create": _epoch_ms(task.submitted_at),
        "region": REGION, "request_id": new_request_id(), "api_key_id": API_KEY_ID,
        "user_api_unique_key": f"apikey:v1:aigc:image2image:image-synthesis:{task.model}"}
    if task.scheduled_at is not None:
        item["start_time"] = _epoch_ms(task.scheduled_at)
    if task.ended_at is not None:
        item["end_time"] = _epoch_ms(task.ended_at)
    return item


async def list_tasks(request: Request) -> Response:
    state = emulator_state(request)
    if (denied := authenticate(request, state)) is not None:
        return denied
    if not state.query_limiter.try_acquire():  # query, list and cancel share 20/s
        return throttled(state, "query")
    if isinstance(paged := paging(request, default_size=10), JSONResponse):
        return paged
    page_no, page_size = paged
    params = request.query_params
    try:
        since = parse_list_time(params["start_time"]) if params.get("start_time") else None
        until = parse_list_time(params["end_time"]) if params.get("end_time") else None
    except ValueError:
        return error(400, "InvalidParameter", "start_time and end_time look like 20230420000000.")
    statuses = None
    if params.get("status"):
        statuses = [s.strip().upper() for s in params["status"].split(",") if s.strip()]
        unknown = [s for s in statuses if s not in LISTED_STATUSES]
        if unknown:
            return error(400, "InvalidParameter", f"Unknown task status: {', '.join(unknown)}")
        if RUNNING in statuses:
            statuses += list(LISTED)
    found = state.board.select(
        since=since, until=until, model=params.get("model_name") or None, statuses=statuses
    )
    page = found[(page_no - 1) * page_size : page_no * page_size]
    return ok({"total": len(found), "total_page": math.ceil(len(found) / page_size),
               "page_no": page_no, "page_size": page_size, "data": [listed(t) for t in page]})


ROUTES = [
    *route(API_PREFIX + "/tasks", list_tasks, ["GET"]),
    *route(API_PREFIX + "/tasks/{task_id}", query_task, ["GET"]),
    *route(API_PREFIX + "/tasks/{task_id}/cancel", cancel_task, ["POST"]),
]
