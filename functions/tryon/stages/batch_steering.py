"""Steering a batch once it runs: cancel every look of it not yet at the provider (and
those still queued there), or make its failed and timed-out looks again as a new
batch linked to it. For the API (an integration's own batches) and the operator.

A cancel marks the batch (once) and then cancels its open jobs a page at a time, in
their order in the batch, for as long as the caller may run; the sweep goes on with
any batch whose cancel is not done (`ctx.batches.canceling()`), and the rows its
expansion has not reached yet end CANCELED as they come (tryon.stages.catalogue_intake).
A look the provider is making cannot be canceled: it ends on its own."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from typing import Any

from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import (
    API_MANIFEST_PREFIX,
    MANIFEST_PREFIX,
    batch_complete,
    batch_jobs,
    batch_total,
    ended_counts,
    every_batch_job,
    price_of_images,
)
from tryon.stages.cancellation import CannotCancel, cancel_once
from tryon.stages.context import Context

RETRIED_STATUSES = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})
RETRY_OF_METADATA = "retry-of"  # the retry file's S3 metadata: the batch it retries
MAX_ATTRIBUTES = 7  # per look (manifest-v1.schema.json)


class CannotRetry(Exception):
    """Nothing to make again: `code` and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# --- cancel ----------------------------------------------------------------------------

def cancel_batch(ctx: Context, batch_id: str, by: str, seconds: float) -> dict[str, Any]:
    """Cancel the batch (`by`: who asked): its open jobs for up to `seconds` now, the
    rest by the sweep. Returns where the cancel stands (cancel_state)."""
    batch = ctx.batches.start_cancel(batch_id, by, ctx.clock())
    return go_on_canceling(ctx, batch, time.monotonic() + seconds)


def go_on_canceling(ctx: Context, batch: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Cancel the batch's open jobs a page at a time from where the cancel stopped,
    until its pass has seen every job of the batch (the cancel done) or `deadline`
    (time.monotonic) has passed. A pass that ends before the batch's expansion has
    recorded every job starts over (the sweep's next turn): a row expanded behind it,
    by a child that read the batch before the cancel, is canceled then."""
    batch_id, by = batch["batch_id"], batch["cancel"]["by"]
    while not batch["cancel"].get("done_at") and time.monotonic() < deadline:
        cancel = batch["cancel"]
        page, next_page = batch_jobs(ctx.jobs, batch, after=cancel.get("after"))
        canceled: Counter[str] = Counter()  # model -> looks canceled
        running = int(cancel.get("running", 0)) if cancel.get("after") else 0  # this pass's
        for job in page:
            if job.ended:
                continue
            try:
                if cancel_once(ctx, job.job_id, by)[1]:
                    canceled[job.requested_model or job.model or ""] += 1
            except CannotCancel:
                running += 1  # the provider makes it: it ends on its own
        seen = int(cancel.get("seen", 0)) + len(page)
        whole = seen >= batch_total(batch)
        batch = ctx.batches.note_cancel(
            batch_id, after=next_page, seen=0 if next_page is None else seen,
            canceled=dict(canceled), running=running, done=next_page is None and whole,
            now=ctx.clock())
        if next_page is None and not whole:
            break  # rows still being expanded: the next pass starts over
    return cancel_state(batch)


def cancel_state(batch: dict[str, Any]) -> dict[str, Any]:
    """What a cancel has done: the looks it canceled, what they would have cost, the
    looks the provider was making (not canceled), and whether it is done."""
    cancel = batch.get("cancel") or {}
    by_model = {model: int(n) for model, n in (cancel.get("canceled") or {}).items()}
    return {"batch_id": batch["batch_id"], "canceled": sum(by_model.values()),
            "saved": price_of_images(by_model),
            "not_canceled_running": int(cancel.get("running", 0)),
            "done": bool(cancel.get("done_at")), "requested_at": cancel.get("at"),
            "by": cancel.get("by")}


# --- retry -----------------------------------------------------------------------------

def look_again(job: JobRecord, inbox: str) -> dict[str, Any]:
    """The look of an ended job as a manifest v1 look, linked to it by the attribute
    `retry_of`; CannotRetry when it has none to make again."""
    job_id, status = job.job_id, job.status
    if status == JobStatus.SUCCEEDED:
        raise CannotRetry("AlreadySucceeded", f"job {job_id} SUCCEEDED: nothing to retry "
                          "(upload the look again for another image)")
    if not job.ended:
        raise CannotRetry("NotEnded", f"job {job_id} is {status}, not ended: wait for it, or "
                          "cancel it first; only FAILED, TIMED_OUT or CANCELED jobs are retried")
    inputs = job.inputs or {}
    if "person" not in inputs:
        code = (job.error or {}).get("code")
        raise CannotRetry("NoLook", f"job {job_id} ended {status} ({code}) before its look "
                          "was read: there is no look to retry; fix it and send it again")
    keys = {}
    for role, uri in inputs.items():
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if bucket != inbox:
            raise CannotRetry("ForeignInput", f"job {job_id}'s {role} {uri} is not in the "
                              f"inbox {inbox}")
        keys[role] = key
    look: dict[str, Any] = {"id": job.look_id, "person": keys["person"]}
    if "top" in keys:
        look["dress" if job.top_is_dress else "top"] = keys["top"]
    if "bottom" in keys:
        look["bottom"] = keys["bottom"]
    if job.keep:
        look["keep"] = job.keep
    look["model"] = job.requested_model or job.model
    parameters = job.parameters or {}
    look.update({k: parameters[k] for k in ("resolution", "restore_face") if k in parameters})
    if job.instruction:
        look["instruction"] = job.instruction
    # A retry of a retry names its own predecessor.
    attributes = {**job.attributes, "retry_of": job_id}
    if len(attributes) > MAX_ATTRIBUTES:
        raise CannotRetry("NoRoomForRetryOf", f"job {job_id} has {MAX_ATTRIBUTES} attributes, "
                          "the most a look may have: there is no room for retry_of; upload "
                          "the look yourself")
    look["attributes"] = attributes
    return look


def retry_batch(ctx: Context, batch: dict[str, Any]) -> dict[str, Any]:
    """Write the batch's FAILED and TIMED_OUT looks as a new catalogue file (JSON Lines,
    named by its new batch id: jobs/api/<owner>/batches/<id>.jsonl for an integration's
    batch, which its quota counts, else jobs/batches/<id>.jsonl), linked both ways:
    the new batch's `retry_of`, the old one's `retries`. Intake checks and budgets it as
    any other file. A failed job with no look (a row that could not be read) is left
    out, and said so. A batch is retried once, when every look of it has ended: asked
    again (a lost answer, a second click), the same new batch, never its looks paid
    twice; what fails again is retried from the new batch."""
    if not batch_complete(batch):
        open_looks = batch_total(batch) - sum(ended_counts(batch).values())
        raise CannotRetry("BatchOpen", (
            f"batch {batch['batch_id']} has {open_looks} looks not ended yet: wait for them "
            "(or cancel the batch); a batch is retried once, when every look has ended"))
    inbox = ctx.settings.inbox_bucket
    lines, left_out = [], {}
    for job in every_batch_job(ctx.jobs, batch):
        if job.status not in RETRIED_STATUSES:
            continue
        try:
            lines.append(json.dumps(look_again(job, inbox), separators=(",", ":")))
        except CannotRetry as exc:
            left_out[job.job_id] = str(exc)
    if not lines:
        raise CannotRetry("NothingToRetry", (
            f"batch {batch['batch_id']} has no failed or timed-out look to make again"
            + (f" ({len(left_out)} failed before their look was read: fix those rows and "
               "upload them again)" if left_out else "")))
    new_id = hashlib.sha256(f"{batch['batch_id']}\nretry".encode()).hexdigest()[:32]
    owner = batch.get("owner")
    key = (f"{API_MANIFEST_PREFIX}{owner}/batches/{new_id}.jsonl" if owner
           else f"{MANIFEST_PREFIX}batches/{new_id}.jsonl")
    ctx.storage.write(inbox, key, ("\n".join(lines) + "\n").encode(), "application/jsonl",
                      {RETRY_OF_METADATA: batch["batch_id"]}, if_absent=True)
    ctx.batches.add_retry(batch["batch_id"], new_id)
    return {"batch_id": new_id, "retry_of": batch["batch_id"], "looks": len(lines),
            "left_out": left_out, "file": f"s3://{inbox}/{key}"}
