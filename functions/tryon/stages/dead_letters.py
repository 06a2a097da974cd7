"""Dead letters: a message the intake or submit function failed on at every
delivery (five, in the template) lands in the dead-letter queue. Whatever it was, its jobs end
FAILED with a record, the last error and one notification; nothing waits forever."""

from __future__ import annotations

import logging
from typing import Any

from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import Source, batch_id_for, bounded_error
from tryon.stages.completion import end_job
from tryon.stages.context import Context
from tryon.stages.intake import reject_upload, upload_job_ids

log = logging.getLogger(__name__)


def end_dead_job(ctx: Context, job_id: str, stage: str, last_error: dict | None) -> None:
    job = ctx.jobs.get(job_id)
    if job is None or job.ended:
        return
    end_job(ctx, job_id, JobStatus.FAILED, error=_dead_error(stage, last_error))


def end_dead_upload(ctx: Context, source: Source, last_error: dict | None) -> None:
    """Every job the upload was to make ends FAILED (one the intake never got to
    record is recorded now, so its batch completes too); an upload that cannot be
    expanded any more gets one record for the upload, as a rejected upload does."""
    error = _dead_error("intake", last_error)
    job_ids = upload_job_ids(ctx, source)
    if not job_ids:
        reject_upload(ctx, source, ctx.clock(), error["code"],
                      f"s3://{source.bucket}/{source.key}: {error['message']}")
        return
    batch_id = batch_id_for(source)
    batched = ctx.batches.get(batch_id) is not None
    for job_id in job_ids:
        ctx.jobs.create(JobRecord(job_id=job_id, status=JobStatus.RECEIVED,
                                  source=source.as_dict(), batch_id=batch_id if batched else None,
                                  timeline={"received": ctx.clock()}), ctx.clock())
        end_dead_job(ctx, job_id, "intake", last_error)


def _dead_error(stage: str, last_error: dict[str, Any] | None) -> dict[str, str]:
    last = (f"{last_error['code']}: {last_error['message']}" if last_error
            else "no error was recorded (the function may have timed out)")
    return bounded_error({
        "code": "IntakeFailed" if stage == "intake" else "SubmitFailed",
        "message": f"the {stage} function failed at every delivery of this job's message "
                   f"and gave up; the last error: {last}. Nothing more will be tried: "
                   "upload it again once the cause is fixed"})
