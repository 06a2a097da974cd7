"""Pure domain logic of a try-on job: what a look is, how a manifest names
looks, how a job is identified, and what the notification says. Nothing here
knows about Lambda or AWS."""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from tryon.job_record import TERMINAL_STATUSES, JobRecord, JobStatus
from tryon.models.registry import MODELS

# Provider messages are the provider's text: kept, but bounded, in records and
# notifications (an SNS message and a DynamoDB item have size limits).
MAX_ERROR_MESSAGE_CHARS = 1000


def bounded_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    if not error or len(str(error.get("message", ""))) <= MAX_ERROR_MESSAGE_CHARS:
        return error
    return {**error, "message": str(error["message"])[:MAX_ERROR_MESSAGE_CHARS - 1] + "…"}


class LookFailed(Exception):
    """A look that cannot go on; `error` is what its job records and notifies."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.error = {"code": code, "message": message}


@dataclass(frozen=True)
class Look:
    """One try-on: a person and the garments to put on them (S3 keys)."""

    look_id: str
    person: str
    top: str | None = None
    top_is_dress: bool = False  # a dress or jumpsuit travels in the top slot
    bottom: str | None = None
    keep: str | None = None  # "top" | "bottom": the person's own stays on
    model: str = "aitryon-plus"
    resolution: int = -1
    restore_face: bool = True
    instruction: str | None = None  # the retailer's own words for Qwen models, appended
    attributes: tuple[tuple[str, str], ...] = ()  # the user's, echoed into notifications
    priority: str | None = None  # "interactive" | "batch"; None: by the manifest's size

    def inputs(self) -> dict[str, str]:
        named = {"person": self.person, "top": self.top, "bottom": self.bottom}
        return {role: key for role, key in named.items() if key}

    def parameters(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "restore_face": self.restore_face}


@dataclass(frozen=True)
class Source:
    """The uploaded object that asked for the work."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def owner_of(key: str) -> str | None:
    """The integration whose API request wrote this manifest, if one did."""
    if not key.startswith(API_MANIFEST_PREFIX):
        return None
    name = key.removeprefix(API_MANIFEST_PREFIX).split("/", 1)[0]
    return name if INTEGRATION_NAME.match(name) else None


def owner_fields(key: str, received: float, record_id: str) -> dict[str, str]:
    """The attributes that put a job or batch in its owner's `owner` index, newest last."""
    owner = owner_of(key)
    return {"owner": owner, "owner_order": f"{received:017.3f}#{record_id}"} if owner else {}


def utc_day(epoch: float) -> str:
    """The UTC day budgets and quotas count by."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def is_batch_id(text: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{32}", text) is not None


def named_batch_id(key: str) -> str | None:
    """The batch id a catalogue file's key names (see _BATCH_KEY), if it names one."""
    match = _BATCH_KEY.match(key)
    return match[1] if match else None


def batch_id_for(source: Source) -> str:
    """The batch an upload's looks make: the one its key names, else one per version."""
    return named_batch_id(source.key) or job_id_for(source, "batch")


def job_id_for(source: Source, look_id: str) -> str:
    """Stable across redeliveries of the same upload; new for a new version of it.

    (S3's `sequencer` is not used: moto leaves it empty, and the version id or
    ETag already tells uploads apart.)"""
    revision = source.version_id or source.etag
    digest = hashlib.sha256(f"{source.bucket}\n{source.key}\n{revision}\n{look_id}".encode())
    return digest.hexdigest()[:32]


MANIFEST_PREFIX = "jobs/"
# A catalogue file named by its batch id (POST /v1/batches writes or hands out forms for
# jobs/api/<integration>/batches/<id>.csv; `tryon jobs retry` writes jobs/batches/<id>.csv):
# its id is known before the file is uploaded.
_BATCH_KEY = re.compile(r"^jobs/(?:api/[a-z0-9][a-z0-9-]{0,39}/)?batches/([0-9a-f]{32})"
                        r"\.(?:csv|jsonl)$")
# The HTTP API writes an integration's looks as manifests here, and hands it upload
# links under its own uploads/ prefix: the key says whose a job is.
API_MANIFEST_PREFIX = "jobs/api/"
UPLOADS_PREFIX = "uploads/"
INTEGRATION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ROSTER_PREFIX = "models/"
NORMALIZED_PREFIX = "normalized/"
_DROP_KEY = re.compile(r"^garments/(top|bottom|dress)/([^/]+)\.[A-Za-z0-9]{2,5}$")


def safe_name(text: str, fallback: str) -> str:
    """A name that is safe in an S3 key whatever the user called the file."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:100] or fallback


@dataclass(frozen=True)
class DroppedGarment:
    """A garment dropped at garments/{top,bottom,dress}/<sku>.<ext>."""

    slot: str
    sku: str
    key: str


def dropped_garment(key: str) -> DroppedGarment | None:
    match = _DROP_KEY.match(key)
    if not match:
        return None
    return DroppedGarment(slot=match[1], sku=safe_name(match[2], "garment"), key=key)


def roster_looks(garment: DroppedGarment, roster: list[str], model: str) -> list[Look]:
    """The dropped garment on every person of the roster, one look each, named by
    the person photo's file name."""
    looks, used = [], set()
    for person in roster:
        name = person.rsplit("/", 1)[-1]
        look_id = safe_name(name.rsplit(".", 1)[0], "person")
        if look_id in used:  # anna.jpg and anna.png
            look_id = safe_name(name, "person")
        used.add(look_id)
        sku = (("sku", garment.sku),)  # so subscribers can filter every job by SKU
        if garment.slot == "bottom":
            look = Look(look_id=look_id, person=person, bottom=garment.key, model=model,
                        attributes=sku)
        else:
            look = Look(look_id=look_id, person=person, top=garment.key,
                        top_is_dress=garment.slot == "dress", model=model, attributes=sku)
        looks.append(look)
    return looks


# Enough of the job id to tell any two jobs' results apart.
RESULT_ID_CHARS = 10


def manifest_result_stem(source: Source, look_id: str, job_id: str) -> str:
    """looks/<manifest path under jobs/>/<look id>-<job id>: readable, safe whatever the
    upload was named, and unique to the job — two teams' spring.json, a re-upload of
    the same file, or names that reduce alike never share a result."""
    path = source.key.removeprefix(MANIFEST_PREFIX).removesuffix(".json").split("/")
    folders = "/".join(safe_name(part, "manifest") for part in path)
    return f"looks/{folders}/{look_id}-{job_id[:RESULT_ID_CHARS]}"


def drop_result_stem(garment: DroppedGarment, look_id: str, job_id: str) -> str:
    return f"results/{garment.sku}/{look_id}-{job_id[:RESULT_ID_CHARS]}"


NOTIFICATION_EVENTS = {
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.TIMED_OUT: "job.timed_out",
    JobStatus.CANCELED: "job.canceled",
}


# Message attributes the pipeline sets: a manifest's attributes of these names are
# dropped from the message attributes (they stay in the body's `attributes`), so no
# upload can pose as another integration's job to a subscriber filtering on `owner`.
SYSTEM_ATTRIBUTES = frozenset({"event", "status", "model", "owner"})


def message_attributes(given: dict[str, str], **system: str | None) -> dict[str, str]:
    """The attributes subscribers filter on: the look's own, then the pipeline's."""
    kept = {k: v for k, v in given.items() if k not in SYSTEM_ATTRIBUTES}
    return {**kept, **{k: v for k, v in system.items() if v}}


def notification_for(job: JobRecord) -> tuple[dict[str, Any], dict[str, str]]:
    """The SNS message body and the attributes subscribers filter on."""
    event = NOTIFICATION_EVENTS[job.status]
    body = {"schema": "tryon.notification/1", "event": event, **job_view(job)}
    return body, message_attributes(job.attributes, event=event, status=job.status.value,
                                    model=job.model, owner=job.owner)


def job_view(job: JobRecord) -> dict[str, Any]:
    """What a job's owner sees of it, in any status: the notification's fields (the
    API answers with these too)."""
    return {
        "job_id": job.job_id,
        "status": job.status.value,
        "owner": job.owner,  # the integration whose API request made it (None: the bucket)
        "model": job.model,
        "requested_model": job.requested_model or job.model,
        "look_id": job.look_id,
        "source": job.source,
        "inputs": job.inputs,
        "parameters": job.parameters,
        "provider_task_id": job.provider_task_id,
        "result": job.result,
        "usage": job.usage,
        "price": price_of(job.model),
        "error": job.error,
        "normalized": job.normalized,
        "kept_garment": job.kept_garment,
        "batch_id": job.batch_id,
        "duplicate_looks": job.duplicate_looks,
        "attributes": job.attributes,
        "polls": job.polls,
        "timings": job.timeline,
    }


def budget_notification(day: str, budget: int, spent: int
                        ) -> tuple[dict[str, Any], dict[str, str]]:
    """`budget.reached`: sent once a day, when the first look waits for the budget."""
    return {
        "schema": "tryon.notification/1",
        "event": "budget.reached",
        "day": day,
        "budget": budget,
        "spent": spent,
        "message": f"the daily image budget of {budget} images for {day} (UTC) is spent: "
                   "further looks wait QUEUED (nothing is lost) and start when the day "
                   "turns, or as soon as the budget is raised (DailyImageBudget, or the "
                   "operator's override)",
    }, {"event": "budget.reached"}


def unique_looks(looks: list[Look]) -> tuple[list[Look], dict[str, list[str]]]:
    """One upload's looks with repeats taken out: a look that asks for the same
    image as an earlier one (the same inputs, model and parameters, whatever its id
    or attributes) is made once. Returns the looks to make, and for each the ids
    of the repeats it stands for."""
    first: dict[Look, Look] = {}
    repeats: dict[str, list[str]] = {}
    for look in looks:
        same = replace(look, look_id="", attributes=(), priority=None)
        if same in first:
            repeats.setdefault(first[same].look_id, []).append(look.look_id)
        else:
            first[same] = look
    return list(first.values()), repeats


def price_of_images(by_model: dict[str, int]) -> dict[str, float]:
    """Currency -> what these images (model -> how many) cost at the registry's prices."""
    total: dict[str, float] = {}
    for model, images in by_model.items():
        per_image = price_of(model)
        if per_image:
            currency = per_image["currency"]
            total[currency] = round(total.get(currency, 0.0) + images * per_image["per_image"], 6)
    return total


def price_of(model: str | None) -> dict[str, Any] | None:
    """The registry's price per image of the model that made (or would make) the
    image; only successful images are billed."""
    spec = MODELS.get(model or "")
    return spec.price.as_dict() if spec else None


# A batch read back counts its ended jobs (tallied from its shards, tryon.adapters.batches):
# `ended`, ENDED_PREFIX + each terminal status (lowercase) and MADE_PREFIX + each model
# that made images; one recorded before the shards has a set `ended_jobs` instead.
ENDED_PREFIX = "ended#"
MADE_PREFIX = "made#"  # + a model: the images it made for the batch
# A batch of at most this many keeps its jobs' ids in its record and lists each look's
# outcome in batch.completed (well inside SNS's 256 KB); a larger one is read a page
# at a time from the `batch` index (GET /v1/batches/{id}).
MAX_LISTED_LOOKS = 100


def batch_jobs(jobs: Any, batch: dict[str, Any], *, limit: int = MAX_LISTED_LOOKS,
               after: str | None = None) -> tuple[list[JobRecord], str | None]:
    """A batch's jobs (`jobs`: the Jobs port): all of them where its record keeps their
    ids, else a page of `limit` after `after` from the `batch` index, and where the
    next page starts (None: no more)."""
    if batch.get("job_ids") is not None:
        return jobs.get_many(list(batch["job_ids"])), None
    return jobs.of_batch(batch["batch_id"], limit=limit, after=after)


def every_batch_job(jobs: Any, batch: dict[str, Any]) -> Iterator[JobRecord]:
    """All of a batch's jobs, a page at a time."""
    after: str | None = None
    while True:
        page, after = batch_jobs(jobs, batch, after=after)
        yield from page
        if after is None:
            return


SHARD_LOOKS = MAX_LISTED_LOOKS  # a batch's ends are kept in shards of this many jobs


def shard_of(order: str | None) -> int:
    """The shard of a job's ends, by its place in the batch (its batch_order)."""
    return int(order or 0) // SHARD_LOOKS


def shard_sizes(places: Iterable[int]) -> dict[str, int]:
    """Shard -> how many of the batch's jobs end there (the batch record's `shards`)."""
    return dict(Counter(str(place // SHARD_LOOKS) for place in places))


def batch_complete(batch: dict[str, Any]) -> bool:
    """Every job of the batch has ended: every shard done (or, recorded before the
    shards, every id in its set)."""
    if "shards" in batch:
        return len(batch.get("shards_done", ())) >= len(batch["shards"])
    return len(batch.get("ended_jobs", ())) >= len(batch["job_ids"])


def batch_order(place: int) -> str:
    """A job's place in its batch (0-based look position or row number) as the `batch`
    index sorts it."""
    return f"{place:06d}"


def batch_total(batch: dict[str, Any]) -> int:
    return int(batch["total"]) if "total" in batch else len(batch["job_ids"])


def ended_counts(batch: dict[str, Any]) -> dict[str, int]:
    """Terminal status (lowercase) -> how many of the batch's jobs ended so (counters)."""
    return {name.removeprefix(ENDED_PREFIX): int(value) for name, value in batch.items()
            if name.startswith(ENDED_PREFIX)}


def images_made(batch: dict[str, Any], jobs: list[JobRecord] | None) -> dict[str, int]:
    """Model -> the images it made for the batch: from `jobs` when they are all of its
    jobs (the same records its counts come from: a job's end reaches the counters a
    moment after its record), else (None) from its counters."""
    if jobs is None:
        return {name.removeprefix(MADE_PREFIX): int(value) for name, value in batch.items()
                if name.startswith(MADE_PREFIX)}
    made: dict[str, int] = {}
    for job in jobs:
        if job.status == JobStatus.SUCCEEDED and job.model:
            made[job.model] = made.get(job.model, 0) + 1
    return made


def batch_view(batch: dict[str, Any], jobs: list[JobRecord], next_page: str | None = None,
               after: str | None = None) -> dict[str, Any]:
    """A batch as its owner sees it at any time: counts by status, and its jobs (all of
    them, or the page after `after` with `next` for a batch too large to list whole)."""
    counts = batch_counts(batch, jobs if is_whole(after, next_page) else None)
    counts["recorded"] = len(jobs) if is_whole(after, next_page) else None
    # Open until its counters say every job ended (when batch.completed is sent, and a
    # retry may start), though the jobs' own records may show their ends a moment sooner.
    ended = sum(counts[s.value.lower()] for s in TERMINAL_STATUSES) >= counts[
        "total"] and batch_complete(batch)
    return {"batch_id": batch["batch_id"],
            "status": batch_outcome(batch, counts) if ended else "OPEN",
            "attributes": batch.get("attributes") or {}, "counts": counts,
            "jobs": [job_view(job) for job in jobs], "next": next_page}


def is_whole(after: str | None, next_page: str | None) -> bool:
    """A page of a batch's jobs is all of them: the first page, and no next one."""
    return after is None and next_page is None


def batch_counts(batch: dict[str, Any], jobs: list[JobRecord] | None) -> dict[str, Any]:
    """Total, and how many jobs are in each status: from the listed jobs when they are
    all there, else the ended ones from the batch's counters and the rest as `open`."""
    counts: dict[str, Any] = {"total": batch_total(batch)}
    if jobs is not None:
        for status in JobStatus:
            counts[status.value.lower()] = sum(1 for j in jobs if j.status == status)
        return counts
    ended = ended_counts(batch)
    for status in TERMINAL_STATUSES:
        counts[status.value.lower()] = ended.get(status.value.lower(), 0)
    counts["open"] = counts["total"] - sum(ended.values())
    return counts


def batch_outcome(batch: dict[str, Any], counts: dict[str, int]) -> str:
    """How an ended batch went: a batch its owner canceled is CANCELED unless every look
    was made before the cancel reached it (its counts say what was made and saved)."""
    if counts["succeeded"] == counts["total"]:
        return "SUCCEEDED"
    if batch.get("cancel"):
        return "CANCELED"
    return "FAILED" if counts["succeeded"] == 0 else "PARTIAL"


def batch_summary(batch: dict[str, Any], jobs: list[JobRecord] | None
                  ) -> tuple[dict[str, Any], dict[str, str]]:
    """The batch.completed message: counts and, for a batch small enough to list
    (`jobs` given), every look's outcome; a larger one's are on GET /v1/batches/{id}."""
    counts = {k: v for k, v in batch_counts(batch, jobs).items()
              if k == "total" or k in {s.value.lower() for s in TERMINAL_STATUSES}}
    outcome = batch_outcome(batch, counts)
    body = {
        "schema": "tryon.notification/1",
        "event": "batch.completed",
        "batch_id": batch["batch_id"],
        "status": outcome,
        "owner": batch.get("owner"),
        "source": batch.get("source"),
        "attributes": batch.get("attributes") or {},
        "counts": counts,
        "looks": None if jobs is None else [{
            "look_id": job.look_id,
            "job_id": job.job_id,
            "status": job.status.value,
            "model": job.model,
            "result": (job.result or {}).get("uri"),
            "error": job.error,
        } for job in jobs],
    }
    return body, message_attributes(batch.get("attributes") or {}, event="batch.completed",
                                    status=outcome, owner=batch.get("owner"))
