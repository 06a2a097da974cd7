"""The pipeline's use cases: take an upload in, poll a task, store a result,
record a failure. Adapters are passed in, so this module knows nothing about
Lambda and tests can run it against moto and the provider emulator."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tryon.jobs import (
    TERMINAL_STATUSES,
    JobStatus,
    Look,
    ManifestError,
    Source,
    first_poll_delay,
    job_id_for,
    next_poll_delay,
    notification_for,
    parse_manifest,
    result_key_stem,
)
from tryon.messaging import Notifier, Workflow
from tryon.provider import (
    FAILED_STATUSES,
    DashScopeClient,
    ProviderError,
    TaskState,
    TryOnRequest,
)
from tryon.settings import Settings
from tryon.storage import ObjectStorage
from tryon.store import JobStore

log = logging.getLogger(__name__)

SUBMIT_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 8.0
OPEN_STATUSES = [s.value for s in JobStatus if s not in TERMINAL_STATUSES]


class SubmitDeferred(Exception):
    """The provider stayed busy: the upload's message is retried later by SQS."""


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
        """Turn an uploaded manifest into jobs; returns the job ids it concerns."""
        received = self.clock()
        try:
            raw = self.storage.read(source.bucket, source.key, source.version_id)
            looks = parse_manifest(raw, self.settings.default_model)
        except ManifestError as exc:
            return [self._reject_manifest(source, exc, received)]
        return [self.take_look(source, look, received) for look in looks]

    def _reject_manifest(self, source: Source, exc: ManifestError, received: float) -> str:
        job_id = job_id_for(source, "manifest")
        self.on_job(job_id)
        self.store.create(
            {"job_id": job_id, "status": JobStatus.RECEIVED, "look_id": None,
             "source": source.as_dict(), "timeline": {"received": received}},
            received,
        )
        message = f"s3://{source.bucket}/{source.key}: {exc}"
        self.end_job(job_id, JobStatus.FAILED, error={"code": exc.code, "message": message,
                                                      "pointer": exc.pointer})
        return job_id

    def take_look(self, source: Source, look: Look, received: float) -> str:
        job_id = job_id_for(source, look.look_id)
        self.on_job(job_id)
        created = self.store.create(
            {
                "job_id": job_id,
                "status": JobStatus.RECEIVED,
                "look_id": look.look_id,
                "model": look.model,
                "source": source.as_dict(),
                "inputs": {role: f"s3://{source.bucket}/{key}"
                           for role, key in look.inputs().items()},
                "parameters": look.parameters(),
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
                return job_id
        missing = [key for key in look.inputs().values()
                   if not self.storage.exists(source.bucket, key)]
        if missing:
            names = ", ".join(f"s3://{source.bucket}/{key}" for key in missing)
            self.end_job(job_id, JobStatus.FAILED, error={
                "code": "MissingInput",
                "message": f"{names} not found: upload the image(s) before the manifest "
                           f"({source.key}, look {look.look_id!r})"})
            return job_id
        # Only one delivery may move RECEIVED -> SUBMITTING: it alone calls the provider.
        if not self.store.update(job_id, fields={"status": JobStatus.SUBMITTING},
                                 only_if_status=[JobStatus.RECEIVED]):
            return job_id
        self._submit(job_id, source, look)
        return job_id

    def _submit(self, job_id: str, source: Source, look: Look) -> None:
        ttl = self.settings.input_url_ttl_seconds
        urls = {role: self.storage.presign_get(source.bucket, key, ttl)
                for role, key in look.inputs().items()}
        request = TryOnRequest(
            model=look.model,
            person_image_url=urls["person"],
            top_garment_url=urls.get("top"),
            bottom_garment_url=urls.get("bottom"),
            resolution=look.resolution,
            restore_face=look.restore_face,
        )
        client = self.provider()
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            self.store.update(job_id, increment={"submit_attempts": 1},
                              timeline={"submitting": self.clock()})
            try:
                task = client.submit(request)
                break
            except ProviderError as exc:
                self._record_request(job_id, "submit", exc.request_id)
                if not exc.outcome_known:
                    # The provider may have created (and will bill) a task we cannot
                    # see: never resubmit blindly. Reconciliation comes with admission.
                    self.end_job(job_id, JobStatus.FAILED, error={
                        "code": "SubmitOutcomeUnknown",
                        "message": f"no answer to the submit ({exc.message}); not resubmitted "
                                   "to avoid paying twice"})
                    return
                if not exc.retryable:
                    self.end_job(job_id, JobStatus.FAILED, error=exc.as_error())
                    return
                log.warning("provider busy on submit", extra={"attempt": attempt,
                                                              "code": exc.code})
                if attempt == SUBMIT_ATTEMPTS:
                    # Nothing was created: hand the job back so SQS retries it later.
                    self.store.update(job_id, fields={"status": JobStatus.RECEIVED,
                                                      "error": exc.as_error()})
                    raise SubmitDeferred(f"job {job_id}: {exc}") from None
                self.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS,
                                                 BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))))
        submitted = self.clock()
        self.store.update(
            job_id,
            fields={"status": JobStatus.SUBMITTED, "provider_task_id": task.task_id,
                    "provider_status": task.status, "last_submit_request_id": task.request_id},
            timeline={"submitted": submitted},
            remove=["error"],
        )
        job = self.store.get(job_id)
        self._start_polling(job)

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
        """Copy the result into the results bucket (before its URL expires) and notify."""
        job_id = state["job_id"]
        job = self.store.get(job_id)
        source = Source(**job["source"])
        result = self.storage.copy_from_url(
            state["image_url"],
            self.settings.results_bucket,
            result_key_stem(source, job["look_id"], job_id),
            metadata={"job-id": job_id, "provider-task-id": state["task_id"]},
        )
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
        """Move a job to its terminal status (once) and send exactly one notification."""
        now = self.clock()
        self.store.update(job_id, fields={"status": status, "error": error, "result": result},
                          timeline={"finalized": now}, only_if_status=OPEN_STATUSES)
        # Claim the notification first; give the claim back if publishing fails so a
        # retry of this step publishes instead.
        if not self.store.update(job_id, fields={"notified_at": now},
                                 only_if_absent="notified_at"):
            return
        try:
            body, attributes = notification_for(self.store.get(job_id))
            self.notifier.publish(body, attributes)
        except Exception:
            self.store.update(job_id, remove=["notified_at"])
            raise


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
