"""Submission: an admitted job goes to its model. A task model's job is
submitted here (inputs handed over, a kept garment cut out first, lost answers
reconciled with the provider's task list, never paid twice) and its polling
workflow started; a call model's job gets its workflow at once, whose call stage
makes the synchronous request."""

from __future__ import annotations

import logging
from typing import Any

from tryon.job_record import JobRecord, JobStatus, ProviderStatus, WorkflowState
from tryon.jobs import LookFailed
from tryon.models.registry import model_spec
from tryon.models.request_builder import build_request, request_summary
from tryon.providers.dashscope_tasks import PARSING_MODEL
from tryon.providers.errors import ModelMissingError
from tryon.stages.admission import requeue_ahead
from tryon.stages.completion import end_job, execution_name
from tryon.stages.context import Context
from tryon.stages.fallback import model_missing, skip_refused
from tryon.stages.input_transport import input_url, input_urls, uploads_to_provider
from tryon.stages.provider_calls import SubmitLost, SubmitRequeued, call_provider
from tryon.stages.waiting import next_wait, poll_plan

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 120  # past the job's deadline, before the sweep checks its slot
LOST_SUBMIT_ATTEMPTS = 2
LIST_SLACK_SECONDS = 2.0  # clock skew allowed between us and the provider's submit_time
RELIST_PAUSE_SECONDS = 2.0
KEPT_CLOTHES_TYPE = {"top": "upper", "bottom": "lower"}


def submit_admitted(ctx: Context, job_id: str) -> None:
    """Submit a job that holds a slot (from intake, or handed on by a release)."""
    job = ctx.jobs.get(job_id)
    if job and awaits_workflow(job):
        start_workflow(ctx, job)  # an earlier delivery died before this step
        return
    if job is None or job.status != JobStatus.ADMITTED:
        return  # a duplicate admission, or the job has moved on
    spec = model_spec(job.model)
    if skip_refused(ctx, job):
        return  # no doomed call
    if job.prepared_for != spec.input_rules.label:
        # Moved to another model: the intake function (which alone decodes uploads)
        # checks the inputs against its rules, then hands the job back here.
        ctx.preparations.send([job_id])
        return
    if spec.protocol == "call":
        start_workflow(ctx, job)  # the call stage moves it on, inside the workflow
        return
    if not ctx.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.SUBMITTING):
        return
    try:
        _submit_task(ctx, job)
    except SubmitRequeued:
        log.info("throttled submit: the job waits in the queue again", extra={"job_id": job_id})
    except ModelMissingError as exc:
        model_missing(ctx, job, exc)
    except LookFailed as exc:
        end_job(ctx, job_id, JobStatus.FAILED, error=exc.error)


def awaits_workflow(job: JobRecord) -> bool:
    """Submitted, but the workflow that polls its task was never started."""
    return job.status == JobStatus.SUBMITTED and not job.execution_arn


def resume(ctx: Context, job: JobRecord) -> bool:
    """The one recovery path for a job an earlier attempt left ADMITTED, or SUBMITTED
    without its workflow: it goes back through the submit queue (True), where
    submit_admitted picks it up where it stopped."""
    if job.status == JobStatus.ADMITTED or awaits_workflow(job):
        ctx.admissions.send([job.job_id])
        return True
    return False


def _submit_task(ctx: Context, job: JobRecord) -> None:
    job_id, spec = job.job_id, model_spec(job.model)
    client = ctx.provider().tasks
    urls = input_urls(ctx, client, job)
    oss = uploads_to_provider(ctx)
    if spec.family == "tryon" and job.keep:
        # An uploaded file serves only the model named when it was uploaded.
        person_url = (input_url(ctx, client, PARSING_MODEL, job_id, "person-parsing",
                                job.submit_inputs["person"]) if oss else urls["person"])
        urls[job.keep] = _kept_garment(ctx, client, job, person_url, oss)
    request = build_request(spec, job, urls)
    sent_at: list[float] = []  # wall time of each attempt, to find a task whose answer was lost

    def submit() -> Any:
        ctx.jobs.update(job_id, provider_request=request_summary(request),
                        increment={"submit_attempts": 1}, timeline={"submitting": ctx.clock()})
        ctx.pacer.wait_turn(f"submit:{spec.model_id}")
        sent_at.append(ctx.settings.timebase.wall())
        return client.submit(request, oss_resolve=oss)

    for _ in range(LOST_SUBMIT_ATTEMPTS):
        try:
            task_id = call_provider(ctx, job_id, "submit", submit, model=spec.model_id,
                                    requeue=lambda: requeue_ahead(ctx, job)).task_id
            break
        except SubmitLost:
            task_id = find_lost_task(ctx, client, job, sent_at[-1],
                                     ctx.settings.timebase.wall())
            if task_id:
                break
    else:
        raise LookFailed("SubmitOutcomeUnknown",
                         f"no answer to {LOST_SUBMIT_ATTEMPTS} submits, and no task of "
                         "theirs in the provider's task list; not repeated again so as "
                         "not to pay twice")
    record_submitted(ctx, job, task_id)


def record_submitted(ctx: Context, job: JobRecord, task_id: str) -> None:
    job_id, now = job.job_id, ctx.clock()
    ctx.task_owners.claim(task_id, job_id, now)
    # A task's deadline may move on by its wait in the provider's queue, up to the
    # deadline again (polling.run_deadline).
    ctx.slots.renew(job.model, job_id, now + 2 * ctx.settings.poll_deadline_seconds
                    + LEASE_MARGIN_SECONDS)
    ctx.jobs.transition(job_id, expect=[JobStatus.SUBMITTING], to=JobStatus.SUBMITTED,
                        provider_task_id=task_id, provider_status=ProviderStatus.PENDING,
                        timeline={"submitted": now}, remove=["error"])
    start_workflow(ctx, ctx.jobs.get(job_id))


def start_workflow(ctx: Context, job: JobRecord) -> None:
    """Start the job's execution: the wait loop for a task, the call stage for a call."""
    if model_spec(job.model).protocol == "call":
        state = WorkflowState(job_id=job.job_id, protocol="call", model=job.model)
    else:
        now = ctx.clock()
        submitted = job.timeline.get("submitted", now)
        deadline = submitted + ctx.settings.poll_deadline_seconds
        # Its first query is planned from its submit: it may wait in the provider's
        # queue (a lookahead slot), or have started at once.
        from_submit = poll_plan(ctx, job.model, since="submit")
        state = WorkflowState(
            job_id=job.job_id, protocol="task", task_id=job.provider_task_id,
            model=job.model, deadline=int(deadline), plan=poll_plan(ctx, job.model),
            plan_from_submit=from_submit, polls=job.polls,
            **next_wait(ctx, from_submit, now - submitted, 0, now=now, deadline=deadline))
    execution_arn = ctx.workflow.start(execution_name(job), state.to_event())
    ctx.jobs.update(job.job_id, execution_arn=execution_arn)


def find_lost_task(ctx: Context, client: Any, job: JobRecord, sent: float,
                   until: float) -> str | None:
    """A submit whose answer was lost may still have created (and be billing) a
    task: look for it among the account's tasks of that model submitted while
    the call was out, which no other job owns. One: it is this job's. None: the
    submit never landed, so submitting again is safe. Several: no way to tell."""
    job_id = job.job_id
    for pause in (0.0, RELIST_PAUSE_SECONDS):  # a new task may take a moment to be listed
        ctx.sleep(pause)
        tasks = call_provider(ctx, job_id, "list", lambda: client.recent_tasks(
            job.model, sent - LIST_SLACK_SECONDS, until + LIST_SLACK_SECONDS))
        candidates = [t.task_id for t in tasks if t.submit_time is not None
                      and sent - LIST_SLACK_SECONDS <= t.submit_time <= until
                      + LIST_SLACK_SECONDS
                      and ctx.task_owners.owner(t.task_id) in (None, job_id)]
        if len(candidates) == 1 and ctx.task_owners.claim(candidates[0], job_id, ctx.clock()):
            log.warning("lost submit answer: task found in the provider's list",
                        extra={"provider_task_id": candidates[0]})
            return candidates[0]
        if len(candidates) > 1:
            raise LookFailed("SubmitOutcomeUnknown",
                             f"no answer to the submit, and {len(candidates)} tasks of the "
                             "account were created meanwhile that no job owns; none can be "
                             "told to be this job's, so none is adopted and nothing is "
                             "resubmitted (no double payment)")
    return None


def _kept_garment(ctx: Context, client: Any, job: JobRecord, person_url: str,
                  oss: bool) -> str:
    """Keep the person's own top or bottom (try-on models): the parsing model cuts it
    out of the person photo, and its crop goes to try-on as that garment."""
    keep = job.keep
    parsed = call_provider(ctx, job.job_id, "parsing", lambda: client.parse_garment(
        person_url, KEPT_CLOTHES_TYPE[keep], oss_resolve=oss))
    if parsed is None:
        person = job.inputs["person"].split("/", 3)[-1]
        raise LookFailed("KeptGarmentNotFound",
                         f"{person}: no {keep} garment found on the person image "
                         f"to keep; give a {keep} instead of keep: {keep!r}")
    ctx.jobs.update(job.job_id, kept_garment={"slot": keep, "bbox": parsed.bbox})
    return parsed.crop_url
