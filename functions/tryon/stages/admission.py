"""Admission: at most a model's slots (tryon.capacity: its running limit, plus the
lookahead the provider queues for a task model) at once, and at most the day's
image budget. A job takes its place in the budget and a
slot, or waits QUEUED; a slot given back is handed at once to the oldest waiting
jobs of that model (work-conserving): submitted at once by the function that
gave it back when it holds the provider key (stages.hand_on), through the
submit queue otherwise. Waiting jobs are admitted in their turn: interactive before
batch, tenants taking turns within a priority (tryon.adapters.slots). Jobs waiting
for the budget start when the day turns or the budget is raised (the sweep admits
them within a minute)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tryon.adapters.slots import (
    ADMITTED_REMOVES,
    BUCKET_TENANT,
    QUEUE_PK,
    UNKNOWN_TENANT,
    parse_order,
    queue_entry,
    tenant_of,
)
from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import budget_notification, utc_day
from tryon.stages.context import Context

log = logging.getLogger(__name__)

# A slot taken for a submit is checked by the sweep after this long (longer
# than the submit function's timeout, so a live submit is never disturbed).
SUBMIT_LEASE_SECONDS = 300


# How far admission looks past the head of a model's queue for a tenant not at its cap.
MAX_SCAN = 1000


def acquire_slot(ctx: Context, model: str, job_id: str, owner: str | None = None) -> bool:
    return ctx.slots.acquire(model, job_id, ctx.clock() + SUBMIT_LEASE_SECONDS,
                             ctx.capacity.of(model).slots, tenant=owner)


def settings_of(ctx: Context, owner: str | None) -> dict[str, Any]:
    """What the operator set for the job's integration (none for the bucket's uploads)."""
    return ctx.integrations.settings(owner) if owner else {}


def at_cap(ctx: Context, model: str, owner: str | None, settings: dict[str, Any]) -> bool:
    """The integration holds as many of the model's slots as the operator lets it
    (`tryon keys set --max-in-flight`). Read, then taken: two functions admitting its
    looks at the same instant may pass it by one, until one of them ends."""
    cap = settings.get("max_in_flight")
    return cap is not None and ctx.slots.in_flight(model, owner) >= int(cap)


def todays_budget(ctx: Context, now: float) -> tuple[str, int]:
    """The UTC day of `now` and its image budget (the operator's override, if set)."""
    limit = ctx.budget.override()
    return utc_day(now), ctx.settings.daily_image_budget if limit is None else limit


def charge_quota(ctx: Context, who: Any, looks: int) -> tuple[str, str | None]:
    """Count `looks` images against the integration's quota for the day (the budget's
    day: the pipeline's clock), all or none: the day, and None when they fit, else why
    not (for its refusal). `who`: a tryon.adapters.integrations.Integration."""
    now = ctx.clock()
    (day, budget), integrations = todays_budget(ctx, now), ctx.integrations
    quota = who.quota(budget)
    if integrations.charge_quota(who.name, day, looks, quota, now):
        return day, None
    return day, _quota_refusal(who, looks, quota, budget, day,
                               integrations.quota_used(who.name, day))


def quota_room(ctx: Context, who: Any, looks: int) -> str | None:
    """charge_quota's answer without counting anything: None when `looks` fit today."""
    day, budget = todays_budget(ctx, ctx.clock())
    quota, used = who.quota(budget), ctx.integrations.quota_used(who.name, day)
    return None if used + looks <= quota else _quota_refusal(who, looks, quota, budget, day,
                                                             used)


def _quota_refusal(who: Any, looks: int, quota: int, budget: int, day: str, used: int) -> str:
    of = (f" (its share {who.budget_share:g} of the stack's {budget} a day)"
          if quota < who.daily_quota else "")
    return (f"{looks} more images would pass this integration's quota of {quota} a day{of} "
            f"({used} used on {day}, UTC); send fewer looks, wait for the next UTC day, or "
            "ask the operator to raise the quota")


def within_budget(ctx: Context, job_id: str) -> bool:
    """Take the job's place in today's image budget (UTC), once per job. The first
    refusal of a day sends one `budget.reached` notification."""
    now = ctx.clock()
    day, limit = todays_budget(ctx, now)
    if ctx.budget.charge(job_id, day, limit, now):
        return True
    if ctx.budget.claim_notice(day, now):
        log.warning("daily image budget reached", extra={"day": day, "budget": limit})
        ctx.count("BudgetReached")
        try:
            ctx.notifier.publish(*budget_notification(day, limit, ctx.budget.spent(day)["spent"]))
        except Exception:
            ctx.budget.release_notice(day)  # the next refusal sends it instead
            raise
    return False


def release_slot(ctx: Context, model: str, job_id: str, *, send: bool = True) -> list[str]:
    """Give the job's slot back and admit the oldest waiting job into it at once (a
    second release is a no-op). Returns the jobs admitted; `send=False` leaves their
    submission to the caller."""
    if ctx.slots.release(model, job_id):
        return admit_queued(ctx, model, send=send)
    return []


def admit_or_queue(ctx: Context, job_id: str, slot_of: str, *, expect: Iterable[JobStatus],
                   priority: str | None = None, owner: str | None = None,
                   **fields: Any) -> bool:
    """Move a job on from one of `expect` (only one caller can): ADMITTED with its
    place in the budget and a slot of model `slot_of` (True: the caller submits it),
    or QUEUED for them, in the turn of its `priority` and `owner` (the job's own),
    weighted by the share the operator gave the owner (`tryon keys set --share`); an
    owner at its cap of slots waits too."""
    settings = settings_of(ctx, owner)
    budgeted = within_budget(ctx, job_id)
    if (budgeted and not at_cap(ctx, slot_of, owner, settings)
            and acquire_slot(ctx, slot_of, job_id, owner)):
        return ctx.jobs.transition(job_id, expect=expect, to=JobStatus.ADMITTED,
                                   timeline={"admitted": ctx.clock()}, **fields)
    now = ctx.clock()
    turn = ctx.queue.entry(slot_of, priority or "batch", tenant_of(owner),
                           float(settings.get("share", 1)), now, job_id)
    if ctx.jobs.transition(job_id, expect=expect, to=JobStatus.QUEUED,
                           timeline={"queued": now}, **fields,
                           waiting_for="slot" if budgeted else "budget", **turn):
        admit_queued(ctx, slot_of)  # a slot may have come free since we asked
    return False


def requeue_ahead(ctx: Context, job: JobRecord) -> bool:
    """A submit refused as throttled while the model holds more slots than the
    provider runs: the lookahead is cut for a while, and the job (nothing created,
    its budget place kept) waits QUEUED again in its old turn. False otherwise."""
    capacity = ctx.capacity.of(job.model)
    if capacity.ahead == 0 or len(ctx.slots.holders(job.model)) <= capacity.limits.in_flight:
        return False
    ctx.capacity.cut_ahead(job.model)
    ctx.count("LookaheadRefused")
    # Admitted from the queue: its old turn; admitted at once: the head of its priority.
    turn = ({"queue": f"{QUEUE_PK}{job.model}", "queued_order": job.queued_order}
            if job.queued_order else
            queue_entry(job.model, job.timeline.get("admitted", ctx.clock()), job.job_id,
                        job.priority or "batch", tenant=tenant_of(job.owner)))
    if ctx.jobs.transition(job.job_id, expect=[JobStatus.SUBMITTING], to=JobStatus.QUEUED,
                           waiting_for="slot", **turn):
        release_slot(ctx, job.model, job.job_id)
    return True


def admit_queued(ctx: Context, model: str, *, send: bool = True) -> list[str]:
    """Work-conserving hand-off: fill the model's free slots with the waiting jobs
    whose turn it is, and pass them to the submit function (unless `send` is False).
    A tenant at its cap is passed over (looking further down the queue, up to
    MAX_SCAN, for another)."""
    admitted: list[str] = []
    settings: dict[str, dict[str, Any]] = {}  # owner -> its settings, read once per call
    window = 2 * ctx.capacity.of(model).slots
    while True:
        waiting = ctx.queue.next_up(model, window)
        passed_over, full = False, False
        for job_id, order in waiting:
            if job_id in admitted:
                continue  # the index lags
            tenant = parse_order(order)[2]
            owner = None if tenant in (None, BUCKET_TENANT, UNKNOWN_TENANT) else tenant
            if owner not in settings:
                settings[owner] = settings_of(ctx, owner)
            if at_cap(ctx, model, owner, settings[owner]):
                passed_over = True
                continue
            full = not _admit(ctx, model, job_id, order, owner, admitted)
            if full:
                break
        if full or not passed_over or len(waiting) < window or window >= MAX_SCAN:
            break
        window = min(4 * window, MAX_SCAN)
    if admitted and send:
        ctx.admissions.send(admitted)
    return admitted


def _admit(ctx: Context, model: str, job_id: str, order: str, owner: str | None,
           admitted: list[str]) -> bool:
    """One waiting job into a slot (appended to `admitted`); False when no slot is
    free or the day's budget is spent (nothing more can be admitted now)."""
    # The slot first: a hand-off mostly finds one slot, and the budget is charged
    # only for a job that gets it.
    if not acquire_slot(ctx, model, job_id, owner):
        return False
    if not within_budget(ctx, job_id):
        ctx.slots.release(model, job_id)
        return False
    if ctx.jobs.transition(job_id, expect=[JobStatus.QUEUED], to=JobStatus.ADMITTED,
                           remove=ADMITTED_REMOVES, timeline={"admitted": ctx.clock()}):
        ctx.queue.served(model, order)
        admitted.append(job_id)
        return True
    # Already admitted by another hand-off (the index lags): that one holds the
    # slot under the same job id. Only a job that went away must give it back.
    job = ctx.jobs.get(job_id)
    if job is None or job.ended:
        ctx.slots.release(model, job_id)
    return True
