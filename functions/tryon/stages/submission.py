"""Submission: an admitted job goes to its model. A task model's job is
submitted here (inputs handed over, lost answers reconciled, never paid twice)
and its polling workflow started; a call model's job gets its workflow at once,
whose call stage makes the synchronous request. A model the provider refuses as
missing or retired moves the look to the fallback model, once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from tryon.jobs import JobStatus, LookFailed, bounded_error
from tryon.models.registry import ModelSpec, model_spec, retired_message
from tryon.models.request_builder import build_request, request_summary
from tryon.pacing import PacingTimeout
from tryon.providers.dashscope_tasks import PARSING_MODEL, TaskClient
from tryon.providers.errors import ModelMissingError, ProviderError
from tryon.providers.http import DashScopeHttp
from tryon.stages.admission import admit_or_queue, release_slot
from tryon.stages.completion import end_job, execution_name
from tryon.stages.context import Context
from tryon.stages.waiting import next_wait, poll_plan

log = logging.getLogger(__name__)

PROVIDER_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 8.0
LEASE_MARGIN_SECONDS = 120  # past the job's deadline, before the sweep checks its slot
LOST_SUBMIT_ATTEMPTS = 2
LIST_SLACK_SECONDS = 2.0  # clock skew allowed between us and the provider's submit_time
RELIST_PAUSE_SECONDS = 2.0
# A model the provider refused as missing goes straight to the fallback for this long.
RETIRED_MEMORY_SECONDS = 6 * 3600
KEPT_CLOTHES_TYPE = {"top": "upper", "bottom": "lower"}
T = TypeVar("T")


class SubmitDeferred(Exception):
    """The provider stayed busy: nothing was created, the job keeps its slot and is
    tried again later (SQS redelivers a submit; the state machine retries a call)."""


class SubmitLost(Exception):
    """A submit got no answer after it was sent: a task may exist (and be billed)."""


def hand_on(ctx: Context, model: str, job_id: str) -> None:
    """The job's task (or call) has ended: give its slot back and submit the oldest
    waiting job of the model into it here and now, without a hop through the submit
    queue. A job this cannot submit goes through the queue after all (a failed submit
    leaves its job ADMITTED, or SUBMITTING for the sweep to reconcile)."""
    for admitted in release_slot(ctx, model, job_id, send=False):
        try:
            submit_admitted(ctx, admitted)
        except Exception as exc:  # the caller's own job must go on regardless
            log.warning("hand-off submit failed; sent through the submit queue",
                        extra={"admitted_job": admitted, "error": type(exc).__name__})
            ctx.count("HandOffsQueued")
            try:
                ctx.admissions.send([admitted])
            except Exception:  # the sweep sends it once its slot's lease runs out
                log.exception("hand-off not sent", extra={"admitted_job": admitted})


def submit_admitted(ctx: Context, job_id: str) -> None:
    """Submit a job that holds a slot (from intake, or handed on by a release)."""
    job = ctx.store.get(job_id)
    if job and job["status"] == JobStatus.SUBMITTED and not job.get("execution_arn"):
        start_workflow(ctx, job)  # an earlier delivery died before this step
        return
    if job is None or job["status"] != JobStatus.ADMITTED:
        return  # a duplicate admission, or the job has moved on
    spec = model_spec(job["model"])
    refused = [m for m in _models_used(spec, job) if ctx.store.retired_until(m) > ctx.clock()]
    if refused and _switch_to_fallback(ctx, job, f"{refused[0]}: refused as missing by the "
                                                 "provider lately"):
        return  # no doomed call
    if job.get("prepared_for") != spec.input_rules.label:
        # Moved to another model: the intake function (which alone decodes uploads)
        # checks the inputs against its rules, then hands the job back here.
        ctx.preparations.send([job_id])
        return
    if spec.protocol == "call":
        start_workflow(ctx, job)  # the call stage moves it on, inside the workflow
        return
    if not ctx.store.update(job_id, fields={"status": JobStatus.SUBMITTING},
                            only_if_status=[JobStatus.ADMITTED]):
        return
    try:
        _submit_task(ctx, job)
    except ModelMissingError as exc:
        model_missing(ctx, job, exc)
    except LookFailed as exc:
        end_job(ctx, job_id, JobStatus.FAILED, error=exc.error)


def _models_used(spec: ModelSpec, job: dict[str, Any]) -> list[str]:
    """The models a look's submit calls: its own, and the parsing model for a garment
    a try-on look keeps."""
    return [spec.model_id, *([PARSING_MODEL] if spec.family == "tryon" and job.get("keep")
                             else [])]


def _submit_task(ctx: Context, job: dict[str, Any]) -> None:
    job_id, spec = job["job_id"], model_spec(job["model"])
    client = ctx.provider().tasks
    urls = input_urls(ctx, client, job)
    oss = ctx.settings.input_transport == "provider-upload"
    if spec.family == "tryon" and job.get("keep"):
        # An uploaded file serves only the model named when it was uploaded.
        person_url = (_input_url(ctx, client, PARSING_MODEL, job_id, "person-parsing",
                                 job["submit_inputs"]["person"]) if oss else urls["person"])
        urls[job["keep"]] = _kept_garment(ctx, client, job, person_url, oss)
    request = build_request(spec, job, urls)
    sent_at: list[float] = []  # wall time of each attempt, to find a task whose answer was lost

    def submit() -> Any:
        ctx.store.update(job_id, fields={"provider_request": request_summary(request)},
                         increment={"submit_attempts": 1}, timeline={"submitting": ctx.clock()})
        ctx.pacer.wait_turn(f"submit:{spec.model_id}")
        sent_at.append(time.time())
        return client.submit(request, oss_resolve=oss)

    for _ in range(LOST_SUBMIT_ATTEMPTS):
        try:
            task_id = call_provider(ctx, job_id, "submit", submit).task_id
            break
        except SubmitLost:
            task_id = find_lost_task(ctx, client, job, sent_at[-1], time.time())
            if task_id:
                break
    else:
        raise LookFailed("SubmitOutcomeUnknown",
                         f"no answer to {LOST_SUBMIT_ATTEMPTS} submits, and no task of "
                         "theirs in the provider's task list; not repeated again so as "
                         "not to pay twice")
    record_submitted(ctx, job, task_id)


def record_submitted(ctx: Context, job: dict[str, Any], task_id: str) -> None:
    job_id, now = job["job_id"], ctx.clock()
    ctx.store.claim_task(task_id, job_id, now)
    ctx.store.renew_slot(job["model"], job_id, now + ctx.settings.poll_deadline_seconds
                         + LEASE_MARGIN_SECONDS)
    ctx.store.update(
        job_id,
        fields={"status": JobStatus.SUBMITTED, "provider_task_id": task_id,
                "provider_status": "PENDING"},
        timeline={"submitted": now},
        remove=["error"],
        only_if_status=[JobStatus.SUBMITTING],
    )
    start_workflow(ctx, ctx.store.get(job_id))


def start_workflow(ctx: Context, job: dict[str, Any]) -> None:
    """Start the job's execution: the wait loop for a task, the call stage for a call."""
    model = job["model"]
    if model_spec(model).protocol == "call":
        payload: dict[str, Any] = {"job_id": job["job_id"], "model": model, "protocol": "call"}
    else:
        now = ctx.clock()
        submitted = job["timeline"].get("submitted", now)
        deadline = submitted + ctx.settings.poll_deadline_seconds
        plan = poll_plan(ctx, model)
        payload = {
            "job_id": job["job_id"],
            "protocol": "task",
            "task_id": job["provider_task_id"],
            "model": model,
            "deadline": int(deadline),
            "plan": plan,
            # The task started when it was submitted: this job holds a provider slot.
            **next_wait(ctx, plan, now - submitted, 0, now=now, deadline=deadline),
            "polls": job.get("polls", 0),
        }
    execution_arn = ctx.workflow.start(execution_name(job), payload)
    ctx.store.update(job["job_id"], fields={"execution_arn": execution_arn})


def find_lost_task(ctx: Context, client: TaskClient, job: dict[str, Any], sent: float,
                   until: float) -> str | None:
    """A submit whose answer was lost may still have created (and be billing) a
    task: look for it among the account's tasks of that model submitted while
    the call was out, which no other job owns. One: it is this job's. None: the
    submit never landed, so submitting again is safe. Several: no way to tell."""
    job_id = job["job_id"]
    for pause in (0.0, RELIST_PAUSE_SECONDS):  # a new task may take a moment to be listed
        ctx.sleep(pause)
        tasks = call_provider(ctx, job_id, "list", lambda: client.recent_tasks(
            job["model"], sent - LIST_SLACK_SECONDS, until + LIST_SLACK_SECONDS))
        candidates = [t.task_id for t in tasks if t.submit_time is not None
                      and sent - LIST_SLACK_SECONDS <= t.submit_time <= until
                      + LIST_SLACK_SECONDS
                      and ctx.store.task_owner(t.task_id) in (None, job_id)]
        if len(candidates) == 1 and ctx.store.claim_task(candidates[0], job_id, ctx.clock()):
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


def input_urls(ctx: Context, client: DashScopeHttp, job: dict[str, Any]) -> dict[str, str]:
    return {role: _input_url(ctx, client, job["model"], job["job_id"], role, ref)
            for role, ref in job["submit_inputs"].items()}


def _input_url(ctx: Context, client: DashScopeHttp, model: str, job_id: str, role: str,
               ref: dict[str, str]) -> str:
    """How the provider gets an input: a presigned S3 URL (default) or the
    provider's own temporary upload (`oss://`), per the InputTransport setting."""
    if ctx.settings.input_transport == "provider-upload":
        data = ctx.storage.read(ref["bucket"], ref["key"], ref.get("version_id"))
        filename = f"{job_id}-{role}.{ref['extension']}"
        return call_provider(ctx, job_id, "upload", lambda: client.upload(
            model, filename, data, ref["content_type"]))
    return ctx.storage.presign_get(ref["bucket"], ref["key"],
                                   ctx.settings.input_url_ttl_seconds, ref.get("version_id"))


def _kept_garment(ctx: Context, client: TaskClient, job: dict[str, Any], person_url: str,
                  oss: bool) -> str:
    """Keep the person's own top or bottom (try-on models): the parsing model cuts it
    out of the person photo, and its crop goes to try-on as that garment."""
    keep = job["keep"]
    parsed = call_provider(ctx, job["job_id"], "parsing", lambda: client.parse_garment(
        person_url, KEPT_CLOTHES_TYPE[keep], oss_resolve=oss))
    if parsed is None:
        person = job["inputs"]["person"].split("/", 3)[-1]
        raise LookFailed("KeptGarmentNotFound",
                         f"{person}: no {keep} garment found on the person image "
                         f"to keep; give a {keep} instead of keep: {keep!r}")
    ctx.store.update(job["job_id"], fields={"kept_garment": {"slot": keep,
                                                             "bbox": parsed.bbox}})
    return parsed.crop_url


def call_provider(ctx: Context, job_id: str, call: str, attempt: Callable[[], T],
                  attempts: int = PROVIDER_ATTEMPTS) -> T:
    """Bounded retries with full-jitter backoff for throttling and server errors.
    Raises SubmitLost (outcome unknown), ModelMissingError, LookFailed (permanent)
    or SubmitDeferred (still busy after every attempt)."""
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except ProviderError as exc:
            record_request(ctx, job_id, call, exc.request_id)
            if not exc.outcome_known:
                # The provider may have created (and will bill) work we cannot see.
                raise SubmitLost(str(exc)) from None
            if isinstance(exc, ModelMissingError):
                raise
            if not exc.retryable:
                raise LookFailed(exc.code, exc.message) from None
            log.warning("provider busy", extra={"call": call, "attempt": number,
                                                "code": exc.code})
            if number == attempts:
                _defer(ctx, job_id, exc.as_error())
            ctx.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS,
                                            BACKOFF_BASE_SECONDS * 2 ** (number - 1))))
        except PacingTimeout as exc:
            _defer(ctx, job_id, {"code": "PacingTimeout", "message": str(exc)})
    raise AssertionError("unreachable")


def _defer(ctx: Context, job_id: str, error: dict[str, str]) -> NoReturn:
    """Nothing was created: keep the slot, and let the job be tried again later."""
    ctx.store.update(job_id, fields={"status": JobStatus.ADMITTED,
                                     "error": bounded_error(error)})
    raise SubmitDeferred(f"job {job_id}: {error['code']}: {error['message']}")


def record_request(ctx: Context, job_id: str, call: str, request_id: str | None) -> None:
    if request_id:
        ctx.store.update(job_id, fields={f"last_{call}_request_id": request_id})


# --- retired models and the fallback ----------------------------------------------


def model_for_look(ctx: Context, model: str) -> tuple[str, str | None]:
    """The model a new look goes to, and the model it asked for when they differ:
    a model the provider refused lately goes straight to the fallback."""
    fallback = ctx.settings.fallback_model
    if fallback and fallback != model and ctx.store.retired_until(model) > ctx.clock():
        return fallback, model
    return model, None


def model_missing(ctx: Context, job: dict[str, Any], exc: ProviderError) -> bool:
    """The provider refused the job's model as missing or retired (nothing was
    created). The look moves to the fallback model once (True), or ends
    ModelRetired."""
    model, refused = job["model"], exc.model or job["model"]
    answer = f"{refused}: {exc.code}: {exc.message}"
    # Remember the model the provider refused: the look's own, or one it relies on
    # (the parsing model of a kept garment), so the others keep their calls.
    ctx.store.remember_retired(refused, ctx.clock() + RETIRED_MEMORY_SECONDS, exc.as_error())
    log.warning("model refused as missing", extra={"model": refused, "code": exc.code})
    if _switch_to_fallback(ctx, job, answer):
        return True
    requested = job.get("requested_model")
    end_job(ctx, job["job_id"], JobStatus.FAILED, error={
        "code": "ModelRetired",
        "message": retired_message(requested or refused, answer, model if requested else None)})
    return False


def _switch_to_fallback(ctx: Context, job: dict[str, Any], answer: str) -> bool:
    fallback = ctx.settings.fallback_model
    if not fallback or fallback == job["model"] or job.get("requested_model"):
        return False  # no fallback, or this look is on it already: once only
    job_id, model = job["job_id"], job["model"]
    fields = {"model": fallback, "requested_model": model,
              "fallback": {"from": model, "to": fallback, "reason": answer,
                           "at": ctx.clock()}}
    # The refused request created nothing: the slot goes back (and on), the job
    # takes a slot of the fallback model, and is prepared and submitted anew.
    if admit_or_queue(ctx, job_id, fallback, fields=fields,
                      from_statuses=[JobStatus.SUBMITTING, JobStatus.ADMITTED]):
        ctx.admissions.send([job_id])
    release_slot(ctx, model, job_id)
    return True

