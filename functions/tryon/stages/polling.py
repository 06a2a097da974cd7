"""Polling: the wait loop's step for a task model. Query the task once, hand the
provider's slot on as soon as the task ends, say how long to wait next, and
give up (canceling a still-queued task) past the job's deadline."""

from __future__ import annotations

from typing import Any

from tryon.job_record import ProviderStatus, StepStatus, WorkflowState
from tryon.providers.dashscope_tasks import TaskState
from tryon.providers.errors import ProviderError
from tryon.stages.context import Context
from tryon.stages.hand_on import hand_on
from tryon.stages.waiting import next_wait, poll_plan, wait_until


def poll(ctx: Context, state: WorkflowState) -> WorkflowState:
    """Query the task once; the answer's `status` drives the state machine."""
    job_id, model = state.job_id, state.model
    wait_until(ctx, state.poll_at)
    client = ctx.provider().tasks
    try:
        ctx.pacer.wait_turn("query")
        task = client.query(state.task_id)
    except ProviderError as exc:
        ctx.jobs.record_request_id(job_id, "query", exc.request_id)
        if exc.retryable:
            raise  # the state machine retries with backoff
        return state.but(status=StepStatus.FAILED, error=exc.as_error())
    now = ctx.clock()
    timeline = provider_timeline(ctx, task)
    if not task.is_pending:
        # The provider's slot is free now: the next queued job goes into it before
        # anything else, this job's result included.
        hand_on(ctx, model, job_id)
        timeline["end_seen"] = now  # the poll lag: provider_end to here
    polls = state.polls + 1
    ctx.jobs.update(job_id, provider_status=ProviderStatus(task.status), polls=polls,
                    last_query_request_id=task.request_id, timeline=timeline)
    out = state.but(polls=polls, status=StepStatus(task.status))
    if not task.is_pending:
        if task.status == "SUCCEEDED":
            _record_durations(ctx, model, task.task_id, timeline)
        if task.status == "SUCCEEDED":
            return out.but(image_url=task.image_url, usage=_usage(task))
        return out.but(error=_task_error(task))
    deadline = run_deadline(ctx, state, task, timeline)
    if now >= deadline:
        return out.but(status=StepStatus.TIMED_OUT, error=_give_up(ctx, client, job_id, task))
    started = timeline.get("provider_start") if task.status != "PENDING" else None
    if started is not None:
        plan, running_for = state.plan or poll_plan(ctx, model), now - started
    else:
        # Still in the provider's queue (submitted ahead of a free slot): polled on
        # the model's times from submit to end, until a query finds it started.
        submitted = timeline.get("provider_submit")
        plan = state.plan_from_submit or poll_plan(ctx, model, since="submit")
        running_for = now - submitted if submitted is not None else None
    return out.but(**next_wait(ctx, plan, running_for, polls, now=now, deadline=deadline))


def _record_durations(ctx: Context, model: str, task_id: str,
                      timeline: dict[str, float]) -> None:
    """The poll plans learn from what the provider's own times say."""
    end = timeline.get("provider_end")
    for since in ("start", "submit"):
        begin = timeline.get(f"provider_{since}")
        if end is not None and begin is not None:
            ctx.durations.record(model, task_id, end - begin, since=since)


def run_deadline(ctx: Context, state: WorkflowState, task: TaskState,
                 timeline: dict[str, float]) -> float:
    """The job's deadline counts the task's run, not its wait in the provider's
    queue: `state.deadline` (its submit + PollDeadlineSeconds) moves on by the time
    the task waited PENDING, at most by the deadline again (the overall bound; a task
    still queued at `state.deadline` is given up and canceled)."""
    if task.status == "PENDING" or not {"provider_submit", "provider_start"} <= set(timeline):
        return state.deadline
    queued = timeline["provider_start"] - timeline["provider_submit"]
    return state.deadline + min(max(0.0, queued), ctx.settings.poll_deadline_seconds)


def provider_timeline(ctx: Context, task: TaskState) -> dict[str, float]:
    """The provider's timestamps, on the pipeline's clock."""
    times = {"provider_submit": task.submit_time, "provider_start": task.scheduled_time,
             "provider_end": task.end_time}
    return {name: ctx.settings.timebase.from_wall(at)
            for name, at in times.items() if at is not None}


def _usage(task: TaskState) -> dict[str, int] | None:
    usage = {"width": task.width, "height": task.height, "image_count": task.image_count}
    return {k: v for k, v in usage.items() if v is not None} or None


def _give_up(ctx: Context, client: Any, job_id: str, task: TaskState) -> dict[str, str]:
    message = (f"no result before the job's deadline "
               f"({ctx.settings.poll_deadline_seconds} s); provider status {task.status}")
    if task.status == "PENDING":
        try:
            client.cancel(task.task_id)
            message += "; the queued provider task was canceled (not billed)"
            ctx.jobs.update(job_id, provider_status=ProviderStatus.CANCELED)
        except ProviderError as exc:
            message += f"; cancel failed: {exc.code}"
    return {"code": "DeadlineExceeded", "message": message}


def _task_error(task: TaskState) -> dict[str, str]:
    if task.status == "FAILED":
        return {"code": task.code or "TaskFailed",
                "message": task.message or "the provider reported FAILED without a message"}
    if task.status == "CANCELED":
        return {"code": "TaskCanceled", "message": "the provider task was canceled"}
    return {"code": "TaskUnknown",
            "message": "the provider does not know this task (purged after 24 h, or never "
                       "created)"}
