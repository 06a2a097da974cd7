"""Retired models and the fallback: a look whose model the provider refuses as
missing or retired moves, once, to FallbackModel (nothing was created, so nothing
is paid twice), and the refusal is remembered so later looks skip the doomed call."""

from __future__ import annotations

import logging

from tryon.job_record import JobRecord, JobStatus
from tryon.models.registry import ModelSpec, model_spec, retired_message
from tryon.providers.dashscope_tasks import PARSING_MODEL
from tryon.providers.errors import ProviderError
from tryon.stages.admission import admit_or_queue, release_slot
from tryon.stages.completion import end_job
from tryon.stages.context import Context

log = logging.getLogger(__name__)

# A model the provider refused as missing goes straight to the fallback for this long.
RETIRED_MEMORY_SECONDS = 6 * 3600


def model_for_look(ctx: Context, model: str) -> tuple[str, str | None]:
    """The model a new look goes to, and the model it asked for when they differ:
    a model the provider refused lately goes straight to the fallback."""
    fallback = ctx.settings.fallback_model
    if fallback and fallback != model and ctx.retired.until(model) > ctx.clock():
        return fallback, model
    return model, None


def models_used(spec: ModelSpec, job: JobRecord) -> list[str]:
    """The models a look's submit calls: its own, and the parsing model for a garment
    a try-on look keeps."""
    return [spec.model_id, *([PARSING_MODEL] if spec.family == "tryon" and job.keep else [])]


def skip_refused(ctx: Context, job: JobRecord) -> bool:
    """Move the look to the fallback before any call when a model it needs was
    refused lately (True: it moved)."""
    refused = [m for m in models_used(model_spec(job.model), job)
               if ctx.retired.until(m) > ctx.clock()]
    return bool(refused) and switch_to_fallback(
        ctx, job, f"{refused[0]}: refused as missing by the provider lately")


def model_missing(ctx: Context, job: JobRecord, exc: ProviderError) -> bool:
    """The provider refused the job's model as missing or retired (nothing was
    created). The look moves to the fallback model once (True), or ends
    ModelRetired."""
    refused = exc.model or job.model
    answer = f"{refused}: {exc.code}: {exc.message}"
    # Remember the model the provider refused: the look's own, or one it relies on
    # (the parsing model of a kept garment), so the others keep their calls.
    ctx.retired.remember(refused, ctx.clock() + RETIRED_MEMORY_SECONDS, exc.as_error())
    log.warning("model refused as missing", extra={"model": refused, "code": exc.code})
    if switch_to_fallback(ctx, job, answer):
        return True
    requested = job.requested_model
    end_job(ctx, job.job_id, JobStatus.FAILED, error={
        "code": "ModelRetired",
        "message": retired_message(requested or refused, answer,
                                   job.model if requested else None)})
    return False


def switch_to_fallback(ctx: Context, job: JobRecord, answer: str) -> bool:
    fallback = ctx.settings.fallback_model
    if not fallback or fallback == job.model or job.requested_model:
        return False  # no fallback, or this look is on it already: once only
    # The refused request created nothing: the slot goes back (and on), the job
    # takes a slot of the fallback model, and is prepared and submitted anew.
    if admit_or_queue(ctx, job.job_id, fallback,
                      expect=[JobStatus.SUBMITTING, JobStatus.ADMITTED],
                      priority=job.priority, owner=job.owner,
                      model=fallback, requested_model=job.model,
                      fallback={"from": job.model, "to": fallback, "reason": answer,
                                "at": ctx.clock()}):
        ctx.admissions.send([job.job_id])
    release_slot(ctx, job.model, job.job_id)
    return True
