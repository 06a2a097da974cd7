"""The sweep, the safety net behind every hand-off: slots whose lease ran out
are checked against the job and the provider, and waiting jobs a hand-off
missed are admitted; and the levels (gauges) the operations dashboard charts."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from tryon.adapters.slots import BUCKET_TENANT
from tryon.job_record import JobRecord, JobStatus, ProviderStatus
from tryon.jobs import LookFailed
from tryon.models.registry import MODEL_IDS, model_spec
from tryon.providers.errors import ProviderError
from tryon.stages.admission import SUBMIT_LEASE_SECONDS, admit_queued, todays_budget
from tryon.stages.batch_steering import go_on_canceling
from tryon.stages.calling import LOST_CALL
from tryon.stages.completion import DONE_CHECK_SECONDS, end_job
from tryon.stages.context import Context
from tryon.stages.submit import find_lost_task, record_submitted, resume

CANCEL_SECONDS = 20  # of a sweep's turn, for batches still being canceled
BUCKET_GAUGE_NAME = "(bucket)"  # the bucket's uploads, as a tenant (no integration's name)


def sweep(ctx: Context) -> dict[str, int]:
    """Reclaim slots whose lease ran out and admit waiting jobs a hand-off missed."""
    now, outcomes = ctx.clock(), Counter()
    # First the cancels of batches (their queued looks must not be admitted below).
    deadline = time.monotonic() + CANCEL_SECONDS
    for batch_id in ctx.batches.canceling():
        batch = ctx.batches.record(batch_id)
        if batch and "cancel" in batch:
            outcomes["batch_looks_canceled"] += go_on_canceling(ctx, batch, deadline)[
                "canceled"] - sum((batch["cancel"].get("canceled") or {}).values())
    for model in MODEL_IDS:
        for job_id, lease_until in ctx.slots.holders(model).items():
            if lease_until <= now:
                outcomes[_check_lease(ctx, model, job_id, now)] += 1
        outcomes["admitted"] += len(admit_queued(ctx, model))
    return dict(outcomes)


@dataclass(frozen=True)
class Gauges:
    """Levels rather than events, read once a minute: per model, the slots held, the
    slots it may hold and where its limits come from, and the jobs waiting QUEUED;
    today's images charged to the budget, and its limit."""

    slots_in_use: dict[str, int]
    slot_limits: dict[str, int]  # the slots admission may fill (tryon.capacity)
    limit_sources: dict[str, str]  # where each model's limits come from
    queued_jobs: dict[str, int]
    # model -> integration -> jobs waiting (the bucket's uploads as BUCKET_GAUGE_NAME):
    # every tenant that ever waited for the model, 0 if none waits now.
    queued_by_integration: dict[str, dict[str, int]]
    budget_spent: int
    budget_limit: int


def gauges(ctx: Context) -> Gauges:
    """The pipeline's levels now (after a sweep, so reclaimed slots are not counted)."""
    day, limit = todays_budget(ctx, ctx.clock())
    capacity = ctx.capacity.all()
    waiting = {model: ctx.queue.waiting(model) for model in MODEL_IDS}
    return Gauges(
        slots_in_use={model: len(ctx.slots.holders(model)) for model in MODEL_IDS},
        slot_limits={model: capacity[model].slots for model in MODEL_IDS},
        limit_sources={model: capacity[model].source for model in MODEL_IDS},
        queued_jobs={model: sum(by_tenant.values()) for model, by_tenant in waiting.items()},
        queued_by_integration={model: {BUCKET_GAUGE_NAME if tenant == BUCKET_TENANT else tenant: n
                                       for tenant, n in sorted(by_tenant.items())}
                               for model, by_tenant in waiting.items() if by_tenant},
        budget_spent=ctx.budget.spent(day)["spent"],
        budget_limit=limit,
    )


def _check_lease(ctx: Context, model: str, job_id: str, now: float) -> str:
    job = ctx.jobs.get(job_id)
    if job is not None and resume(ctx, job):  # its hand-off, or its workflow, never came
        ctx.slots.renew(model, job_id, now + SUBMIT_LEASE_SECONDS)
        return "readmitted"
    if job is not None and job.status == JobStatus.SUBMITTING:
        # The function submitting it died mid-call.
        if model_spec(model).protocol == "call":
            end_job(ctx, job_id, JobStatus.FAILED, error={
                "code": "CallOutcomeUnknown",
                "message": "the call was sent and its function stopped before the answer; "
                           + LOST_CALL})
            return "failed"
        return _recover_submit(ctx, job, now)
    if job is not None and job.provider_task_id:
        try:
            ctx.pacer.wait_turn("query")
            task = ctx.provider().tasks.query(job.provider_task_id)
        except ProviderError:
            task = None
        if task is None or task.is_pending:
            ctx.slots.renew(model, job_id, now + DONE_CHECK_SECONDS)
            return "still-running"
        ctx.jobs.update(job_id, provider_status=ProviderStatus(task.status))
    ctx.slots.release(model, job_id)
    return "reclaimed"


def _recover_submit(ctx: Context, job: JobRecord, now: float) -> str:
    job_id, model = job.job_id, job.model
    sent = ctx.settings.timebase.to_wall(job.timeline.get("submitting", now))
    until = ctx.settings.timebase.to_wall(now)
    try:
        task_id = find_lost_task(ctx, ctx.provider().tasks, job, sent, until)
    except LookFailed as exc:
        end_job(ctx, job_id, JobStatus.FAILED, error=exc.error)
        return "failed"
    if task_id:
        record_submitted(ctx, job, task_id)
        return "adopted"
    if ctx.jobs.transition(job_id, expect=[JobStatus.SUBMITTING], to=JobStatus.ADMITTED):
        ctx.slots.renew(model, job_id, now + SUBMIT_LEASE_SECONDS)
        ctx.admissions.send([job_id])
    return "resubmitted"
