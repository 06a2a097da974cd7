"""The pipeline's use cases: take an upload in, poll a task, store a result,
record a failure. Adapters are passed in, so this module knows nothing about
Lambda and tests can run it against moto and the provider emulator."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tryon.jobs import (
    MANIFEST_PREFIX,
    NORMALIZED_PREFIX,
    ROSTER_PREFIX,
    TERMINAL_STATUSES,
    DroppedGarment,
    JobStatus,
    Look,
    Source,
    batch_summary,
    drop_result_stem,
    dropped_garment,
    first_poll_delay,
    job_id_for,
    manifest_result_stem,
    next_poll_delay,
    notification_for,
    roster_looks,
)
from tryon.manifest import Manifest, ManifestError, parse_manifest
from tryon.messaging import Notifier, Workflow
from tryon.preflight import MAX_INPUT_BYTES, InputRejected, Prepared, prepare_image
from tryon.provider import (
    FAILED_STATUSES,
    PARSING_MODEL,
    DashScopeClient,
    ProviderError,
    TaskState,
    TryOnRequest,
)
from tryon.settings import Settings
from tryon.storage import ObjectStorage
from tryon.store import JobStore

log = logging.getLogger(__name__)

PROVIDER_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 8.0
OPEN_STATUSES = [s.value for s in JobStatus if s not in TERMINAL_STATUSES]
KEPT_CLOTHES_TYPE = {"top": "upper", "bottom": "lower"}
T = TypeVar("T")


class SubmitDeferred(Exception):
    """The provider stayed busy: the upload's message is retried later by SQS."""


@dataclass(frozen=True)
class ReadyInput:
    """An input that passed preflight, and where its (possibly fixed) bytes live."""

    bucket: str
    key: str
    image: Prepared


class LookFailed(Exception):
    """A look that cannot go on; `error` is what its job records and notifies."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.error = {"code": code, "message": message}


@dataclass
class Pipeline:
    settings: Settings
    store: JobStore
    storage: ObjectStorage
    notifier: Notifier
    workflow: Workflow
    provider: Callable[[], DashScopeClient]
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    on_job: Callable[[str], None] = field(default=lambda job_id: None)

    # --- intake -----------------------------------------------------------

    def take_upload(self, source: Source) -> list[str]:
        """Turn an upload into jobs; returns the ids of the jobs it concerns."""
        received = self.clock()
        if source.key.endswith("/"):  # a "folder" placeholder made by a console or tool
            return []
        if source.key.startswith(MANIFEST_PREFIX):
            return self._take_manifest(source, received)
        garment = dropped_garment(source.key)
        if garment:
            return self._take_drop(source, garment, received)
        log.info("upload ignored: neither jobs/*.json nor garments/{top,bottom,dress}/<sku>.<ext>")
        return []

    def _take_manifest(self, source: Source, received: float) -> list[str]:
        try:
            manifest = parse_manifest(self.storage.read(source.bucket, source.key,
                                                        source.version_id),
                                      self.settings.default_model)
            self._check_inputs_exist(source.bucket, manifest)
        except ManifestError as exc:
            message = f"s3://{source.bucket}/{source.key}: {exc}"
            return [self._reject_upload(source, received, exc.code, message,
                                        pointer=exc.pointer)]
        stems = {look.look_id: manifest_result_stem(source, look.look_id)
                 for look in manifest.looks}
        return self._take_looks(source, manifest.looks, stems, received,
                                batch=manifest.is_batch, attributes=manifest.attributes)

    def _check_inputs_exist(self, bucket: str, manifest: Manifest) -> None:
        """A manifest naming a missing image is rejected whole, before any job starts."""
        for look in manifest.looks:
            for role, key in look.inputs().items():
                if self.storage.describe(bucket, key) is None:
                    field_name = "dress" if role == "top" and look.top_is_dress else role
                    raise ManifestError(
                        f"{manifest.pointers[look.look_id]}/{field_name}",
                        f"s3://{bucket}/{key} does not exist; upload the image before the "
                        "manifest, or fix the key", code="MissingInput")

    def _take_drop(self, source: Source, garment: DroppedGarment, received: float) -> list[str]:
        roster = [o["key"] for o in self.storage.list_keys(source.bucket, ROSTER_PREFIX)
                  if not o["key"].endswith("/") and o["size"] > 0]
        if not roster:
            return [self._reject_upload(
                source, received, "EmptyRoster",
                f"s3://{source.bucket}/{source.key}: no person photos under {ROSTER_PREFIX}; "
                f"upload at least one to {ROSTER_PREFIX} and drop the garment again")]
        looks = roster_looks(garment, roster, self.settings.default_model)
        stems = {look.look_id: drop_result_stem(garment, look.look_id) for look in looks}
        return self._take_looks(source, looks, stems, received, batch=True,
                                attributes={"sku": garment.sku})

    def _reject_upload(self, source: Source, received: float, code: str, message: str,
                       **details: str) -> str:
        """An upload that yields no look at all still gets a record and a notification."""
        job_id = job_id_for(source, "upload")
        self.on_job(job_id)
        self.store.create({"job_id": job_id, "status": JobStatus.RECEIVED,
                           "source": source.as_dict(), "timeline": {"received": received}},
                          received)
        self.end_job(job_id, JobStatus.FAILED, error={"code": code, "message": message,
                                                      **details})
        return job_id

    def _take_looks(self, source: Source, looks: list[Look], stems: dict[str, str],
                    received: float, *, batch: bool, attributes: dict[str, str]) -> list[str]:
        job_ids = [job_id_for(source, look.look_id) for look in looks]
        batch_id = job_id_for(source, "batch") if batch else None
        if batch_id:
            self.store.create_batch({"batch_id": batch_id, "job_ids": job_ids,
                                     "source": source.as_dict(), "attributes": attributes},
                                    received)
        checked: dict[str, ReadyInput | InputRejected] = {}  # each image is checked once
        for look, job_id in zip(looks, job_ids, strict=True):
            self._take_look(source, look, job_id, received, stems[look.look_id], batch_id,
                           checked)
        return job_ids

    def _take_look(self, source: Source, look: Look, job_id: str, received: float,
                  result_stem: str, batch_id: str | None,
                  checked: dict[str, ReadyInput | InputRejected]) -> None:
        self.on_job(job_id)
        created = self.store.create(
            {
                "job_id": job_id,
                "status": JobStatus.RECEIVED,
                "look_id": look.look_id,
                "batch_id": batch_id,
                "model": look.model,
                "source": source.as_dict(),
                "inputs": {role: f"s3://{source.bucket}/{key}"
                           for role, key in look.inputs().items()},
                "parameters": look.parameters(),
                "keep": look.keep,
                "attributes": dict(look.attributes),
                "result_stem": result_stem,
                "polls": 0,
                "timeline": {"received": received},
            },
            received,
        )
        if not created:
            existing = self.store.get(job_id) or {}
            status = existing.get("status")
            if status == JobStatus.SUBMITTED and not existing.get("execution_arn"):
                self._start_polling(existing)  # an earlier delivery died before this step
            if status != JobStatus.RECEIVED:
                log.info("duplicate delivery ignored", extra={"job_status": status})
                return
        try:
            ready = {role: self._prepare(source.bucket, key, checked)
                     for role, key in look.inputs().items()}
        except InputRejected as exc:
            self.end_job(job_id, JobStatus.FAILED, error=exc.as_error())
            return
        normalized = {role: {"key": r.key, "fixes": list(r.image.fixes)}
                      for role, r in ready.items() if r.image.changed}
        # Only one delivery may move RECEIVED -> SUBMITTING: it alone calls the provider.
        if not self.store.update(job_id, fields={"status": JobStatus.SUBMITTING,
                                                 "normalized": normalized or None},
                                 only_if_status=[JobStatus.RECEIVED]):
            return
        try:
            self._submit(job_id, look, ready)
        except LookFailed as exc:
            self.end_job(job_id, JobStatus.FAILED, error=exc.error)

    def _prepare(self, bucket: str, key: str,
                 cache: dict[str, ReadyInput | InputRejected]) -> ReadyInput:
        """Check an input by content, fix what can be fixed, and store the fixed copy
        under normalized/ (a prefix that never triggers the pipeline)."""
        if key not in cache:
            cache[key] = self._prepare_uncached(bucket, key)
        outcome = cache[key]
        if isinstance(outcome, InputRejected):
            raise outcome
        return outcome

    def _prepare_uncached(self, bucket: str, key: str) -> ReadyInput | InputRejected:
        described = self.storage.describe(bucket, key)
        if described is None:
            return InputRejected("MissingInput", f"{key}: the image does not exist (any more); "
                                 "upload it again")
        if described["size"] > MAX_INPUT_BYTES:
            return InputRejected.oversized(key, described["size"])
        try:
            prepared = prepare_image(key, self.storage.read(bucket, key))
        except InputRejected as exc:
            return exc
        if not prepared.changed:
            return ReadyInput(bucket, key, prepared)
        digest = hashlib.sha256(f"{bucket}/{key}@{described['etag']}".encode()).hexdigest()
        normalized_key = f"{NORMALIZED_PREFIX}{digest[:32]}.{prepared.extension}"
        self.storage.write(bucket, normalized_key, prepared.data, prepared.content_type,
                           metadata={"source-key": key.encode("ascii", "replace").decode()})
        return ReadyInput(bucket, normalized_key, prepared)

    def _submit(self, job_id: str, look: Look, ready: dict[str, ReadyInput]) -> None:
        client = self.provider()
        urls = {role: self._input_url(client, look.model, job_id, role, ready_input)
                for role, ready_input in ready.items()}
        oss = self.settings.input_transport == "provider-upload"
        if look.keep:
            # An uploaded file serves only the model named when it was uploaded.
            person_url = (self._input_url(client, PARSING_MODEL, job_id, "person-parsing",
                                          ready["person"]) if oss else urls["person"])
            urls[look.keep] = self._kept_garment(client, job_id, look, person_url, oss)
        request = TryOnRequest(
            model=look.model,
            person_image_url=urls["person"],
            top_garment_url=urls.get("top"),
            bottom_garment_url=urls.get("bottom"),
            resolution=look.resolution,
            restore_face=look.restore_face,
        )

        def submit() -> Any:
            self.store.update(job_id, increment={"submit_attempts": 1},
                              timeline={"submitting": self.clock()})
            return client.submit(request, oss_resolve=oss)

        task = self._call_provider(job_id, "submit", submit)
        self.store.update(
            job_id,
            fields={"status": JobStatus.SUBMITTED, "provider_task_id": task.task_id,
                    "provider_status": task.status, "last_submit_request_id": task.request_id},
            timeline={"submitted": self.clock()},
            remove=["error"],
        )
        self._start_polling(self.store.get(job_id))

    def _input_url(self, client: DashScopeClient, model: str, job_id: str, role: str,
                   ready: ReadyInput) -> str:
        """How the provider gets an input: a presigned S3 URL (default) or the
        provider's own temporary upload (`oss://`), per the InputTransport setting."""
        if self.settings.input_transport == "provider-upload":
            image = ready.image
            filename = f"{job_id}-{role}.{image.extension}"
            return self._call_provider(job_id, "upload", lambda: client.upload(
                model, filename, image.data, image.content_type))
        return self.storage.presign_get(ready.bucket, ready.key,
                                        self.settings.input_url_ttl_seconds)

    def _kept_garment(self, client: DashScopeClient, job_id: str, look: Look,
                      person_url: str, oss: bool) -> str:
        """Keep the person's own top or bottom: the parsing model cuts it out of the
        person photo, and its crop goes to try-on as that garment."""
        kind = KEPT_CLOTHES_TYPE[look.keep]
        parsed = self._call_provider(job_id, "parsing", lambda: client.parse_garment(
            person_url, kind, oss_resolve=oss))
        if parsed is None:
            raise LookFailed("KeptGarmentNotFound",
                             f"{look.person}: no {look.keep} garment found on the person image "
                             f"to keep; give a {look.keep} instead of keep: {look.keep!r}")
        self.store.update(job_id, fields={"kept_garment": {"slot": look.keep,
                                                           "bbox": parsed.bbox}})
        return parsed.crop_url

    def _call_provider(self, job_id: str, call: str, attempt: Callable[[], T]) -> T:
        """Bounded retries with full-jitter backoff for throttling and server errors."""
        for number in range(1, PROVIDER_ATTEMPTS + 1):
            try:
                return attempt()
            except ProviderError as exc:
                self._record_request(job_id, call, exc.request_id)
                if not exc.outcome_known:
                    # The provider may have created (and will bill) a task we cannot
                    # see: never resubmit blindly. Reconciliation comes with admission.
                    raise LookFailed("SubmitOutcomeUnknown",
                                     f"no answer to the {call} ({exc.message}); not repeated "
                                     "to avoid paying twice") from None
                if not exc.retryable:
                    raise LookFailed(exc.code, exc.message) from None
                log.warning("provider busy", extra={"call": call, "attempt": number,
                                                    "code": exc.code})
                if number == PROVIDER_ATTEMPTS:
                    # Nothing was created: hand the job back so SQS retries it later.
                    self.store.update(job_id, fields={"status": JobStatus.RECEIVED,
                                                      "error": exc.as_error()})
                    raise SubmitDeferred(f"job {job_id}: {exc}") from None
                self.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS,
                                                 BACKOFF_BASE_SECONDS * 2 ** (number - 1))))
        raise AssertionError("unreachable")

    def _start_polling(self, job: dict[str, Any]) -> None:
        submitted = job["timeline"].get("submitted", self.clock())
        execution_arn = self.workflow.start(job["job_id"], {
            "job_id": job["job_id"],
            "task_id": job["provider_task_id"],
            "model": job["model"],
            "deadline": int(submitted + self.settings.poll_deadline_seconds),
            "next_delay": first_poll_delay(job["model"]),
            "polls": job.get("polls", 0),
        })
        self.store.update(job["job_id"], fields={"execution_arn": execution_arn})

    def _record_request(self, job_id: str, call: str, request_id: str | None) -> None:
        if request_id:
            self.store.update(job_id, fields={f"last_{call}_request_id": request_id})

    # --- the wait loop ----------------------------------------------------

    def poll(self, state: dict[str, Any]) -> dict[str, Any]:
        """Query the task once; the answer's `status` drives the state machine."""
        job_id, now = state["job_id"], self.clock()
        client = self.provider()
        try:
            task = client.query(state["task_id"])
        except ProviderError as exc:
            self._record_request(job_id, "query", exc.request_id)
            if exc.retryable:
                raise  # the state machine retries with backoff
            return {**state, "status": JobStatus.FAILED.value, "error": exc.as_error()}
        polls = state.get("polls", 0) + 1
        self.store.update(
            job_id,
            fields={"provider_status": task.status, "polls": polls,
                    "last_query_request_id": task.request_id},
            timeline=_provider_timeline(task),
        )
        out = {**state, "polls": polls, "status": task.status}
        if task.status == "SUCCEEDED":
            return {**out, "image_url": task.image_url}
        if task.status in FAILED_STATUSES:
            return {**out, "error": _task_error(task)}
        if now >= state["deadline"]:
            return {**out, "status": JobStatus.TIMED_OUT.value,
                    "error": self._give_up(client, task)}
        return {**out, "next_delay": next_poll_delay(now, state["deadline"])}

    def _give_up(self, client: DashScopeClient, task: TaskState) -> dict[str, str]:
        message = (f"no result before the job's deadline "
                   f"({self.settings.poll_deadline_seconds} s); provider status {task.status}")
        if task.status == "PENDING":
            try:
                client.cancel(task.task_id)
                message += "; the queued provider task was canceled (not billed)"
            except ProviderError as exc:
                message += f"; cancel failed: {exc.code}"
        return {"code": "DeadlineExceeded", "message": message}

    # --- endings ----------------------------------------------------------

    def finalize(self, state: dict[str, Any]) -> dict[str, Any]:
        """Copy the result into the results bucket (before its URL expires), write its
        sidecar, and notify."""
        job_id = state["job_id"]
        job = self.store.get(job_id)
        bucket = self.settings.results_bucket
        result = self.storage.copy_from_url(
            state["image_url"], bucket, job["result_stem"],
            metadata={"job-id": job_id, "provider-task-id": state["task_id"]},
        )
        sidecar_key = f"{job['result_stem']}.json"
        self.storage.write(bucket, sidecar_key, json.dumps(
            _sidecar(job, result, self.clock()), indent=2, sort_keys=True).encode(),
            "application/json", metadata={"job-id": job_id})
        result["sidecar"] = f"s3://{bucket}/{sidecar_key}"
        self.end_job(job_id, JobStatus.SUCCEEDED, result=result)
        return {"job_id": job_id, "status": JobStatus.SUCCEEDED.value, "result": result}

    def record_failure(self, state: dict[str, Any]) -> dict[str, Any]:
        """End a job from the failure path: a provider failure, a deadline, or a caught error."""
        if "failure" in state:  # an error the state machine caught
            failure = state["failure"]
            error = {"code": failure.get("Error", "States.TaskFailed"),
                     "message": _cause_message(failure.get("Cause"))}
            status = JobStatus.FAILED
        else:
            error = state.get("error") or {"code": state.get("status", "Unknown"),
                                           "message": "the provider task did not succeed"}
            status = (JobStatus.TIMED_OUT if state.get("status") == JobStatus.TIMED_OUT
                      else JobStatus.FAILED)
        self.end_job(state["job_id"], status, error=error)
        return {"job_id": state["job_id"], "status": status.value, "error": error}

    def end_job(self, job_id: str, status: JobStatus, *, error: dict | None = None,
                result: dict | None = None) -> None:
        """Move a job to its terminal status (once) and send exactly one notification;
        the last job of a batch also sends the batch's summary."""
        now = self.clock()
        self.store.update(job_id, fields={"status": status, "error": error, "result": result},
                          timeline={"finalized": now}, only_if_status=OPEN_STATUSES)
        job = self.store.get(job_id)
        # Claim the notification first; give the claim back if publishing fails so a
        # retry of this step publishes instead.
        if self.store.update(job_id, fields={"notified_at": now}, only_if_absent="notified_at"):
            try:
                self.notifier.publish(*notification_for(job))
            except Exception:
                self.store.update(job_id, remove=["notified_at"])
                raise
        if job.get("batch_id"):
            self._end_batch_job(job["batch_id"], job_id, now)

    def _end_batch_job(self, batch_id: str, job_id: str, now: float) -> None:
        batch = self.store.record_batch_end(batch_id, job_id)
        if len(batch.get("ended_jobs", ())) < len(batch["job_ids"]):
            return
        if not self.store.claim_batch_notification(batch_id, now):
            return
        try:
            self.notifier.publish(*batch_summary(batch, self.store.get_jobs(batch["job_ids"])))
        except Exception:
            self.store.release_batch_notification(batch_id)
            raise


def _sidecar(job: dict[str, Any], result: dict[str, Any], now: float) -> dict[str, Any]:
    """What a person or a script needs to know about a stored result."""
    return {
        "job_id": job["job_id"],
        "look_id": job.get("look_id"),
        "batch_id": job.get("batch_id"),
        "source": job.get("source"),
        "inputs": job.get("inputs"),
        "normalized": job.get("normalized"),
        "kept_garment": job.get("kept_garment"),
        "model": job.get("model"),
        "parameters": job.get("parameters"),
        "attributes": job.get("attributes"),
        "provider_task_id": job.get("provider_task_id"),
        "result": {k: result[k] for k in ("uri", "bytes", "content_type")},
        "timings": {**job.get("timeline", {}), "finalized": now},
        "polls": job.get("polls", 0),
    }


def _provider_timeline(task: TaskState) -> dict[str, float]:
    times = {"provider_submit": task.submit_time, "provider_start": task.scheduled_time,
             "provider_end": task.end_time}
    return {name: at for name, at in times.items() if at is not None}


def _task_error(task: TaskState) -> dict[str, str]:
    if task.status == "FAILED":
        return {"code": task.code or "TaskFailed",
                "message": task.message or "the provider reported FAILED without a message"}
    if task.status == "CANCELED":
        return {"code": "TaskCanceled", "message": "the provider task was canceled"}
    return {"code": "TaskUnknown",
            "message": "the provider does not know this task (purged after 24 h, or never "
                       "created)"}


def _cause_message(cause: str | None) -> str:
    """Step Functions passes a Lambda error as JSON text in `Cause`."""
    if not cause:
        return "no details"
    try:
        parsed = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    return parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
