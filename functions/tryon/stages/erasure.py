"""Erasure: an integration's data under its control. An ended job's result image,
sidecar and fixed input copies, and the uploads it named (unless a job not yet
erased names them too), go with every version and delete marker; its record keeps
only what billing needs (`job_record.BILLING_FIELDS`) and `erased_at`. A batch goes
with its jobs and its manifest; an upload on its own, unless a live job needs it.
The HTTP API (`erase_*_of`: the caller's own data only) and the operator's
`tryon data erase` both come here. Nothing here knows HTTP or Lambda."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from tryon.adapters.integrations import Integration
from tryon.job_record import JobRecord
from tryon.jobs import (
    API_MANIFEST_PREFIX,
    MANIFEST_PREFIX,
    NORMALIZED_PREFIX,
    UPLOADS_PREFIX,
    batch_total,
    every_batch_job,
)
from tryon.stages.api_requests import Problem, owned_batch, owned_job
from tryon.stages.context import Context


class CannotErase(Exception):
    """Something still uses the data: `code` says what (the API answers 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Erased:
    """What an erasure deleted: objects (keys) and their versions and delete markers,
    job and batch records cut down, credentials removed; the keys it kept because a
    job not erased names them."""

    objects: int = 0
    versions: int = 0
    jobs: int = 0
    batches: int = 0
    credentials: int = 0
    webhook_records: int = 0  # an integration's: its deliveries (and endpoints, with keys)
    kept: list[str] = field(default_factory=list)

    def count(self, deleted: dict[str, int]) -> None:
        self.objects += len(deleted)
        self.versions += sum(deleted.values())

    def add(self, other: Erased) -> None:
        for name in ("objects", "versions", "jobs", "batches", "credentials",
                     "webhook_records"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.kept += [key for key in other.kept if key not in self.kept]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the HTTP API's side: the caller's own data, refusals as problems ------------------

def erase_job_of(ctx: Context, who: Integration, job_id: str) -> Erased:
    owned_job(ctx, who, job_id)
    return _refused_as_problem(erase_job, ctx, job_id)


def erase_batch_of(ctx: Context, who: Integration, batch_id: str) -> Erased:
    owned_batch(ctx, who, batch_id)
    return _refused_as_problem(erase_batch, ctx, batch_id)


def erase_upload_of(ctx: Context, who: Integration, key: str) -> Erased:
    if not key.startswith(f"{UPLOADS_PREFIX}{who.name}/"):
        raise _no_upload(key)
    erased = _refused_as_problem(erase_upload, ctx, who.name, key)
    if not erased.versions:
        raise _no_upload(key)
    return erased


def _no_upload(key: str) -> Problem:
    return Problem(404, "NoSuchUpload", f"no upload {key!r} of yours (or it was erased "
                   "already): name the key POST /v1/uploads answered")


def _refused_as_problem(erase: Any, *args: Any) -> Erased:
    try:
        return erase(*args)
    except CannotErase as exc:
        raise Problem(409, exc.code, str(exc)) from None


# --- the work ------------------------------------------------------------------------

def erase_job(ctx: Context, job_id: str, *, with_batch: bool = True) -> Erased:
    """Erase an ended job (again: a no-op but for what is left). With `with_batch`,
    the job's batch goes too once every job of it is erased."""
    job = ctx.jobs.get(job_id)
    if job is None:
        raise KeyError(job_id)
    if not job.ended:
        raise CannotErase("JobNotEnded", f"job {job_id} is {job.status}: only an ended job "
                          "is erased; cancel it (POST /v1/jobs/{id}/cancel) or wait for its "
                          "end, then erase it")
    erased = Erased()
    named = _named_by_others(ctx, job.owner, {job_id})
    _erase_objects(ctx, job, named, erased)
    ctx.jobs.erase(job_id, ctx.clock())
    erased.jobs += 1
    if with_batch and job.batch_id:
        batch = ctx.batches.get(job.batch_id)
        if batch and all(other.erased_at for other in every_batch_job(ctx.jobs, batch)):
            erased.add(_erase_batch_record(ctx, batch))
    return erased


def erase_batch(ctx: Context, batch_id: str) -> Erased:
    """Erase every job of an ended batch, its manifest (every version) and record."""
    batch = ctx.batches.get(batch_id)
    if batch is None:
        raise KeyError(batch_id)
    jobs = list(every_batch_job(ctx.jobs, batch))
    open_jobs = [job.job_id for job in jobs if not job.ended]
    if open_jobs or len(jobs) < batch_total(batch):
        raise CannotErase("BatchNotEnded", f"batch {batch_id} has jobs that have not ended "
                          f"({', '.join(open_jobs[:5]) or 'not yet recorded'}): cancel them or "
                          "wait for their end, then erase the batch")
    erased = Erased()
    named = _named_by_others(ctx, batch.get("owner"), {job.job_id for job in jobs})
    for job in jobs:
        _erase_objects(ctx, job, named, erased)
        ctx.jobs.erase(job.job_id, ctx.clock())
        erased.jobs += 1
    erased.add(_erase_batch_record(ctx, batch))
    return erased


def erase_upload(ctx: Context, owner: str, key: str) -> Erased:
    """Erase one upload of `owner` (every version), and the fixed copies made of it for
    its ended jobs; refused while a job that has not ended names it."""
    jobs = [job for job in owned_jobs(ctx, owner) if key in job.input_keys().values()]
    live = [job.job_id for job in jobs if not job.ended]
    if live:
        raise CannotErase("UploadInUse", f"{key!r} is an input of job(s) "
                          f"{', '.join(live[:5])}, which have not ended: cancel them or wait "
                          "for their end, then erase the upload")
    erased = Erased()
    erased.count(ctx.storage.erase(ctx.settings.inbox_bucket, key))
    for job in jobs:
        for role, ready in (job.submit_inputs or {}).items():
            if job.input_keys().get(role) == key and ready["key"].startswith(NORMALIZED_PREFIX):
                erased.count(ctx.storage.erase(ready["bucket"], ready["key"]))
    return erased


def erase_integration(ctx: Context, owner: str) -> Erased:
    """Everything of one integration: its jobs and batches, and every object (all
    versions) under its uploads/, jobs/api/ and results' looks/api/ prefixes. Refused
    while any job of it has not ended."""
    jobs = list(owned_jobs(ctx, owner))
    live = [job.job_id for job in jobs if not job.ended]
    if live:
        raise CannotErase("JobsNotEnded", f"integration {owner} has {len(live)} job(s) that "
                          f"have not ended ({', '.join(live[:5])}): cancel them or wait, then "
                          "erase again")
    erased = Erased()
    for job in jobs:
        _erase_objects(ctx, job, set(), erased)  # every job goes: none keeps an input
        ctx.jobs.erase(job.job_id, ctx.clock())
        erased.jobs += 1
    for batch_id in sorted({job.batch_id for job in jobs if job.batch_id}):
        batch = ctx.batches.get(batch_id)
        if batch:
            erased.add(_erase_batch_record(ctx, batch))
    inbox, results = ctx.settings.inbox_bucket, ctx.settings.results_bucket
    for bucket, prefix in ((inbox, f"{UPLOADS_PREFIX}{owner}/"),
                           (inbox, f"{API_MANIFEST_PREFIX}{owner}/"),
                           (results, f"looks/{API_MANIFEST_PREFIX.removeprefix(MANIFEST_PREFIX)}"
                                     f"{owner}/")):
        erased.count(ctx.storage.erase(bucket, prefix, exact=False))
    return erased


def owned_jobs(ctx: Context, owner: str | None) -> Iterator[JobRecord]:
    """Every job of an integration (none for the bucket's own jobs, which have no owner)."""
    if owner is None:
        return
    after: str | None = None
    while True:
        page, after = ctx.jobs.owned(owner, status=None, limit=100, after=after)
        yield from page
        if not after:
            return


def _named_by_others(ctx: Context, owner: str | None, leaving: set[str]) -> set[str]:
    """The s3:// URIs the owner's other jobs not erased name (inputs and fixed copies)."""
    return {uri for job in owned_jobs(ctx, owner)
            if job.job_id not in leaving and not job.erased_at for uri in _inbox_objects(job)}


def _inbox_objects(job: JobRecord) -> list[str]:
    """The job's inputs and the fixed copies made of them, as s3:// URIs."""
    uris = list((job.inputs or {}).values())
    uris += [f"s3://{ready['bucket']}/{ready['key']}"
             for ready in (job.submit_inputs or {}).values()]
    return list(dict.fromkeys(uris))


def _erase_objects(ctx: Context, job: JobRecord, named: set[str], erased: Erased) -> None:
    results = ctx.settings.results_bucket
    result = job.result or {}
    if job.result_stem:  # the image (whatever its extension) and the sidecar
        erased.count(ctx.storage.erase(results, f"{job.result_stem}.", exact=False))
    for uri in (f"s3://{results}/{result['key']}" if result.get("key") else "",
                result.get("sidecar", "")):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if key:
            erased.count(ctx.storage.erase(bucket, key))
    for uri in _inbox_objects(job):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        # Only the owner's own uploads and fixed copies: a bucket job's inputs (the
        # models/ roster, garments/) are the operator's, and other jobs may use them.
        mine = job.owner is not None and (key.startswith(f"{UPLOADS_PREFIX}{job.owner}/")
                                          or key.startswith(NORMALIZED_PREFIX))
        if uri in named or not mine:
            if uri not in erased.kept:
                erased.kept.append(uri)
            continue
        erased.count(ctx.storage.erase(bucket, key))


def _erase_batch_record(ctx: Context, batch: dict[str, Any]) -> Erased:
    """The batch's manifest (every version) and its record cut down."""
    erased = Erased()
    source = batch.get("source") or {}
    if source.get("key", "").startswith(MANIFEST_PREFIX):  # not a drop folder's garment
        erased.count(ctx.storage.erase(source["bucket"], source["key"]))
    ctx.batches.erase(batch["batch_id"], ctx.clock())
    erased.batches += 1
    return erased
