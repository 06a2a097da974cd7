"""Calling: the workflow's step for a call model (one synchronous request that
answers with the image). The job holds its admission slot for the length of
the call. Throttling and server errors are retried with full jitter; an answer
lost after sending is never repeated, because the image may have been made
and billed: the job ends CallOutcomeUnknown instead of paying twice."""

from __future__ import annotations

import logging
from typing import Any

from tryon.job_record import JobStatus, ProviderStatus, StepStatus, WorkflowState
from tryon.jobs import LookFailed
from tryon.models.registry import model_spec
from tryon.models.request_builder import build_request, request_summary
from tryon.providers.errors import ModelMissingError
from tryon.stages.context import Context
from tryon.stages.fallback import model_missing
from tryon.stages.hand_on import hand_on
from tryon.stages.input_transport import input_urls, uploads_to_provider
from tryon.stages.provider_calls import SubmitLost, call_provider
from tryon.stages.submit import LEASE_MARGIN_SECONDS

log = logging.getLogger(__name__)

CALL_ATTEMPTS = 3  # each may last call_timeout_seconds: the function's timeout allows 3
LOST_CALL = ("the image may have been made and billed, so it is not repeated. "
             "Upload the look again to make it anew.")


def call_model(ctx: Context, state: WorkflowState) -> WorkflowState:
    """Make the job's image with one synchronous call; the answer's `status` drives
    the state machine (SUCCEEDED, FAILED, or FALLBACK when the look moved on)."""
    job_id = state.job_id
    if not ctx.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.SUBMITTING,
                               increment={"submit_attempts": 1},
                               timeline={"submitting": ctx.clock()}):
        return _not_callable(ctx, state)
    job = ctx.jobs.get(job_id)
    spec = model_spec(job.model)
    # Each attempt may wait its turn (a 2/min model: up to a minute) before the call:
    # the lease covers that too, or the sweep would take a waiting call for a lost one.
    turn = f"submit:{spec.model_id}"
    wait = ctx.pacer.longest_wait(turn) * ctx.settings.timebase.scale
    ctx.slots.renew(spec.model_id, job_id, ctx.clock() + LEASE_MARGIN_SECONDS
                    + CALL_ATTEMPTS * (wait + ctx.settings.call_timeout_seconds))
    clients = ctx.provider()
    oss = uploads_to_provider(ctx)
    sent_at: list[float] = []

    def generate() -> Any:
        ctx.pacer.wait_turn(turn)
        sent_at.append(ctx.clock())
        return clients.generation.generate(request, oss_resolve=oss)

    try:
        request = build_request(spec, job, input_urls(ctx, clients.generation, job))
        ctx.jobs.update(job_id, provider_request=request_summary(request))
        image = call_provider(ctx, job_id, "call", generate, attempts=CALL_ATTEMPTS,
                              model=spec.model_id)
    except SubmitLost as exc:
        return _failed(state, "CallOutcomeUnknown",
                       f"the call to {spec.model_id} got no answer after it was sent ({exc}); "
                       + LOST_CALL)
    except ModelMissingError as exc:
        if model_missing(ctx, job, exc):
            return state.but(status=StepStatus.FALLBACK)
        return state.but(status=StepStatus.FAILED, error=ctx.jobs.get(job_id).error)
    except LookFailed as exc:
        return state.but(status=StepStatus.FAILED, error=exc.error)
    usage = {k: v for k, v in (("width", image.width), ("height", image.height)) if v}
    ctx.jobs.transition(job_id, expect=[JobStatus.SUBMITTING], to=JobStatus.SUBMITTED,
                        provider_status=ProviderStatus.SUCCEEDED,
                        provider_request_id=image.request_id, usage=usage,
                        # The call is the provider's work: from the answered attempt to
                        # its answer.
                        timeline={"submitted": sent_at[-1], "provider_start": sent_at[-1],
                                  "provider_end": ctx.clock()},
                        remove=["error"])
    # The call is over: the next queued job goes into its slot before the image is stored.
    hand_on(ctx, spec.model_id, job_id)
    return state.but(status=StepStatus.SUCCEEDED, image_url=image.image_url,
                     request_id=image.request_id, usage=usage)


def _not_callable(ctx: Context, state: WorkflowState) -> WorkflowState:
    """The job is not ADMITTED: an earlier attempt sent the call and its answer
    never came back (this step was retried after the function died), or the job
    already ended."""
    job = ctx.jobs.get(state.job_id)
    if job is not None and job.ended:
        return state.but(status=StepStatus.FAILED,
                         error=job.error or {"code": "JobEnded",
                                             "message": "the job had already ended"})
    return _failed(state, "CallOutcomeUnknown",
                   "an earlier attempt of this call was sent and never answered (its function "
                   "stopped); " + LOST_CALL)


def _failed(state: WorkflowState, code: str, message: str) -> WorkflowState:
    log.warning("call failed", extra={"code": code})
    return state.but(status=StepStatus.FAILED, error={"code": code, "message": message})
