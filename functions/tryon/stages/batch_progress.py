"""A batch's progress, as its owner (GET /v1/batches/{id}) and the operator (`tryon
jobs watch`) see it: counts by status, the images made and their price so far, the
estimated time to finish its open looks at its model's current pace, its cancel (if
asked) and the batches linked to it by a retry."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

from tryon.jobs import batch_jobs, batch_view, images_made, is_whole, price_of_images
from tryon.models.registry import model_spec
from tryon.stages.batch_steering import cancel_state
from tryon.stages.context import Context


def batch_progress(ctx: Context, batch: dict[str, Any], after: str | None = None
                   ) -> dict[str, Any]:
    """The batch's view (its jobs, or a page of them) with its `progress`."""
    jobs, next_page = batch_jobs(ctx.jobs, batch, after=after)
    view = batch_view(batch, jobs, next_page, after)
    made = images_made(batch, jobs if is_whole(after, next_page) else None)
    counts = view["counts"]
    open_looks = counts.get("open", counts["total"] - sum(
        counts.get(s, 0) for s in ("succeeded", "failed", "timed_out", "canceled")))
    # Its open looks' model (the listed page's most common one; a batch mostly has one).
    models = Counter(job.model for job in jobs if not job.ended and job.model)
    model = models.most_common(1)[0][0] if models else None
    view["progress"] = {
        "images_made": sum(made.values()), "price_so_far": price_of_images(made),
        "eta_seconds": finish_seconds(ctx, model, open_looks) if model else None,
        "pace_of": model}
    view["cancel"] = cancel_state(batch) if "cancel" in batch else None
    view["retry_of"], view["retries"] = batch.get("retry_of"), list(batch.get("retries") or ())
    return view


def finish_seconds(ctx: Context, model: str, looks: int) -> float:
    """How long `looks` take at the model's current pace: as many at once as it runs
    (its limits in force), each its recent mean generation time (the published mean
    until the stack has measured some). Other tenants' looks on the model are not
    counted: an estimate, not a promise."""
    recent = ctx.durations.recent(model)
    low, high = model_spec(model).generation_seconds
    mean = statistics.fmean(recent) if recent else (low + high) / 2
    running = max(1, ctx.capacity.of(model).limits.in_flight)
    return round(math.ceil(looks / running) * mean, 1)
