"""The sweep, the safety net behind every hand-off: slots whose lease ran out
are checked against the job and the provider, and waiting jobs a hand-off
missed are admitted; and the levels (gauges) the operations dashboard charts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from tryon.jobs import JobStatus, LookFailed
from tryon.models.registry import MODEL_IDS, model_spec
from tryon.providers.errors import ProviderError
from tryon.stages.admission import SUBMIT_LEASE_SECONDS, admit_queued, todays_budget
from tryon.stages.completion import DONE_CHECK_SECONDS, end_job
from tryon.stages.context import Context
from tryon.stages.submission import find_lost_task, record_submitted


def sweep(ctx: Context) -> dict[str, int]:
    """Reclaim slots whose lease ran out and admit waiting jobs a hand-off missed."""
    now, outcomes = ctx.clock(), Counter()
    for model in MODEL_IDS:
        for job_id, lease_until in ctx.store.slot_holders(model).items():
            if lease_until <= now:
                outcomes[_check_lease(ctx, model, job_id, now)] += 1
        outcomes["admitted"] += len(admit_queued(ctx, model))
    return dict(outcomes)


@dataclass(frozen=True)
class Gauges:
    """Levels rather than events, read once a minute: per model, the slots held and
    the jobs waiting QUEUED; today's images charged to the budget, and its limit."""

    slots_in_use: dict[str, int]
    queued_jobs: dict[str, int]
    budget_spent: int
    budget_limit: int


def gauges(ctx: Context) -> Gauges:
    """The pipeline's levels now (after a sweep, so reclaimed slots are not counted)."""
    day, limit = todays_budget(ctx, ctx.clock())
    return Gauges(
        slots_in_use={model: len(ctx.store.slot_holders(model)) for model in MODEL_IDS},
        queued_jobs={model: ctx.store.count_queued(model) for model in MODEL_IDS},
        budget_spent=ctx.store.budget_spent(day)["spent"],
        budget_limit=limit,
    )


def _check_lease(ctx: Context, model: str, job_id: str, now: float) -> str:
    job = ctx.store.get(job_id) or {}
    status = job.get("status")
    if status == JobStatus.ADMITTED:  # its hand-off message never arrived
        ctx.store.renew_slot(model, job_id, now + SUBMIT_LEASE_SECONDS)
        ctx.admissions.send([job_id])
        return "readmitted"
    if status == JobStatus.SUBMITTING:  # the function submitting it died mid-call
        if model_spec(model).protocol == "call":
            end_job(ctx, job_id, JobStatus.FAILED, error={
                "code": "CallOutcomeUnknown",
                "message": "the call was sent and its function stopped before the answer; "
                           "the image may have been made and billed, so it is not repeated. "
                           "Upload the look again to make it anew."})
            return "failed"
        return _recover_submit(ctx, job, now)
    if job.get("provider_task_id"):
        try:
            ctx.pacer.wait_turn("query")
            task = ctx.provider().tasks.query(job["provider_task_id"])
        except ProviderError:
            task = None
        if task is None or task.is_pending:
            ctx.store.renew_slot(model, job_id, now + DONE_CHECK_SECONDS)
            return "still-running"
        ctx.store.update(job_id, fields={"provider_status": task.status})
    ctx.store.release_slot(model, job_id)
    return "reclaimed"


def _recover_submit(ctx: Context, job: dict[str, Any], now: float) -> str:
    job_id, model = job["job_id"], job["model"]
    sent = ctx.settings.timebase.to_wall(job["timeline"].get("submitting", now))
    until = ctx.settings.timebase.to_wall(now)
    try:
        task_id = find_lost_task(ctx, ctx.provider().tasks, job, sent, until)
    except LookFailed as exc:
        end_job(ctx, job_id, JobStatus.FAILED, error=exc.error)
        return "failed"
    if task_id:
        record_submitted(ctx, job, task_id)
        return "adopted"
    if ctx.store.update(job_id, fields={"status": JobStatus.ADMITTED},
                        only_if_status=[JobStatus.SUBMITTING]):
        ctx.store.renew_slot(model, job_id, now + SUBMIT_LEASE_SECONDS)
        ctx.admissions.send([job_id])
    return "resubmitted"
