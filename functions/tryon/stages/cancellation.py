"""Cancellation: a job the provider has not started ends CANCELED, with its
notification, at no cost (its place in the day's budget given back). A task still
queued at the provider is canceled there first; one it has started cannot be."""

from __future__ import annotations

from tryon.adapters.slots import QUEUE_ATTRIBUTES
from tryon.job_record import JobRecord, JobStatus, ProviderStatus
from tryon.models.registry import model_spec
from tryon.providers.errors import ProviderError
from tryon.stages.completion import end_job
from tryon.stages.context import Context


class CannotCancel(Exception):
    """The job has ended, or the provider is making its image."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def cancel_job(ctx: Context, job_id: str, by: str) -> JobRecord:
    """Cancel the job (`by`: who asked, for its error message); returns its record,
    CANCELED. Canceling a canceled job again is a no-op."""
    return cancel_once(ctx, job_id, by)[0]


def cancel_once(ctx: Context, job_id: str, by: str) -> tuple[JobRecord, bool]:
    """Cancel the job as cancel_job does; also whether this call ended it (False: it
    was canceled already, by this caller before or another at the same time). A batch
    counts only the looks its own cancel ended: a sweep and an API call may cancel the
    same batch at once."""
    job = ctx.jobs.get(job_id)
    if job is None:
        raise KeyError(job_id)
    ended_here = False
    if job.status in (JobStatus.RECEIVED, JobStatus.QUEUED):
        ended_here = end_job(ctx, job_id, JobStatus.CANCELED,
                             error=_canceled(by, "before its submit"),
                             expect=frozenset({JobStatus.RECEIVED, JobStatus.QUEUED}),
                             remove=QUEUE_ATTRIBUTES)
        if ended_here:
            ctx.budget.refund(job_id)
        job = ctx.jobs.get(job_id)  # admitted meanwhile: answered below
    elif (job.status == JobStatus.SUBMITTED and job.provider_task_id
          and job.provider_status in (None, ProviderStatus.PENDING)
          and model_spec(job.model).protocol == "task"):
        try:
            ctx.pacer.wait_turn("query")
            ctx.provider().tasks.cancel(job.provider_task_id)
        except ProviderError as exc:
            job = ctx.jobs.get(job_id)
            if job.status == JobStatus.CANCELED:
                return job, False  # another caller canceled it a moment ago
            raise CannotCancel("AlreadyRunning",
                               f"job {job_id}: the provider has started making the image and "
                               f"refused the cancel ({exc.code}); it ends on its own") from None
        # Before it ends: a task no longer pending gives its slot back at once.
        ctx.jobs.update(job_id, provider_status=ProviderStatus.CANCELED)
        ended_here = end_job(ctx, job_id, JobStatus.CANCELED,
                             error=_canceled(by, "while queued at the provider"),
                             expect=frozenset({JobStatus.SUBMITTED}))
        job = ctx.jobs.get(job_id)
    if job.status == JobStatus.CANCELED:
        return job, ended_here
    if job.ended:
        raise CannotCancel("AlreadyEnded", f"job {job_id} has already ended {job.status}")
    raise CannotCancel("AlreadyRunning",
                       f"job {job_id} is {job.status}: the provider is making (or about to "
                       "make) its image, which can no longer be canceled; it ends on its own")


def _canceled(by: str, when: str) -> dict[str, str]:
    return {"code": "Canceled", "message": f"canceled by {by} {when}; nothing was paid"}
