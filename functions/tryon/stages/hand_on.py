"""Hand-on: the job's task (or call) has ended, so its provider slot goes back and
the oldest waiting job of the model is submitted into it here and now, without a
hop through the submit queue."""

from __future__ import annotations

import logging

from tryon.stages.admission import release_slot
from tryon.stages.context import Context
from tryon.stages.submit import submit_admitted

log = logging.getLogger(__name__)


def hand_on(ctx: Context, model: str, job_id: str) -> None:
    """A job this cannot submit goes through the queue after all (a failed submit
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
