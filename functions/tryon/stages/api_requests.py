"""The API's requests: what the HTTP API does for an integration. Its looks become a manifest
in the inbox, so they go through the same intake, checks, budget and workflow as
an upload's; it sees only its own uploads, jobs and batches; it may cancel a job
the provider has not started. Nothing here knows HTTP or Lambda: a refusal is a
`Problem`, which tryon.handlers.api.problems turns into a problem document."""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tryon import catalogue
from tryon.adapters.integrations import Integration
from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import (
    API_MANIFEST_PREFIX,
    UPLOADS_PREFIX,
    Source,
    batch_counts,
    batch_id_for,
    batch_jobs,
    is_whole,
    job_id_for,
    job_view,
    safe_name,
    unique_looks,
    utc_day,
)
from tryon.manifest import (
    MAX_MANIFEST_BYTES,
    ManifestError,
    batch_form,
    instruction_refusals,
    parse_manifest,
    priority_refusals,
)
from tryon.review import render_review
from tryon.stages import batch_steering
from tryon.stages.admission import charge_quota, quota_room
from tryon.stages.batch_progress import batch_progress
from tryon.stages.cancellation import CannotCancel, cancel_job
from tryon.stages.context import Context

# The tag upload forms give an upload, and accepted looks change: the inbox's lifecycle
# rule expires uploads/ objects still tagged false (template.yaml, UnreferencedUploadDays).
REFERENCED_TAG = "tryon-referenced"
UNREFERENCED = {REFERENCED_TAG: "false"}
REFERENCED = {REFERENCED_TAG: "true"}

# The image types an upload link accepts (what preflight can decode and some model takes).
UPLOAD_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif",
                          "image/avif", "image/bmp", "image/tiff", "image/gif"})
# Catalogue files (tryon.catalogue) an upload link or POST /v1/batches form accepts.
CATALOGUE_TYPES = {"text/csv": ".csv", "application/jsonl": ".jsonl"}
UPLOAD_LINK_SECONDS = 900
# How long POST /v1/batches/{id}/cancel cancels before it answers (API Gateway waits 29
# s); the sweep cancels the rest.
CANCEL_SECONDS = 15.0
RESULT_LINK_SECONDS = 900
MAX_PAGE = 100


class Problem(Exception):
    """A request refused: the HTTP status, a stable code, and what to fix."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def upload_links(ctx: Context, who: Integration, files: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """One presigned POST form per file, under the integration's own prefix, for at most
    the bytes the file declared, counted against the integration's upload quotas. Each
    upload is tagged unreferenced until looks name it (`REFERENCED_TAG`)."""
    _charge_uploads(ctx, who, len(files), sum(int(file["size"]) for file in files))
    links = []
    # Each an image of at most MAX_INPUT_BYTES or a catalogue file of at most
    # MAX_BATCH_BYTES (the request model says so).
    for file in files:
        key = (f"{UPLOADS_PREFIX}{who.name}/{uuid.uuid4().hex[:16]}/"
               f"{safe_name(file['name'], 'image')}")
        form = ctx.storage.presign_post(ctx.settings.inbox_bucket, key, file["content_type"],
                                        int(file["size"]), UPLOAD_LINK_SECONDS,
                                        tags=UNREFERENCED)
        links.append({"key": key, "url": form["url"], "fields": form["fields"],
                      "expires": int(time.time()) + UPLOAD_LINK_SECONDS})
    return links


def _charge_uploads(ctx: Context, who: Integration, forms: int, size: int) -> None:
    """Count the forms and declared bytes against the day's upload quotas (the
    integration's own, or the stack's), or refuse them all: 429 UploadQuotaReached."""
    own = ctx.integrations.get(who.name) or {}
    max_forms = int(own.get("upload_forms") or ctx.settings.upload_forms_per_day)
    max_bytes = int(own.get("upload_bytes") or ctx.settings.upload_bytes_per_day)
    now = ctx.clock()
    day = utc_day(now)
    if ctx.integrations.charge_uploads(who.name, day, forms, size, max_forms=max_forms,
                                       max_bytes=max_bytes, now=now):
        return
    used = ctx.integrations.uploads_used(who.name, day)
    resets = f"{utc_day((now // 86400 + 1) * 86400)}T00:00:00Z"  # the next UTC day's start
    quota, unit, limit, taken, asked = (
        ("UploadFormsPerDay", "forms", max_forms, used["forms"], forms)
        if used["forms"] + forms > max_forms else
        ("UploadBytesPerDay", "bytes", max_bytes, used["bytes"], size))
    raise Problem(429, "UploadQuotaReached",
                  f"{asked} more upload {unit} would pass this integration's quota "
                  f"{quota} of {limit} {unit} a day ({taken} used on {day}, UTC); it resets "
                  f"at {resets}: ask for fewer or smaller files, wait, or ask the operator to "
                  "raise it (tryon keys set --upload-forms/--upload-bytes)")


def accept_looks(ctx: Context, who: Integration, manifest: dict[str, Any],
                 name: str) -> dict[str, Any]:
    """Check a manifest as intake would, count its looks against the integration's
    quota, and write it to the inbox as jobs/api/<integration>/<name>.json: nothing is
    written for a refused one. A name already written (a retry under the same
    idempotency key) gives the jobs of the first one, counted once."""
    raw = json.dumps(batch_form(manifest)).encode()
    if len(raw) > MAX_MANIFEST_BYTES:
        raise Problem(413, "ManifestTooLarge", f"the looks are over {MAX_MANIFEST_BYTES // 1024}"
                      " KB; send at most 50 looks per request")
    try:
        parsed = parse_manifest(raw, ctx.settings.default_model)
    except ManifestError as exc:
        raise Problem(422, exc.code, str(exc)) from None
    refusals = {} if who.allow_instruction else instruction_refusals(parsed, who.name)
    if refusals:
        raise Problem(422, "InstructionNotAllowed", next(iter(refusals.values())))
    refusals = priority_refusals(parsed, who.priorities, who.name)
    if refusals:
        raise Problem(422, "PriorityNotAllowed", next(iter(refusals.values())))
    bucket = ctx.settings.inbox_bucket
    own = f"{UPLOADS_PREFIX}{who.name}/"
    for look in parsed.looks:
        for role, key in look.inputs().items():
            where = f"{parsed.pointers[look.look_id]}/{role}"
            if not key.startswith(own):
                raise Problem(422, "ForeignInput",
                              f"{key!r} (at {where}) is not one of your uploads: upload the "
                              "image with POST /v1/uploads and name the key it answers "
                              f"(under {own})")
            if ctx.storage.describe(bucket, key) is None:
                raise Problem(422, "MissingInput",
                              f"{key!r} (at {where}) was not uploaded (or its link expired "
                              "before the upload): upload it with the form POST /v1/uploads "
                              "answered, then send the looks again")
    looks = unique_looks(parsed.looks)[0]
    day, refusal = charge_quota(ctx, who, len(looks))
    if refusal:
        raise Problem(429, "QuotaExceeded", refusal)
    key = f"{API_MANIFEST_PREFIX}{who.name}/{name}.json"
    try:
        written = ctx.storage.write(bucket, key, raw, "application/json", if_absent=True)
    except Exception:
        ctx.integrations.refund_quota(who.name, day, len(looks))
        raise
    if written is None:  # the first attempt wrote it: its looks, counted then
        ctx.integrations.refund_quota(who.name, day, len(looks))
        written = ctx.storage.describe(bucket, key)
    # Named by looks: the uploads no longer expire as unreferenced.
    for upload in sorted({k for look in parsed.looks for k in look.inputs().values()}):
        ctx.storage.tag(bucket, upload, REFERENCED)
    # The ids intake will give them: from the manifest's version (job_id_for).
    source = Source(bucket, key, written["etag"] or "", written["version_id"])
    return {"batch_id": batch_id_for(source),
            "looks": [{"look_id": look.look_id, "job_id": job_id_for(source, look.look_id)}
                      for look in looks]}


def new_batch_form(ctx: Context, who: Integration, file: dict[str, Any], name: str
                   ) -> dict[str, Any]:
    """A new batch, its id at once, and the form to upload its catalogue file with
    (jobs/api/<integration>/batches/<id>.csv or .jsonl: a form for that key alone, of at
    most the declared bytes, counted against the upload quotas). Intake reads the file
    when it arrives, and counts its rows against the image quota then. `name`: the
    request's (a retry under the same Idempotency-Key gets the same batch, and no form
    once its file is uploaded)."""
    size = int(file["size"])
    if size > catalogue.MAX_BATCH_BYTES:
        raise _batch_too_large(file["name"], size)
    suffix = CATALOGUE_TYPES[file["content_type"]]
    if not file["name"].lower().endswith(suffix):
        raise Problem(422, "InvalidBatchFile", f"{file['name']!r} is sent as "
                      f"{file['content_type']}: name it <name>{suffix}")
    batch_id = _batch_id(who, name)
    key = f"{API_MANIFEST_PREFIX}{who.name}/batches/{batch_id}{suffix}"
    if ctx.storage.describe(ctx.settings.inbox_bucket, key) is not None:
        return {"batch_id": batch_id}  # the request again, its file uploaded: no new form
    _room_for_looks(ctx, who, 1)
    _charge_uploads(ctx, who, 1, size)
    form = ctx.storage.presign_post(ctx.settings.inbox_bucket, key, file["content_type"],
                                    size, UPLOAD_LINK_SECONDS)
    return {"batch_id": batch_id, "upload": {
        "key": key, "url": form["url"], "fields": form["fields"],
        "expires": int(time.time()) + UPLOAD_LINK_SECONDS}}


def batch_of_upload(ctx: Context, who: Integration, key: str, name: str) -> dict[str, Any]:
    """A new batch of a catalogue file the integration uploaded (POST /v1/uploads): read
    and checked now (a file too large, with too many rows or unreadable is refused, at
    no cost; its rows must fit in the day's quota), then written as the batch's file
    (jobs/api/<integration>/batches/<id>), which intake takes as any. `name`: the
    request's (a retry under the same Idempotency-Key gets the same batch, and one that
    names another file is refused)."""
    bucket, own = ctx.settings.inbox_bucket, f"{UPLOADS_PREFIX}{who.name}/"
    kind = catalogue.kind_of(key)
    if not key.startswith(own) or kind is None:
        raise Problem(422, "ForeignInput", f"{key!r} is not a catalogue file of your uploads: "
                      f"upload a .csv or .jsonl file with POST /v1/uploads (under {own}) and "
                      "name the key it answers")
    described = ctx.storage.describe(bucket, key)
    if described is None:
        raise Problem(422, "MissingInput", f"{key!r} was not uploaded (or its link expired "
                      "before the upload): upload it with the form POST /v1/uploads answered")
    if described["size"] > catalogue.MAX_BATCH_BYTES:
        raise _batch_too_large(key, described["size"])
    data = ctx.storage.read(bucket, key, described["version_id"], catalogue.MAX_BATCH_BYTES)
    try:
        rows = sum(1 for _ in catalogue.read_rows(io.BytesIO(data), kind,
                                                  ctx.settings.max_batch_looks))
    except catalogue.BatchFileError as exc:
        raise Problem(413 if exc.code == "BatchTooLarge" else 422, exc.code,
                      f"{key}: {exc}; nothing was made or paid") from None
    if not rows:
        raise Problem(422, "InvalidBatchFile", f"{key}: no looks (only a header, or blank "
                      "lines): write one look per row under the header")
    batch_id = _batch_id(who, name)
    target = f"{API_MANIFEST_PREFIX}{who.name}/batches/{batch_id}.{kind}"
    answer = {"batch_id": batch_id, "rows": rows, "file": target}
    if ctx.storage.describe(bucket, target) is None:
        _room_for_looks(ctx, who, rows)
        if ctx.storage.write(bucket, target, data, "text/csv" if kind == "csv"
                             else "application/jsonl", if_absent=True) is not None:
            return answer
    # The request again (its Idempotency-Key): the same batch, if it is the same file.
    if ctx.storage.read(bucket, target, max_bytes=catalogue.MAX_BATCH_BYTES) != data:
        raise Problem(422, "IdempotencyKeyReused", f"this Idempotency-Key made batch "
                      f"{batch_id} of another file than {key!r}: send a new key for a new "
                      "batch; nothing was made or paid")
    return answer


def _batch_id(who: Integration, name: str) -> str:
    return hashlib.sha256(f"{who.name}\n{name}".encode()).hexdigest()[:32]


def _room_for_looks(ctx: Context, who: Integration, looks: int) -> None:
    """Refuse now (429) what the day's image quota has no room for; intake counts it."""
    refusal = quota_room(ctx, who, looks)
    if refusal:
        raise Problem(429, "QuotaExceeded", refusal)


def _batch_too_large(name: str, size: int) -> Problem:
    return Problem(413, "BatchTooLarge", f"{name!r}: {size} bytes, over the "
                   f"{catalogue.MAX_BATCH_BYTES} a catalogue file may have; nothing was made "
                   "or paid. Split it into smaller files")


def cancel_batch(ctx: Context, who: Integration, batch_id: str) -> dict[str, Any]:
    owned_batch(ctx, who, batch_id)
    return batch_steering.cancel_batch(ctx, batch_id, f"integration {who.name!r}",
                                       CANCEL_SECONDS)


def retry_batch(ctx: Context, who: Integration, batch_id: str) -> dict[str, Any]:
    batch = owned_batch(ctx, who, batch_id)
    try:
        return batch_steering.retry_batch(ctx, batch)
    except batch_steering.CannotRetry as exc:
        raise Problem(409, exc.code, str(exc)) from None


def owned_job(ctx: Context, who: Integration, job_id: str) -> JobRecord:
    job = ctx.jobs.get(job_id) if job_id.isalnum() else None
    if job is None or job.owner != who.name:
        raise Problem(404, "NoSuchJob",
                      f"no job {job_id!r} of yours; a look accepted a moment ago is recorded "
                      "within seconds, so retry shortly if you have just sent it")
    return job


def owned_batch(ctx: Context, who: Integration, batch_id: str) -> dict[str, Any]:
    batch = ctx.batches.get(batch_id) if batch_id.isalnum() else None
    if batch is None or batch.get("owner") != who.name:
        raise Problem(404, "NoSuchBatch",
                      f"no batch {batch_id!r} of yours; looks accepted a moment ago are "
                      "recorded within seconds, so retry shortly if you have just sent them")
    return batch


def batch_of(ctx: Context, who: Integration, batch_id: str, after: str | None = None
             ) -> dict[str, Any]:
    """The batch's counts and its jobs (a page of them, for a large batch)."""
    return batch_progress(ctx, owned_batch(ctx, who, batch_id), after)


def list_jobs(ctx: Context, who: Integration, *, status: str | None, batch: str | None,
              limit: int, after: str | None) -> dict[str, Any]:
    """The integration's jobs, newest first; `next` is where the next page starts."""
    if batch:
        page, after = batch_jobs(ctx.jobs, owned_batch(ctx, who, batch),
                                 limit=min(limit, MAX_PAGE), after=after)
        return {"jobs": [job_view(job) for job in page
                         if status is None or job.status == status], "next": after}
    jobs, after = ctx.jobs.owned(who.name, status=status, limit=min(limit, MAX_PAGE),
                                       after=after)
    return {"jobs": [job_view(job) for job in jobs], "next": after}


def result_links(ctx: Context, who: Integration, job_id: str) -> dict[str, Any]:
    """Short-lived links to a succeeded job's image and its sidecar."""
    job = owned_job(ctx, who, job_id)
    result = job.result or {}
    if job.erased_at:
        raise Problem(410, "JobErased", f"job {job_id} was erased (DELETE /v1/jobs/{job_id}): "
                      "its image and sidecar are gone for good; make the look again for a "
                      "new one")
    if job.status != JobStatus.SUCCEEDED or "key" not in result:
        raise Problem(409, "NoResult", f"job {job_id} is {job.status}: only a SUCCEEDED job "
                      "has a result; its status says when it ends")
    expires = int(time.time()) + RESULT_LINK_SECONDS
    bucket = ctx.settings.results_bucket
    sidecar = result.get("sidecar", "").removeprefix(f"s3://{bucket}/")
    return {"image": {"url": ctx.storage.presign_get(bucket, result["key"],
                                                     RESULT_LINK_SECONDS),
                      "expires": expires, "content_type": result.get("content_type")},
            "sidecar": {"url": ctx.storage.presign_get(bucket, sidecar, RESULT_LINK_SECONDS),
                        "expires": expires}}


def cancel(ctx: Context, who: Integration, job_id: str) -> dict[str, Any]:
    owned_job(ctx, who, job_id)
    try:
        return job_view(cancel_job(ctx, job_id, f"integration {who.name!r}"))
    except CannotCancel as exc:
        raise Problem(409, exc.code, str(exc)) from None


def review_page(ctx: Context, who: Integration, batch_id: str, *, after: str | None = None,
                failed: bool = False) -> str:
    """The batch's review page, with short-lived links to its images: all its looks, or
    a page of MAX_LISTED_LOOKS of a larger batch (`after`), its failed ones only
    (FAILED, TIMED_OUT) with `failed`."""
    batch = owned_batch(ctx, who, batch_id)
    jobs, next_page = batch_jobs(ctx.jobs, batch, after=after)
    if failed:
        jobs = [job for job in jobs if job.status in (JobStatus.FAILED, JobStatus.TIMED_OUT)]
    more = counts = None
    if not is_whole(after, next_page):  # a page of a batch too large for one
        counts = batch_counts(batch, None)
        shown = "failed or timed-out looks" if failed else "looks"
        more = (f"This page: {len(jobs)} {shown} of the batch's {counts['total']}. "
                + (f"More looks of this batch: GET /v1/batches/{batch_id}/review?after="
                   f"{quote(next_page)}{'&failed=true' if failed else ''} (with your key)"
                   if next_page else "It is the last page."))
    return render_review(f"Batch {batch_id}", [job.to_item() for job in jobs],
                         _links(ctx, who), batch=batch, more=more, counts=counts)


def _links(ctx: Context, who: Integration) -> Callable[[str], str | None]:
    """s3:// URI -> presigned GET, only for the integration's uploads and the results."""
    inbox, results = ctx.settings.inbox_bucket, ctx.settings.results_bucket

    def link(uri: str) -> str | None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if (bucket == inbox and key.startswith(f"{UPLOADS_PREFIX}{who.name}/")) or (
                bucket == results and key):
            return ctx.storage.presign_get(bucket, key, RESULT_LINK_SECONDS)
        return None

    return link
