"""The pipeline's use cases: take an upload in, poll a task, store a result,
record a failure. Adapters are passed in, so this module knows nothing about
Lambda and tests can run it against moto and the provider emulator."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from tryon.jobs import (
    COMPARISON_SCHEDULES,
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
    expected_generation,
    job_id_for,
    manifest_result_stem,
    notification_for,
    poll_delay,
    roster_looks,
    scheduled_delay,
)
from tryon.manifest import Manifest, ManifestError, parse_manifest
from tryon.messaging import Admissions, Notifier, Workflow
from tryon.pacing import CallPacer, PacingTimeout
from tryon.preflight import MAX_INPUT_BYTES, InputRejected, Prepared, prepare_image
from tryon.provider import (
    PARSING_MODEL,
    PENDING_STATUSES,
    TRYON_MODELS,
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
# A slot taken for a submit is checked by the sweep after this long (longer
# than the submit function's timeout, so a live submit is never disturbed).
SUBMIT_LEASE_SECONDS = 300
LEASE_MARGIN_SECONDS = 120  # past the job's deadline, before the sweep checks its slot
DONE_CHECK_SECONDS = 60  # a job ended while its task may run: ask the provider this soon
LOST_SUBMIT_ATTEMPTS = 2
LIST_SLACK_SECONDS = 2.0  # clock skew allowed between us and the provider's submit_time
RELIST_PAUSE_SECONDS = 2.0
QUEUE_ATTRIBUTES = ("queue", "queued_order")
OPEN_STATUSES = [s.value for s in JobStatus if s not in TERMINAL_STATUSES]
KEPT_CLOTHES_TYPE = {"top": "upper", "bottom": "lower"}
T = TypeVar("T")


class SubmitDeferred(Exception):
    """The provider stayed busy: the job's message is retried later by SQS."""


class SubmitLost(Exception):
    """A submit got no answer after it was sent: a task may exist (and be billed)."""


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
    admissions: Admissions
    provider: Callable[[], DashScopeClient]
    pacer: CallPacer
    sleep: Callable[[float], None] = time.sleep
    on_job: Callable[[str], None] = field(default=lambda job_id: None)

    def clock(self) -> float:
        return self.settings.timebase.now()

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
            elif status == JobStatus.ADMITTED:
                self.submit_admitted(job_id)  # an earlier delivery found the provider busy
            if status != JobStatus.RECEIVED:
                log.info("duplicate delivery ignored", extra={"job_status": status})
                return
        try:
            ready = {role: self._prepare(source.bucket, key, checked)
                     for role, key in look.inputs().items()}
        except InputRejected as exc:
            self.end_job(job_id, JobStatus.FAILED, error=exc.as_error())
            return
        checked_fields = {
            "normalized": {role: {"key": r.key, "fixes": list(r.image.fixes)}
                           for role, r in ready.items() if r.image.changed} or None,
            "submit_inputs": {role: {"bucket": r.bucket, "key": r.key,
                                     "content_type": r.image.content_type,
                                     "extension": r.image.extension}
                              for role, r in ready.items()},
        }
        # Only one delivery moves the job on from RECEIVED: it alone submits or queues.
        if self._acquire_slot(look.model, job_id):
            if self.store.update(job_id, fields={"status": JobStatus.ADMITTED, **checked_fields},
                                 timeline={"admitted": self.clock()},
                                 only_if_status=[JobStatus.RECEIVED]):
                self.submit_admitted(job_id)
            return
        now = self.clock()
        if self.store.update(job_id, fields={"status": JobStatus.QUEUED, **checked_fields,
                                             **self.store.queue_entry(look.model, now, job_id)},
                             timeline={"queued": now}, only_if_status=[JobStatus.RECEIVED]):
            self._admit_queued(look.model)  # a slot may have come free since we asked

    # --- admission: at most max_tasks_in_flight provider tasks per model ------

    def _acquire_slot(self, model: str, job_id: str) -> bool:
        return self.store.acquire_slot(model, job_id, self.clock() + SUBMIT_LEASE_SECONDS,
                                       self.settings.max_tasks_in_flight)

    def _release_slot(self, model: str, job_id: str) -> None:
        """Give the job's slot back and hand it on at once (a second release is a no-op)."""
        if self.store.release_slot(model, job_id):
            self._admit_queued(model)

    def _admit_queued(self, model: str) -> list[str]:
        """Work-conserving hand-off: fill the model's free slots with its oldest
        waiting jobs, and pass them to the submit function."""
        admitted = []
        for job_id in self.store.queued_jobs(model, 2 * self.settings.max_tasks_in_flight):
            if not self._acquire_slot(model, job_id):
                break  # no slot free
            if self.store.update(job_id, fields={"status": JobStatus.ADMITTED},
                                 remove=QUEUE_ATTRIBUTES, timeline={"admitted": self.clock()},
                                 only_if_status=[JobStatus.QUEUED]):
                admitted.append(job_id)
                continue
            # Already admitted by another hand-off (the index lags): that one holds the
            # slot under the same job id. Only a job that went away must give it back.
            job = self.store.get(job_id)
            if job is None or job["status"] in TERMINAL_STATUSES:
                self.store.release_slot(model, job_id)
        if admitted:
            self.admissions.send(admitted)
        return admitted

    def submit_admitted(self, job_id: str) -> None:
        """Submit a job that holds a slot (from intake, or handed on by a release)."""
        if not self.store.update(job_id, fields={"status": JobStatus.SUBMITTING},
                                 only_if_status=[JobStatus.ADMITTED]):
            return  # a duplicate admission, or the job has moved on
        try:
            self._submit(self.store.get(job_id))
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

    def _submit(self, job: dict[str, Any]) -> None:
        job_id, model = job["job_id"], job["model"]
        client = self.provider()
        inputs = job["submit_inputs"]
        urls = {role: self._input_url(client, model, job_id, role, ref)
                for role, ref in inputs.items()}
        oss = self.settings.input_transport == "provider-upload"
        if job.get("keep"):
            # An uploaded file serves only the model named when it was uploaded.
            person_url = (self._input_url(client, PARSING_MODEL, job_id, "person-parsing",
                                          inputs["person"]) if oss else urls["person"])
            urls[job["keep"]] = self._kept_garment(client, job, person_url, oss)
        parameters = job.get("parameters") or {}
        request = TryOnRequest(
            model=model,
            person_image_url=urls["person"],
            top_garment_url=urls.get("top"),
            bottom_garment_url=urls.get("bottom"),
            resolution=parameters.get("resolution", -1),
            restore_face=parameters.get("restore_face", True),
        )
        sent_at: list[float] = []  # wall time of each attempt, to find a task whose answer was lost

        def submit() -> Any:
            self.store.update(job_id, increment={"submit_attempts": 1},
                              timeline={"submitting": self.clock()})
            self.pacer.wait_turn("submit")
            sent_at.append(time.time())
            return client.submit(request, oss_resolve=oss)

        for _ in range(LOST_SUBMIT_ATTEMPTS):
            try:
                task_id = self._call_provider(job_id, "submit", submit).task_id
                break
            except SubmitLost:
                task_id = self._find_lost_task(client, job, sent_at[-1], time.time())
                if task_id:
                    break
        else:
            raise LookFailed("SubmitOutcomeUnknown",
                             f"no answer to {LOST_SUBMIT_ATTEMPTS} submits, and no task of "
                             "theirs in the provider's task list; not repeated again so as "
                             "not to pay twice")
        self._record_submitted(job, task_id)

    def _record_submitted(self, job: dict[str, Any], task_id: str) -> None:
        job_id, now = job["job_id"], self.clock()
        self.store.claim_task(task_id, job_id, now)
        self.store.renew_slot(job["model"], job_id, now + self.settings.poll_deadline_seconds
                              + LEASE_MARGIN_SECONDS)
        self.store.update(
            job_id,
            fields={"status": JobStatus.SUBMITTED, "provider_task_id": task_id,
                    "provider_status": "PENDING"},
            timeline={"submitted": now},
            remove=["error"],
            only_if_status=[JobStatus.SUBMITTING],
        )
        self._start_polling(self.store.get(job_id))

    def _find_lost_task(self, client: DashScopeClient, job: dict[str, Any], sent: float,
                        until: float) -> str | None:
        """A submit whose answer was lost may still have created (and be billing) a
        task: look for it among the account's tasks of that model submitted while
        the call was out, which no other job owns. One: it is this job's. None: the
        submit never landed, so submitting again is safe. Several: no way to tell."""
        job_id = job["job_id"]
        for pause in (0.0, RELIST_PAUSE_SECONDS):  # a new task may take a moment to be listed
            self.sleep(pause)
            tasks = self._call_provider(job_id, "list", lambda: client.recent_tasks(
                job["model"], sent - LIST_SLACK_SECONDS, until + LIST_SLACK_SECONDS))
            candidates = [t.task_id for t in tasks if t.submit_time is not None
                          and sent - LIST_SLACK_SECONDS <= t.submit_time <= until
                          + LIST_SLACK_SECONDS
                          and self.store.task_owner(t.task_id) in (None, job_id)]
            if len(candidates) == 1 and self.store.claim_task(candidates[0], job_id,
                                                               self.clock()):
                log.warning("lost submit answer: task found in the provider's list",
                            extra={"provider_task_id": candidates[0]})
                return candidates[0]
            if len(candidates) > 1:
                raise LookFailed("SubmitOutcomeUnknown",
                                 f"no answer to the submit, and {len(candidates)} tasks of the "
                                 "account were created meanwhile that no job owns; none can be "
                                 "told to be this job's, so none is adopted and nothing is "
                                 "resubmitted (no double payment)")
        return None

    def _input_url(self, client: DashScopeClient, model: str, job_id: str, role: str,
                   ref: dict[str, str]) -> str:
        """How the provider gets an input: a presigned S3 URL (default) or the
        provider's own temporary upload (`oss://`), per the InputTransport setting."""
        if self.settings.input_transport == "provider-upload":
            data = self.storage.read(ref["bucket"], ref["key"])
            filename = f"{job_id}-{role}.{ref['extension']}"
            return self._call_provider(job_id, "upload", lambda: client.upload(
                model, filename, data, ref["content_type"]))
        return self.storage.presign_get(ref["bucket"], ref["key"],
                                        self.settings.input_url_ttl_seconds)

    def _kept_garment(self, client: DashScopeClient, job: dict[str, Any], person_url: str,
                      oss: bool) -> str:
        """Keep the person's own top or bottom: the parsing model cuts it out of the
        person photo, and its crop goes to try-on as that garment."""
        keep = job["keep"]
        parsed = self._call_provider(job["job_id"], "parsing", lambda: client.parse_garment(
            person_url, KEPT_CLOTHES_TYPE[keep], oss_resolve=oss))
        if parsed is None:
            person = job["inputs"]["person"].split("/", 3)[-1]
            raise LookFailed("KeptGarmentNotFound",
                             f"{person}: no {keep} garment found on the person image "
                             f"to keep; give a {keep} instead of keep: {keep!r}")
        self.store.update(job["job_id"], fields={"kept_garment": {"slot": keep,
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
                    # The provider may have created (and will bill) a task we cannot see.
                    raise SubmitLost(str(exc)) from None
                if not exc.retryable:
                    raise LookFailed(exc.code, exc.message) from None
                log.warning("provider busy", extra={"call": call, "attempt": number,
                                                    "code": exc.code})
                if number == PROVIDER_ATTEMPTS:
                    self._defer(job_id, exc.as_error())
                self.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS,
                                                 BACKOFF_BASE_SECONDS * 2 ** (number - 1))))
            except PacingTimeout as exc:
                self._defer(job_id, {"code": "PacingTimeout", "message": str(exc)})
        raise AssertionError("unreachable")

    def _defer(self, job_id: str, error: dict[str, str]) -> NoReturn:
        """Nothing was created: keep the slot, and let SQS bring the job back later."""
        self.store.update(job_id, fields={"status": JobStatus.ADMITTED, "error": error})
        raise SubmitDeferred(f"job {job_id}: {error['code']}: {error['message']}")

    def _start_polling(self, job: dict[str, Any]) -> None:
        submitted = job["timeline"].get("submitted", self.clock())
        deadline = submitted + self.settings.poll_deadline_seconds
        expected = expected_generation(job["model"], self.store.recent_durations(job["model"]))
        execution_arn = self.workflow.start(job["job_id"], {
            "job_id": job["job_id"],
            "task_id": job["provider_task_id"],
            "model": job["model"],
            "deadline": int(deadline),
            "expected": round(expected, 1),
            # The task starts at once: this job holds one of the provider's slots.
            "next_delay": self._poll_delay(expected, 0.0, 0, now=submitted, deadline=deadline),
            "polls": job.get("polls", 0),
        })
        self.store.update(job["job_id"], fields={"execution_arn": execution_arn})

    def _record_request(self, job_id: str, call: str, request_id: str | None) -> None:
        if request_id:
            self.store.update(job_id, fields={f"last_{call}_request_id": request_id})

    # --- the wait loop ----------------------------------------------------

    def poll(self, state: dict[str, Any]) -> dict[str, Any]:
        """Query the task once; the answer's `status` drives the state machine."""
        job_id, model = state["job_id"], state["model"]
        client = self.provider()
        try:
            self.pacer.wait_turn("query")
            task = client.query(state["task_id"])
        except ProviderError as exc:
            self._record_request(job_id, "query", exc.request_id)
            if exc.retryable:
                raise  # the state machine retries with backoff
            return {**state, "status": JobStatus.FAILED.value, "error": exc.as_error()}
        now = self.clock()
        polls = state.get("polls", 0) + 1
        timeline = self._provider_timeline(task)
        self.store.update(
            job_id,
            fields={"provider_status": task.status, "polls": polls,
                    "last_query_request_id": task.request_id},
            timeline=timeline,
        )
        out = {**state, "polls": polls, "status": task.status}
        if not task.is_pending:
            if task.status == "SUCCEEDED" and {"provider_start", "provider_end"} <= set(timeline):
                self.store.record_duration(model, task.task_id, timeline["provider_end"]
                                           - timeline["provider_start"])
            # The provider's slot is free now: hand it on before storing the result.
            self._release_slot(model, job_id)
            if task.status == "SUCCEEDED":
                return {**out, "image_url": task.image_url}
            return {**out, "error": _task_error(task)}
        if now >= state["deadline"]:
            return {**out, "status": JobStatus.TIMED_OUT.value,
                    "error": self._give_up(client, job_id, task)}
        running_for = (now - timeline["provider_start"]
                       if task.status != "PENDING" and "provider_start" in timeline else None)
        expected = state.get("expected") or expected_generation(model, [])
        return {**out, "next_delay": self._poll_delay(expected, running_for, polls, now=now,
                                                      deadline=state["deadline"])}

    def _poll_delay(self, expected: float, running_for: float | None, polls: int, *,
                    now: float, deadline: float) -> int:
        if self.settings.poll_schedule in COMPARISON_SCHEDULES:
            return scheduled_delay(self.settings.poll_schedule, polls, now=now,
                                   deadline=deadline)
        return poll_delay(expected, running_for, now=now, deadline=deadline)

    def _give_up(self, client: DashScopeClient, job_id: str, task: TaskState) -> dict[str, str]:
        message = (f"no result before the job's deadline "
                   f"({self.settings.poll_deadline_seconds} s); provider status {task.status}")
        if task.status == "PENDING":
            try:
                client.cancel(task.task_id)
                message += "; the queued provider task was canceled (not billed)"
                self.store.update(job_id, fields={"provider_status": "CANCELED"})
            except ProviderError as exc:
                message += f"; cancel failed: {exc.code}"
        return {"code": "DeadlineExceeded", "message": message}

    def _provider_timeline(self, task: TaskState) -> dict[str, float]:
        """The provider's timestamps, on the pipeline's clock."""
        times = {"provider_submit": task.submit_time, "provider_start": task.scheduled_time,
                 "provider_end": task.end_time}
        return {name: self.settings.timebase.from_wall(at)
                for name, at in times.items() if at is not None}

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
        """Move a job to its terminal status (once), give back its provider slot, and
        send exactly one notification; the last job of a batch also sends the batch's
        summary. Safe to repeat."""
        now = self.clock()
        self.store.update(job_id, fields={"status": status, "error": error, "result": result},
                          timeline={"finalized": now}, only_if_status=OPEN_STATUSES)
        job = self.store.get(job_id)
        if job.get("model"):
            if job.get("provider_status") in PENDING_STATUSES:
                # Its task may still be running at the provider (e.g. past the deadline):
                # the sweep gives the slot back once the provider says it has ended.
                self.store.renew_slot(job["model"], job_id, now + DONE_CHECK_SECONDS)
            else:
                self._release_slot(job["model"], job_id)
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

    def execution_ended(self, job_id: str, status: str) -> None:
        """A job's workflow stopped (FAILED, TIMED_OUT, ABORTED): whatever happened in
        it, the job gets its terminal record, its notification and its slot back."""
        if self.store.get(job_id) is None:
            return
        self.end_job(job_id, JobStatus.FAILED, error={
            "code": f"Workflow{status.title().replace('_', '')}",
            "message": f"the job's workflow ended {status} before the job was recorded as "
                       "ended (see the execution's history)"})

    # --- the sweep: the safety net behind every hand-off -------------------------

    def sweep(self) -> dict[str, int]:
        """Reclaim slots whose lease ran out and admit waiting jobs a hand-off missed."""
        now, outcomes = self.clock(), Counter()
        for model in TRYON_MODELS:
            for job_id, lease_until in self.store.slot_holders(model).items():
                if lease_until <= now:
                    outcomes[self._check_lease(model, job_id, now)] += 1
            outcomes["admitted"] += len(self._admit_queued(model))
        return dict(outcomes)

    def _check_lease(self, model: str, job_id: str, now: float) -> str:
        job = self.store.get(job_id) or {}
        status = job.get("status")
        if status == JobStatus.ADMITTED:  # its hand-off message never arrived
            self.store.renew_slot(model, job_id, now + SUBMIT_LEASE_SECONDS)
            self.admissions.send([job_id])
            return "readmitted"
        if status == JobStatus.SUBMITTING:  # the function submitting it died mid-call
            return self._recover_submit(job, now)
        if job.get("provider_task_id"):
            try:
                self.pacer.wait_turn("query")
                task = self.provider().query(job["provider_task_id"])
            except ProviderError:
                task = None
            if task is None or task.is_pending:
                self.store.renew_slot(model, job_id, now + DONE_CHECK_SECONDS)
                return "still-running"
            self.store.update(job_id, fields={"provider_status": task.status})
        self.store.release_slot(model, job_id)
        return "reclaimed"

    def _recover_submit(self, job: dict[str, Any], now: float) -> str:
        job_id, model = job["job_id"], job["model"]
        sent = self.settings.timebase.to_wall(job["timeline"].get("submitting", now))
        until = self.settings.timebase.to_wall(now)
        try:
            task_id = self._find_lost_task(self.provider(), job, sent, until)
        except LookFailed as exc:
            self.end_job(job_id, JobStatus.FAILED, error=exc.error)
            return "failed"
        if task_id:
            self._record_submitted(job, task_id)
            return "adopted"
        if self.store.update(job_id, fields={"status": JobStatus.ADMITTED},
                             only_if_status=[JobStatus.SUBMITTING]):
            self.store.renew_slot(model, job_id, now + SUBMIT_LEASE_SECONDS)
            self.admissions.send([job_id])
        return "resubmitted"

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
