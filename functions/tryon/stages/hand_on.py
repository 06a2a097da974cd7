"""Hand-on: the job's task (or call) has ended, so its provider slot goes back and
the oldest waiting job of the model is submitted into it here and now, without a
hop through the submit queue, unless its submit's turn is seconds away (a
rate-bound model): waiting for it here would hold up the ended job's result."""

from __future__ import annotations

import logging

from tryon.models.registry import model_spec
from tryon.stages.admission import release_slot
from tryon.stages.context import Context
from tryon.stages.submit import submit_admitted

log = logging.getLogger(__name__)

HAND_ON_TURN_SECONDS = 1.5  # the longest wait for a submit's turn in the caller's stead


def hand_on(ctx: Context, model: str, job_id: str) -> None:
    """A job this cannot submit goes through the queue after all (a failed submit
    leaves its job ADMITTED, or SUBMITTING for the sweep to reconcile)."""
    spec = model_spec(model)
    for admitted in release_slot(ctx, model, job_id, send=False):
        if spec.protocol == "task" and not ctx.pacer.turn_soon(
                f"submit:{spec.model_id}", HAND_ON_TURN_SECONDS):
            log.info("hand-off sent through the submit queue: its turn is not near",
                     extra={"admitted_job": admitted})
            _through_the_queue(ctx, admitted)
            continue
        try:
            submit_admitted(ctx, admitted)
        except Exception as exc:  # the caller's own job must go on regardless
            log.warning("hand-off submit failed; sent through the submit queue",
                        extra={"admitted_job": admitted, "error": type(exc).__name__})
            _through_the_queue(ctx, admitted)


def _through_the_queue(ctx: Context, job_id: str) -> None:
    ctx.count("HandOffsQueued")
    try:
        ctx.admissions.send([job_id])
    except Exception:  # the sweep sends it once its slot's lease runs out
        log.exception("hand-off not sent", extra={"admitted_job": job_id})
