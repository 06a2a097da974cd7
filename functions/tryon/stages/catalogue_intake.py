"""Catalogue files (jobs/<name>.csv or .jsonl, tryon.catalogue): expanded on the
engine, not in one function.

The intake function makes a first pass over the file, streamed: a file too large,
with too many rows or that cannot be read is refused whole (one job.failed, nothing
paid). Otherwise it writes the rows as one canonical CSV (normalized/batches/<batch
id>.csv, a prefix that never triggers intake), records the batch and starts its
expansion: a Step Functions Distributed Map (infra/statemachine/batch_expansion.asl.json)
that hands the rows, 50 at a time, to the batch rows function (`take_rows`), which
makes each row's look a job as a manifest's look is made. A row that is not a look
fails its own job alone."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import Any

from tryon import catalogue
from tryon.catalogue import BatchFileError, Row, RowError
from tryon.job_record import JobStatus
from tryon.jobs import (
    MAX_LISTED_LOOKS,
    NORMALIZED_PREFIX,
    Look,
    Source,
    batch_id_for,
    is_batch_id,
    job_id_for,
    manifest_result_stem,
    named_batch_id,
    owner_of,
    shard_sizes,
)
from tryon.manifest import Manifest, ManifestError
from tryon.stages import intake
from tryon.stages.admission import charge_quota
from tryon.stages.batch_steering import RETRY_OF_METADATA
from tryon.stages.cancellation import CannotCancel, cancel_once
from tryon.stages.completion import end_job
from tryon.stages.context import Context
from tryon.stages.preparation import Checked

log = logging.getLogger(__name__)

CANONICAL_PREFIX = f"{NORMALIZED_PREFIX}batches/"  # never a trigger (template.yaml)
DEFAULT_PRIORITY = "batch"
DUPLICATE = "DuplicateLookId"


def canonical_key(batch_id: str) -> str:
    return f"{CANONICAL_PREFIX}{batch_id}.csv"


def job_key(row: Row) -> str:
    """What the row's job id is made from: its look id, unless it repeats an earlier
    row's (then its own job, apart from the first's)."""
    if row.error and row.error.code == DUPLICATE:
        return f"{row.look_id}#row-{row.number}"
    return row.look_id


# --- the first pass (the intake function) -----------------------------------------

def take_catalogue(ctx: Context, source: Source, received: float) -> list[str]:
    """Check the file, write its canonical CSV, record its batch and start its
    expansion; returns its job ids (in row order). Safe to repeat: a redelivered
    event writes the same file again, finds the batch recorded and the expansion
    started (named by the batch id)."""
    where = f"s3://{source.bucket}/{source.key}"
    described = ctx.storage.describe(source.bucket, source.key, source.version_id)
    if described is None:
        log.info("catalogue file ignored: gone since its event")
        return []
    batch_id = batch_id_for(source)
    recorded = ctx.batches.record(batch_id)
    if recorded and Source(**recorded["source"]) != source:
        # A second upload to a key that names its batch (a form used twice).
        return [intake.reject_upload(
            ctx, source, received, "BatchAlreadyUploaded",
            f"{where}: batch {batch_id} was made from an earlier upload of this key; nothing "
            "was made or paid. Ask POST /v1/batches for a new batch")]
    if described["size"] > catalogue.MAX_BATCH_BYTES:
        return _refuse_file(ctx, source, received, "BatchTooLarge", (
            f"{where}: {described['size']} bytes, over the {catalogue.MAX_BATCH_BYTES} a "
            "catalogue file may have; nothing was made or paid. Split it into smaller files"))
    try:
        rows, attribute_columns = _first_pass(ctx, source)
    except BatchFileError as exc:
        return _refuse_file(ctx, source, received, exc.code,
                            f"{where}: {exc}; nothing was made or paid")
    if not rows:
        return _refuse_file(ctx, source, received, "InvalidBatchFile", (
            f"{where}: no looks (only a header, or blank lines); nothing was made. Write "
            "one look per row under the header"))
    owner = owner_of(source.key)
    who = ctx.integrations.for_quota(owner, ctx.settings.integration_daily_quota) \
        if owner and not recorded else None
    charged = None
    if who:  # an integration's file: its rows count against its quota, before anything
        charged, refusal = charge_quota(ctx, who, len(rows))
        if refusal:
            return _refuse_file(ctx, source, received, "QuotaExceeded",
                                f"{where}: {len(rows)} rows: {refusal}; nothing was made")
    key = canonical_key(batch_id)
    ctx.storage.write(ctx.settings.inbox_bucket, key,
                      catalogue.canonical_csv(rows, attribute_columns), "text/csv")
    job_ids = [job_id_for(source, job_key(row)) for row in rows]
    retry_of = described.get("metadata", {}).get(RETRY_OF_METADATA)
    created = _record_batch(ctx, batch_id, source, job_ids, [row.number for row in rows],
                            owner, received, retry_of=retry_of)
    if charged and not created:  # a redelivery raced this one, and charged it
        ctx.integrations.refund_quota(owner, charged, len(rows))
    ctx.expansions.start(batch_id, {
        "batch": {"batch_id": batch_id, "source": source.as_dict(),
                  "priority": DEFAULT_PRIORITY, "owner": owner, "received": received},
        "bucket": ctx.settings.inbox_bucket, "key": key})
    ctx.count("BatchesExpanded")
    return job_ids


def _refuse_file(ctx: Context, source: Source, received: float, code: str, message: str
                 ) -> list[str]:
    """A file that yields no look: one job ended FAILED with what to fix. A file whose
    key names its batch (POST /v1/batches) makes that batch, of this one job, so that
    GET /v1/batches/{id} says why."""
    if named_batch_id(source.key) is None:
        return [intake.reject_upload(ctx, source, received, code, message)]
    job_id, batch_id = job_id_for(source, "upload"), batch_id_for(source)
    _record_batch(ctx, batch_id, source, [job_id], [0], owner_of(source.key), received)
    intake.refuse_job(ctx, source, job_id, received, {"code": code, "message": message},
                      batch=(batch_id, 0))
    return [job_id]


def _record_batch(ctx: Context, batch_id: str, source: Source, job_ids: list[str],
                  places: list[int], owner: str | None, received: float,
                  retry_of: str | None = None) -> bool:
    """The batch record, made once (a redelivery finds it: False): its summary is sent
    when its last job ends. `retry_of`: the batch whose failed looks it makes again."""
    return ctx.batches.create({
        "batch_id": batch_id, "total": len(job_ids),
        "shards": shard_sizes(places),  # the rows' numbers: their places
        # Few enough to keep (and list in batch.completed); a larger batch's jobs are
        # found by its index (batch_order: the row).
        "job_ids": job_ids if len(job_ids) <= MAX_LISTED_LOOKS else None,
        "source": source.as_dict(), "attributes": {}, "owner": owner,
        **({"retry_of": retry_of} if retry_of and is_batch_id(retry_of) else {})},
        received)


def _first_pass(ctx: Context, source: Source) -> tuple[list[Row], set[str]]:
    """The file's rows, read as they come off the stream; a row repeating an earlier
    row's id marked to fail alone. Raises BatchFileError for a fault of the file."""
    kind = catalogue.kind_of(source.key)
    assert kind
    first_at: dict[str, int] = {}
    rows: list[Row] = []
    attribute_columns: set[str] = set()
    stream = ctx.storage.open_stream(source.bucket, source.key, source.version_id)
    try:
        for row in catalogue.read_rows(stream, kind, ctx.settings.max_batch_looks):
            attribute_columns.update(c for c in row.cells
                                     if c.startswith(catalogue.ATTRIBUTE_PREFIX))
            first = first_at.setdefault(row.look_id, row.number)
            if first != row.number:
                row = replace(row, error=RowError(
                    row.number, "id", f"repeats the id {row.look_id!r} of row {first}: "
                    "give each look its own id (the first row with it is made)",
                    code=DUPLICATE))
            rows.append(row)
    finally:
        stream.close()
    return rows, attribute_columns


# --- the expansion's child (the batch rows function) ---------------------------------

def take_rows(ctx: Context, batch: dict[str, Any], items: list[dict[str, str]]) -> dict:
    """Make each row (an item of the canonical CSV) a job of the batch: a look as a
    manifest's look is made; a row that is not a look a job ended FAILED with what to
    fix. Safe to repeat (a retried child): each job is created once and admitted once."""
    source = Source(**batch["source"])
    received = float(batch.get("received") or ctx.clock())
    batch_id = batch["batch_id"]
    rows = [catalogue.row_of_item(item) for item in items]
    cancel = (ctx.batches.record(batch_id) or {}).get("cancel")
    if cancel:
        return _rows_canceled(ctx, batch, rows, cancel["by"])
    looks: dict[int, Look] = {}
    faults: dict[int, RowError] = {}
    exists: dict[str, bool] = {}
    for row in rows:
        try:
            look = catalogue.look_of(row, ctx.settings.default_model)
            _check_inputs(ctx, source, row, look, exists)
            looks[row.number] = look
        except RowError as exc:
            faults[row.number] = exc
    refusals, priority = intake.look_refusals(ctx, source, Manifest(
        looks=list(looks.values()), is_batch=True,
        pointers={look.look_id: f"row {number}" for number, look in looks.items()},
        attributes={}))
    priority = priority or batch.get("priority") or DEFAULT_PRIORITY
    checked: Checked = {}  # each image checked once for the child's rows
    where = f"s3://{source.bucket}/{source.key}"
    for row in rows:
        job_id = job_id_for(source, job_key(row))
        fault = faults.get(row.number)
        if fault:
            intake.refuse_job(ctx, source, job_id, received, {
                "code": fault.code, "message": f"{where}: {fault}", "row": str(row.number),
                **({"column": fault.column} if fault.column else {})},
                look_id=row.look_id, batch=(batch_id, row.number))
            continue
        look = looks[row.number]
        intake._take_look(ctx, source, look, job_id, received,
                          _result_stem(source, look.look_id, job_id), (batch_id, row.number),
                          checked,
                          None, refusals.get(look.look_id), look.priority or priority)
    return {"rows": len(rows), "refused": len(faults)}


def _rows_canceled(ctx: Context, batch: dict[str, Any], rows: list[Row], by: str) -> dict:
    """The batch was canceled before its expansion reached these rows: each row's job
    ends CANCELED unread (one notification each), counted in the cancel's savings."""
    source = Source(**batch["source"])
    received = float(batch.get("received") or ctx.clock())
    canceled: Counter[str] = Counter()  # model -> looks
    for row in rows:
        job_id = job_id_for(source, job_key(row))
        job = ctx.jobs.get(job_id)  # made by an attempt before the cancel: canceled as any
        if job is None:
            ended_here = intake.refuse_job(ctx, source, job_id, received, {
                "code": "Canceled", "message": f"canceled by {by} before its row was read; "
                "nothing was paid"}, look_id=row.look_id,
                batch=(batch["batch_id"], row.number), status=JobStatus.CANCELED)
        else:
            try:
                ended_here = not job.ended and cancel_once(ctx, job_id, by)[1]
            except CannotCancel:
                continue
        if ended_here:  # counted once, by whoever ended it (a retried child counts none)
            canceled[row.cells.get("model") or ctx.settings.default_model] += 1
    ctx.batches.add_canceled(batch["batch_id"], dict(canceled))
    return {"rows": len(rows), "refused": 0, "canceled": sum(canceled.values())}


def rows_failed(ctx: Context, batch: dict[str, Any], items: list[dict[str, str]],
                failure: dict[str, Any]) -> dict:
    """The child failed at every attempt (its Catch): each of its rows' jobs that no
    attempt recorded, or left RECEIVED, ends FAILED (one notification each), so that
    the batch completes; a job an attempt admitted or ended goes on as it was."""
    source = Source(**batch["source"])
    received = float(batch.get("received") or ctx.clock())
    why = (f"{failure.get('Error') or 'an error'}: {failure.get('Cause') or ''}")[:500]
    failed = 0
    for row in map(catalogue.row_of_item, items):
        job_id = job_id_for(source, job_key(row))
        error = {"code": "IntakeFailed", "row": str(row.number), "message": (
            f"s3://{source.bucket}/{source.key}: row {row.number}: the batch rows function "
            f"failed at every attempt and gave up; the last error: {why}. Nothing more "
            "will be tried: upload the row again in a new file")}
        job = ctx.jobs.get(job_id)
        if job is None:
            intake.refuse_job(ctx, source, job_id, received, error, look_id=row.look_id,
                              batch=(batch["batch_id"], row.number))
        elif job.status == JobStatus.RECEIVED:
            end_job(ctx, job_id, JobStatus.FAILED, error=error)
        else:
            continue
        failed += 1
    return {"rows": len(items), "refused": failed}


def _check_inputs(ctx: Context, source: Source, row: Row, look: Look,
                  exists: dict[str, bool]) -> None:
    """The manifest's rules for the images a look names, for one row: an API
    integration's uploads only in its own files, and every image there."""
    one = Manifest(looks=[look], is_batch=False, pointers={look.look_id: ""}, attributes={})
    try:
        intake._check_inputs_owned(source, one)
    except ManifestError as exc:
        raise RowError(row.number, exc.pointer.rsplit("/", 1)[-1] or None,
                       str(exc).rsplit(" (at ", 1)[0], code=exc.code) from None
    for role, key in look.inputs().items():
        if key not in exists:
            exists[key] = ctx.storage.describe(source.bucket, key) is not None
        if not exists[key]:
            column = "dress" if role == "top" and look.top_is_dress else role
            raise RowError(row.number, column, f"s3://{source.bucket}/{key} does not exist; "
                           "upload the image before the file, or fix the key",
                           code="MissingInput")


def _result_stem(source: Source, look_id: str, job_id: str) -> str:
    """looks/<file path under jobs/, without its suffix>/<look id>-<job id>, as a
    manifest's looks are stored."""
    suffix = next(s for s in catalogue.KINDS if source.key.lower().endswith(s))
    return manifest_result_stem(replace(source, key=source.key[:-len(suffix)]), look_id,
                                job_id)
