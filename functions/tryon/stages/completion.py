"""Completion: store a result (before its URL expires) with its sidecar, record a
failure, and end a job exactly once — slot given back, one notification, and
the batch's summary when its last look ends."""

from __future__ import annotations

import json
from typing import Any

from tryon.adapters.result_download import ResultPolicy, download_result
from tryon.job_record import JobRecord, JobStatus, StepStatus, WorkflowState, sources_of
from tryon.jobs import (
    batch_complete,
    batch_summary,
    bounded_error,
    notification_for,
    price_of,
)
from tryon.stages.admission import release_slot
from tryon.stages.context import Context

DONE_CHECK_SECONDS = 60  # a job ended while its task may run: ask the provider this soon
FALLBACK_SUFFIX = "-fallback"  # the execution of a look resubmitted on the fallback model


def execution_name(job: JobRecord) -> str:
    """The job's workflow is named by its id, so a second start is a no-op; a look
    moved to the fallback model after its first workflow ran gets a second name."""
    return job.job_id + (FALLBACK_SUFFIX if job.requested_model else "")


def job_of_execution(name: str) -> str:
    return name.removesuffix(FALLBACK_SUFFIX)


def finalize(ctx: Context, state: WorkflowState) -> dict[str, Any]:
    """Copy the result into the results bucket (before its URL expires, and only once
    it is checked to be an image from an allowed host), write its sidecar, and notify."""
    job_id = state.job_id
    if state.usage:
        ctx.jobs.update(job_id, usage=state.usage)
    job = ctx.jobs.get(job_id)
    bucket = ctx.settings.results_bucket
    provenance = {"provider-task-id": state.task_id, "provider-request-id": state.request_id}
    policy = ResultPolicy(ctx.settings.result_hosts, ctx.settings.local_result_hosts)
    image = download_result(state.image_url, policy)
    result = ctx.storage.store_result(
        bucket, job.result_stem, image,
        metadata={"job-id": job_id, "model": job.model,
                  **{k: v for k, v in provenance.items() if v}},
    )
    sidecar_key = f"{job.result_stem}.json"
    ctx.storage.write_new(bucket, sidecar_key, json.dumps(
        _sidecar(job, result, ctx.clock()), indent=2, sort_keys=True).encode(),
        "application/json", metadata={"job-id": job_id})
    result["sidecar"] = f"s3://{bucket}/{sidecar_key}"
    end_job(ctx, job_id, JobStatus.SUCCEEDED, result=result)
    return {"job_id": job_id, "status": JobStatus.SUCCEEDED.value, "result": result}


# A step's status that ends the job other than FAILED.
ENDED_AS = {StepStatus.TIMED_OUT: JobStatus.TIMED_OUT,
            # A task canceled at the provider was called off by someone (the API's
            # cancel, which may lose this race to the poll that sees it): not a failure.
            StepStatus.CANCELED: JobStatus.CANCELED}


def record_failure(ctx: Context, state: WorkflowState) -> dict[str, Any]:
    """End a job from the failure path: a provider failure, a deadline, or a caught error."""
    if state.failure is not None:  # an error the state machine caught
        error = {"code": state.failure.get("Error", "States.TaskFailed"),
                 "message": _cause_message(state.failure.get("Cause"))}
        status = JobStatus.FAILED
    else:
        error = state.error or {"code": state.status.value if state.status else "Unknown",
                                "message": "the provider task did not succeed"}
        status = ENDED_AS.get(state.status, JobStatus.FAILED)
    error = bounded_error(error)
    end_job(ctx, state.job_id, status, error=error)
    return {"job_id": state.job_id, "status": status.value, "error": error}


def end_job(ctx: Context, job_id: str, status: JobStatus, *, error: dict | None = None,
            result: dict | None = None, expect: frozenset[JobStatus] | None = None,
            remove: tuple[str, ...] = ()) -> bool:
    """Move a job to its terminal status (once, and only from `expect`: by default
    every status that may move to it), give back its provider slot, and send exactly
    one notification; the last job of a batch also sends the batch's summary. Safe to
    repeat. True if this call ended it."""
    now = ctx.clock()
    ended = ctx.jobs.transition(job_id, expect=expect or sources_of(status), to=status,
                                error=bounded_error(error), result=result,
                                timeline={"finalized": now}, remove=remove)
    if ended:
        # Counted once per job, for the failure-rate and retired-model alarms.
        ctx.count(f"Jobs{status.value.title().replace('_', '')}")
        if error and error.get("code") == "ModelRetired":
            ctx.count("ModelRetired")
    job = ctx.jobs.get(job_id)
    if not job.ended:
        return False  # not in one of `expect` (a cancel that came too late)
    if job.model:
        if job.provider_pending:
            # Its task may still be running at the provider (e.g. past the deadline):
            # the sweep gives the slot back once the provider says it has ended.
            ctx.slots.renew(job.model, job_id, now + DONE_CHECK_SECONDS)
        else:
            release_slot(ctx, job.model, job_id)
    # Claim the notification first; give the claim back if publishing fails so a
    # retry of this step publishes instead.
    if ctx.jobs.update(job_id, notified_at=now, only_if_absent="notified_at"):
        try:
            ctx.notifier.publish(*notification_for(job))
        except Exception:
            ctx.jobs.update(job_id, remove=["notified_at"])
            raise
    if job.batch_id:
        _end_batch_job(ctx, job.batch_id, job, now)
    return ended


def execution_ended(ctx: Context, execution: str, status: str) -> None:
    """A job's workflow stopped (FAILED, TIMED_OUT, ABORTED): whatever happened in
    it, the job gets its terminal record, its notification and its slot back."""
    job_id = job_of_execution(execution)
    if ctx.jobs.get(job_id) is None:
        return
    end_job(ctx, job_id, JobStatus.FAILED, error={
        "code": f"Workflow{status.title().replace('_', '')}",
        "message": f"the job's workflow ended {status} before the job was recorded as "
                   "ended (see the execution's history)"})


def _end_batch_job(ctx: Context, batch_id: str, job: JobRecord, now: float) -> None:
    batch = ctx.batches.record_end(batch_id, job.job_id, job.status.value, job.model,
                                   job.batch_order)
    if not batch_complete(batch) or not ctx.batches.claim_notification(batch_id, now):
        return
    try:
        batch = ctx.batches.get(batch_id)  # its ends tallied
        # Each look's outcome where the batch is small enough to list them (its ids).
        listed = ctx.jobs.get_many(batch["job_ids"]) if "job_ids" in batch else None
        ctx.notifier.publish(*batch_summary(batch, listed))
    except Exception:
        ctx.batches.release_notification(batch_id)
        raise


def _sidecar(job: JobRecord, result: dict[str, Any], now: float) -> dict[str, Any]:
    """What a person or a script needs to know about a stored result."""
    return {
        "job_id": job.job_id,
        "look_id": job.look_id,
        "batch_id": job.batch_id,
        "source": job.source,
        "inputs": job.inputs,
        "normalized": job.normalized,
        "kept_garment": job.kept_garment,
        "model": job.model,
        "requested_model": job.requested_model or job.model,
        "fallback": job.fallback,
        "parameters": job.parameters,
        "instruction": job.instruction,
        "provider_request": job.provider_request,
        "attributes": job.attributes,
        "provider_task_id": job.provider_task_id,
        "provider_request_id": job.provider_request_id,
        "usage": job.usage,
        "price": price_of(job.model),
        "result": {k: result[k] for k in ("uri", "bytes", "content_type")},
        "timings": {**job.timeline, "finalized": now},
        "polls": job.polls,
    }


def _cause_message(cause: str | None) -> str:
    """Step Functions passes a Lambda error as JSON text in `Cause`."""
    if not cause:
        return "no details"
    try:
        parsed = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    return parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
