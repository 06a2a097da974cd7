"""Admission: at most a model's `in_flight` provider tasks (or calls) at once.
A job takes a slot or waits QUEUED; a slot given back is handed at once to the
oldest waiting jobs of that model (work-conserving), which reach the submit
function through the intake queue."""

from __future__ import annotations

from typing import Any

from tryon.jobs import TERMINAL_STATUSES, JobStatus
from tryon.stages.context import Context

# A slot taken for a submit is checked by the sweep after this long (longer
# than the submit function's timeout, so a live submit is never disturbed).
SUBMIT_LEASE_SECONDS = 300
QUEUE_ATTRIBUTES = ("queue", "queued_order")


def acquire_slot(ctx: Context, model: str, job_id: str) -> bool:
    return ctx.store.acquire_slot(model, job_id, ctx.clock() + SUBMIT_LEASE_SECONDS,
                                  ctx.settings.limits(model).in_flight)


def release_slot(ctx: Context, model: str, job_id: str) -> None:
    """Give the job's slot back and hand it on at once (a second release is a no-op)."""
    if ctx.store.release_slot(model, job_id):
        admit_queued(ctx, model)


def admit_or_queue(ctx: Context, job_id: str, model: str, *, fields: dict[str, Any],
                   from_statuses: list[str]) -> bool:
    """Move a job on from one of `from_statuses` (only one caller can): ADMITTED with
    a slot of `model` (True: the caller submits it), or QUEUED for one."""
    if acquire_slot(ctx, model, job_id):
        return ctx.store.update(job_id, fields={"status": JobStatus.ADMITTED, **fields},
                                timeline={"admitted": ctx.clock()}, only_if_status=from_statuses)
    now = ctx.clock()
    if ctx.store.update(job_id, fields={"status": JobStatus.QUEUED, **fields,
                                        **ctx.store.queue_entry(model, now, job_id)},
                        timeline={"queued": now}, only_if_status=from_statuses):
        admit_queued(ctx, model)  # a slot may have come free since we asked
    return False


def admit_queued(ctx: Context, model: str) -> list[str]:
    """Work-conserving hand-off: fill the model's free slots with its oldest
    waiting jobs, and pass them to the submit function."""
    admitted = []
    for job_id in ctx.store.queued_jobs(model, 2 * ctx.settings.limits(model).in_flight):
        if not acquire_slot(ctx, model, job_id):
            break  # no slot free
        if ctx.store.update(job_id, fields={"status": JobStatus.ADMITTED},
                            remove=QUEUE_ATTRIBUTES, timeline={"admitted": ctx.clock()},
                            only_if_status=[JobStatus.QUEUED]):
            admitted.append(job_id)
            continue
        # Already admitted by another hand-off (the index lags): that one holds the
        # slot under the same job id. Only a job that went away must give it back.
        job = ctx.store.get(job_id)
        if job is None or job["status"] in TERMINAL_STATUSES:
            ctx.store.release_slot(model, job_id)
    if admitted:
        ctx.admissions.send(admitted)
    return admitted
