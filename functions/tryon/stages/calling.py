"""Calling: the workflow's step for a call model (one synchronous request that
answers with the image). The job holds its admission slot for the length of
the call. Throttling and server errors are retried with full jitter; an answer
lost after sending is never repeated, because the image may have been made
and billed: the job ends CallOutcomeUnknown instead of paying twice."""

from __future__ import annotations

import logging
from typing import Any

from tryon.jobs import TERMINAL_STATUSES, JobStatus, LookFailed
from tryon.models.registry import model_spec
from tryon.models.request_builder import build_request, request_summary
from tryon.providers.errors import ModelMissingError
from tryon.stages.context import Context
from tryon.stages.submission import (
    LEASE_MARGIN_SECONDS,
    SubmitLost,
    call_provider,
    hand_on,
    input_urls,
    model_missing,
)

log = logging.getLogger(__name__)

CALL_ATTEMPTS = 3  # each may last call_timeout_seconds: the function's timeout allows 3


def call_model(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    """Make the job's image with one synchronous call; the answer's `status` drives
    the state machine (SUCCEEDED, FAILED, or FALLBACK when the look moved on)."""
    job_id = state["job_id"]
    if not ctx.store.update(job_id, fields={"status": JobStatus.SUBMITTING},
                            increment={"submit_attempts": 1},
                            timeline={"submitting": ctx.clock()},
                            only_if_status=[JobStatus.ADMITTED]):
        return _not_callable(ctx, state)
    job = ctx.store.get(job_id)
    spec = model_spec(job["model"])
    ctx.store.renew_slot(spec.model_id, job_id, ctx.clock() + LEASE_MARGIN_SECONDS
                         + CALL_ATTEMPTS * ctx.settings.call_timeout_seconds)
    clients = ctx.provider()
    oss = ctx.settings.input_transport == "provider-upload"
    sent_at: list[float] = []

    def generate() -> Any:
        ctx.pacer.wait_turn(f"submit:{spec.model_id}")
        sent_at.append(ctx.clock())
        return clients.generation.generate(request, oss_resolve=oss)

    try:
        request = build_request(spec, job, input_urls(ctx, clients.generation, job))
        ctx.store.update(job_id, fields={"provider_request": request_summary(request)})
        image = call_provider(ctx, job_id, "call", generate, attempts=CALL_ATTEMPTS)
    except SubmitLost as exc:
        return _failed(state, "CallOutcomeUnknown",
                       f"the call to {spec.model_id} got no answer after it was sent ({exc}); "
                       "the image may have been made and billed, so it is not repeated. "
                       "Upload the look again to make it anew.")
    except ModelMissingError as exc:
        if model_missing(ctx, job, exc):
            return {**state, "status": "FALLBACK"}
        return {**state, "status": JobStatus.FAILED.value, "error": ctx.store.get(job_id)["error"]}
    except LookFailed as exc:
        return {**state, "status": JobStatus.FAILED.value, "error": exc.error}
    usage = {k: v for k, v in (("width", image.width), ("height", image.height)) if v}
    answered = ctx.clock()
    ctx.store.update(job_id, fields={"status": JobStatus.SUBMITTED, "provider_status": "SUCCEEDED",
                                     "provider_request_id": image.request_id, "usage": usage},
                     # The call is the provider's work: from the answered attempt to its answer.
                     timeline={"submitted": sent_at[-1], "provider_start": sent_at[-1],
                               "provider_end": answered},
                     remove=["error"], only_if_status=[JobStatus.SUBMITTING])
    # The call is over: the next queued job goes into its slot before the image is stored.
    hand_on(ctx, spec.model_id, job_id)
    return {**state, "status": "SUCCEEDED", "image_url": image.image_url,
            "request_id": image.request_id, "usage": usage}


def _not_callable(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    """The job is not ADMITTED: an earlier attempt sent the call and its answer
    never came back (this step was retried after the function died), or the job
    already ended."""
    job = ctx.store.get(state["job_id"]) or {}
    if job.get("status") in TERMINAL_STATUSES:
        return {**state, "status": JobStatus.FAILED.value,
                "error": job.get("error") or {"code": "JobEnded",
                                              "message": "the job had already ended"}}
    return _failed(state, "CallOutcomeUnknown",
                   "an earlier attempt of this call was sent and never answered (its function "
                   "stopped); the image may have been made and billed, so it is not repeated. "
                   "Upload the look again to make it anew.")


def _failed(state: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    log.warning("call failed", extra={"code": code})
    return {**state, "status": JobStatus.FAILED.value, "error": {"code": code,
                                                                  "message": message}}
