"""Intake: an upload (a manifest, or a garment in the drop folder) becomes looks,
each look a job recorded before anything is paid for; its inputs are prepared
for its model, then it is admitted (and handed to the submit function) or queued.
This is the only stage that decodes uploads, and its function cannot read the
provider key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from tryon import catalogue
from tryon.adapters.slots import PRIORITIES
from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import (
    MANIFEST_PREFIX,
    MAX_LISTED_LOOKS,
    ROSTER_PREFIX,
    UPLOADS_PREFIX,
    DroppedGarment,
    Look,
    Source,
    batch_id_for,
    batch_order,
    drop_result_stem,
    dropped_garment,
    every_batch_job,
    job_id_for,
    manifest_result_stem,
    owner_fields,
    owner_of,
    roster_looks,
    shard_sizes,
    unique_looks,
)
from tryon.manifest import (
    MAX_MANIFEST_BYTES,
    Manifest,
    ManifestError,
    instruction_refusals,
    parse_manifest,
    priority_refusals,
)
from tryon.models.registry import model_spec
from tryon.preflight import InputRejected
from tryon.stages.admission import admit_or_queue
from tryon.stages.completion import end_job
from tryon.stages.context import Context
from tryon.stages.fallback import model_for_look
from tryon.stages.preparation import Checked, prepare_inputs
from tryon.stages.submit import resume

log = logging.getLogger(__name__)


def take_upload(ctx: Context, source: Source) -> list[str]:
    """Turn an upload into jobs; returns the ids of the jobs it concerns."""
    received = ctx.clock()
    if source.bucket != ctx.settings.inbox_bucket:
        # Whoever can send to the intake queue could name any bucket the role reads.
        log.warning("upload ignored: not in the inbox bucket", extra={"bucket": source.bucket})
        return []
    if source.key.endswith("/"):  # a "folder" placeholder made by a console or tool
        return []
    if source.key.startswith(MANIFEST_PREFIX) and catalogue.kind_of(source.key):
        # A catalogue file (jobs/<name>.csv or .jsonl): its rows are expanded by the
        # batch state machine, not here (imported here: that stage reuses this one's).
        from tryon.stages.catalogue_intake import take_catalogue
        return take_catalogue(ctx, source, received)
    if source.key.startswith(MANIFEST_PREFIX):
        return _take_manifest(ctx, source, received)
    garment = dropped_garment(source.key)
    if garment:
        return _take_drop(ctx, source, garment, received)
    log.info("upload ignored: neither jobs/*.json nor garments/{top,bottom,dress}/<sku>.<ext>")
    return []


def _take_manifest(ctx: Context, source: Source, received: float) -> list[str]:
    try:
        manifest = parse_manifest(ctx.storage.read(source.bucket, source.key,
                                                   source.version_id, MAX_MANIFEST_BYTES),
                                  ctx.settings.default_model)
        _check_inputs_owned(source, manifest)
        _check_inputs_exist(ctx, source.bucket, manifest)
    except ManifestError as exc:
        message = f"s3://{source.bucket}/{source.key}: {exc}"
        return [reject_upload(ctx, source, received, exc.code, message, pointer=exc.pointer)]
    refusals, priority = look_refusals(ctx, source, manifest)
    return _take_looks(ctx, source, manifest.looks,
                       lambda look_id, job_id: manifest_result_stem(source, look_id, job_id),
                       received, batch=manifest.is_batch, attributes=manifest.attributes,
                       refusals=refusals, priority=priority)


def look_refusals(ctx: Context, source: Source, manifest: Manifest
                  ) -> tuple[dict[str, dict], str | None]:
    """Look id -> the error its job ends with (a priority or an instruction its writer
    may not use), and the looks' default priority (None: the usual one)."""
    owner = owner_of(source.key)
    # What the operator set for the integration whose API request wrote it (or the
    # operator's retry of its job). Checked here as well as by the API: whoever may
    # write to the bucket may write under jobs/api/.
    settings = ctx.integrations.settings(owner) if owner else {}
    allowed = tuple(settings.get("priorities") or PRIORITIES)
    refusals = {**_look_errors(source, "PriorityNotAllowed",
                               priority_refusals(manifest, allowed, owner)),
                **_look_errors(source, "InstructionNotAllowed",
                               _instruction_refusals(ctx, manifest, owner, settings))}
    # Its default where it may not use both.
    return refusals, None if len(allowed) == len(PRIORITIES) else allowed[0]


def _instruction_refusals(ctx: Context, manifest: Manifest, owner: str | None,
                          settings: dict) -> dict[str, str]:
    """Look id -> why its instruction is refused: allowed per integration for the
    manifests its API requests write (`settings`), per stack for any other."""
    allowed = (settings.get("allow_instruction") if owner
               else ctx.settings.allow_manifest_instructions)
    return {} if allowed else instruction_refusals(manifest, owner)


def _look_errors(source: Source, code: str, reasons: dict[str, str]) -> dict[str, dict]:
    """Look id -> the error its job ends with."""
    return {look_id: {"code": code, "message": f"s3://{source.bucket}/{source.key}: {why}"}
            for look_id, why in reasons.items()}


def _check_inputs_owned(source: Source, manifest: Manifest) -> None:
    """An integration's uploads (uploads/<integration>/) may be named only by that
    integration's own manifests (jobs/api/<integration>/): not by another's, nor by
    a manifest a bucket writer puts elsewhere under jobs/."""
    owner = owner_of(source.key)
    own = f"{UPLOADS_PREFIX}{owner}/" if owner else None
    for pointer, key in _named_inputs(manifest):
        if key.startswith(UPLOADS_PREFIX) and not (own and key.startswith(own)):
            raise ManifestError(
                pointer, f"{key} is an API integration's upload, which only that "
                "integration's requests may name; put the image elsewhere in the bucket "
                "(e.g. under models/ or garments/) and name that key", code="ForeignInput")


def _check_inputs_exist(ctx: Context, bucket: str, manifest: Manifest) -> None:
    """A manifest naming a missing image is rejected whole, before any job starts."""
    for pointer, key in _named_inputs(manifest):
        if ctx.storage.describe(bucket, key) is None:
            raise ManifestError(
                pointer, f"s3://{bucket}/{key} does not exist; upload the image before the "
                "manifest, or fix the key", code="MissingInput")


def _named_inputs(manifest: Manifest) -> Iterator[tuple[str, str]]:
    """Each image key the manifest names, with the JSON pointer of the field naming it."""
    for look in manifest.looks:
        for role, key in look.inputs().items():
            field_name = "dress" if role == "top" and look.top_is_dress else role
            yield f"{manifest.pointers[look.look_id]}/{field_name}", key


def upload_job_ids(ctx: Context, source: Source) -> list[str]:
    """The ids of the jobs an upload makes (or made), worked out again without
    side effects; [] when the upload cannot be read or expanded (any more)."""
    batch = ctx.batches.get(batch_id_for(source))
    if batch:  # its ids, made or not; a large batch's, those made (its index)
        return (list(batch["job_ids"]) if batch.get("job_ids") is not None
                else [job.job_id for job in every_batch_job(ctx.jobs, batch)])
    if not source.key.startswith(MANIFEST_PREFIX) or catalogue.kind_of(source.key):
        # A drop, or a catalogue file, is always a batch: without its batch item, no
        # job was made.
        return []
    try:
        looks = parse_manifest(ctx.storage.read(source.bucket, source.key, source.version_id,
                                                MAX_MANIFEST_BYTES),
                               ctx.settings.default_model).looks
    except Exception:  # the cause of the failure, most likely
        log.warning("upload not expanded again", exc_info=True)
        return []
    return [job_id_for(source, look.look_id) for look in unique_looks(looks)[0]]


def _take_drop(ctx: Context, source: Source, garment: DroppedGarment,
               received: float) -> list[str]:
    roster = [o["key"] for o in ctx.storage.list_keys(source.bucket, ROSTER_PREFIX)
              if not o["key"].endswith("/") and o["size"] > 0]
    if not roster:
        return [reject_upload(
            ctx, source, received, "EmptyRoster",
            f"s3://{source.bucket}/{source.key}: no person photos under {ROSTER_PREFIX}; "
            f"upload at least one to {ROSTER_PREFIX} and drop the garment again")]
    limit = ctx.settings.max_roster_size
    if len(roster) > limit:
        # One drop bills one image per roster photo: a roster grown by mistake (a
        # folder of thousands) must not turn one upload into thousands of images.
        return [reject_upload(
            ctx, source, received, "RosterTooLarge",
            f"s3://{source.bucket}/{source.key}: the roster under {ROSTER_PREFIX} has "
            f"{len(roster)} person photos, over the limit of {limit} looks per drop "
            f"(MaxRosterSize); nothing was made or paid. Remove photos from "
            f"{ROSTER_PREFIX}, raise MaxRosterSize, or name the looks in a manifest "
            "under jobs/")]
    looks = roster_looks(garment, roster, ctx.settings.default_model)
    return _take_looks(ctx, source, looks,
                       lambda look_id, job_id: drop_result_stem(garment, look_id, job_id),
                       received, batch=True,
                       attributes={"sku": garment.sku}, priority="batch")


def reject_upload(ctx: Context, source: Source, received: float, code: str, message: str,
                   **details: str) -> str:
    """An upload that yields no look at all still gets a record and a notification."""
    job_id = job_id_for(source, "upload")
    refuse_job(ctx, source, job_id, received, {"code": code, "message": message, **details})
    return job_id


def refuse_job(ctx: Context, source: Source, job_id: str, received: float, error: dict,
               *, look_id: str | None = None, batch: tuple[str, int] | None = None,
               status: JobStatus = JobStatus.FAILED) -> bool:
    """A job recorded and ended FAILED (or `status`) with `error` before anything was
    read or paid (one notification; safe to repeat): a refused upload, or a catalogue
    row that is not a look or whose batch was canceled (`batch`: its batch's id and its
    place in it). True if this call ended it."""
    ctx.on_job(job_id)
    ctx.jobs.create(JobRecord(job_id=job_id, status=JobStatus.RECEIVED, look_id=look_id,
                              batch_id=batch[0] if batch else None,
                              batch_order=batch_order(batch[1]) if batch else None,
                              source=source.as_dict(),
                              timeline={"received": received},
                              **owner_fields(source.key, received, job_id)), received)
    return end_job(ctx, job_id, status, error=error)


def _take_looks(ctx: Context, source: Source, looks: list[Look],
                result_stem: Callable[[str, str], str], received: float, *, batch: bool,
                attributes: dict[str, str], refusals: dict[str, dict] | None = None,
                priority: str | None = None) -> list[str]:
    """`refusals`: look id -> the error its job ends with, recorded but never prepared;
    the other looks go on. `priority`: the looks' default (else interactive for one look
    alone, batch for more)."""
    priority = priority or ("batch" if len(looks) > 1 else "interactive")
    looks, repeats = unique_looks(looks)
    job_ids = [job_id_for(source, look.look_id) for look in looks]
    batch_id = batch_id_for(source) if batch else None
    if batch_id:
        ctx.batches.create({"batch_id": batch_id, "total": len(job_ids),
                            "shards": shard_sizes(range(len(job_ids))),
                            # Few enough to keep (and list in batch.completed).
                            "job_ids": job_ids if len(job_ids) <= MAX_LISTED_LOOKS else None,
                            "source": source.as_dict(), "attributes": attributes,
                            "owner": owner_of(source.key)}, received)
    checked: Checked = {}  # each image is checked once per set of rules
    for place, (look, job_id) in enumerate(zip(looks, job_ids, strict=True)):
        _take_look(ctx, source, look, job_id, received, result_stem(look.look_id, job_id),
                   (batch_id, place) if batch_id else None, checked, repeats.get(look.look_id),
                   (refusals or {}).get(look.look_id), look.priority or priority)
    return job_ids


def _take_look(ctx: Context, source: Source, look: Look, job_id: str, received: float,
               result_stem: str, batch: tuple[str, int] | None, checked: Checked,
               duplicate_looks: list[str] | None, refusal: dict | None,
               priority: str) -> None:
    """`batch`: its batch's id and the look's place in it."""
    ctx.on_job(job_id)
    model, requested_model = model_for_look(ctx, look.model)
    created = ctx.jobs.create(JobRecord(
        job_id=job_id,
        status=JobStatus.RECEIVED,
        look_id=look.look_id,
        batch_id=batch[0] if batch else None,
        batch_order=batch_order(batch[1]) if batch else None,
        model=model,
        requested_model=requested_model,
        source=source.as_dict(),
        inputs={role: f"s3://{source.bucket}/{key}" for role, key in look.inputs().items()},
        top_is_dress=look.top_is_dress or None,
        parameters=look.parameters(),
        keep=look.keep,
        instruction=look.instruction,
        attributes=dict(look.attributes),
        result_stem=result_stem,
        duplicate_looks=duplicate_looks,  # made once, for these look ids too
        priority=priority,
        timeline={"received": received},
        **owner_fields(source.key, received, job_id),
    ), received)
    if not created:
        existing = ctx.jobs.get(job_id)
        if existing is None or existing.status != JobStatus.RECEIVED:
            if existing:  # an earlier delivery may have died before its hand-off
                resume(ctx, existing)
            log.info("duplicate delivery ignored",
                     extra={"job_status": existing and existing.status})
            return
    if refusal:
        end_job(ctx, job_id, JobStatus.FAILED, error=refusal)
        return
    try:
        # The upload that triggered this (a dropped garment) is read at the version
        # its event named, whatever was uploaded over it since.
        fields = prepare_inputs(ctx, source.bucket, look.inputs(),
                                model_spec(model).input_rules, checked,
                                {source.key: source.version_id} if source.version_id else None)
    except InputRejected as exc:
        end_job(ctx, job_id, JobStatus.FAILED, error=exc.as_error())
        return
    # Only one delivery moves the job on from RECEIVED: it alone submits or queues.
    if admit_or_queue(ctx, job_id, model, expect=[JobStatus.RECEIVED], priority=priority,
                      owner=owner_of(source.key), **fields):
        ctx.admissions.send([job_id])
