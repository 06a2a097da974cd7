"""Reading the provider's limits (its limits API) for every model, at the sweep: at
start (nothing read yet) and then about hourly; a failed read is tried again
after RETRY_SECONDS. A read that fails keeps the last known (or default) limits,
and is said once (a log line and the ProviderLimitsUnreadable metric) until a read
succeeds again. Work never waits for it."""

from __future__ import annotations

import logging

from tryon.capacity import provider_limits
from tryon.models.registry import MODEL_IDS
from tryon.providers.errors import ProviderError
from tryon.stages.context import Context

log = logging.getLogger(__name__)

READ_EVERY_SECONDS = 3600.0
RETRY_SECONDS = 600.0


def refresh(ctx: Context, *, force: bool = False) -> dict[str, str]:
    """Read the limits of each model due (every model with `force`); model -> "read",
    "unlisted" (the provider gives it none: the defaults stay) or "failed"."""
    now = ctx.settings.timebase.wall()
    notes = ctx.limit_notes.read()
    outcomes: dict[str, str] = {}
    for model in MODEL_IDS:
        note = notes.get(model, {})
        due = (float(note.get("failed_at", 0)) + RETRY_SECONDS if "read_error" in note
               else float(note.get("read_at", 0)) + READ_EVERY_SECONDS)
        if force or due <= now:
            outcomes[model] = _read(ctx, model, note.get("limits"), now)
    if outcomes:
        ctx.capacity.forget()
    return outcomes


def _read(ctx: Context, model: str, before: dict | None, now: float) -> str:
    try:
        answer = ctx.provider().limits.read(model)
    except ProviderError as exc:
        if ctx.limit_notes.record_failure(model, exc.as_error(), now):
            log.warning("the provider's limits could not be read: the last known (or "
                        "default) limits stay in force",
                        extra={"model": model, "code": exc.code, "status": exc.status})
            ctx.count("ProviderLimitsUnreadable")
        return "failed"
    ctx.limit_notes.record_read(model, answer, now)
    if (answer or {}) != (before or {}):
        limits = provider_limits(answer, model) if answer else None
        log.info("provider limits read", extra={
            "model": model, "limits": limits.describe() if limits else "none listed"})
    return "read" if answer else "unlisted"
