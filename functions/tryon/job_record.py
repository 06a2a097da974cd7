"""The job record: every field a job can carry, its statuses, the transitions
between them, and the state its workflow passes from step to step. Only
`tryon.adapters.jobs.JobRepository` builds records from items and writes them."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    RECEIVED = "RECEIVED"  # recorded, inputs being checked
    QUEUED = "QUEUED"  # inputs fine, waiting for a free provider slot
    ADMITTED = "ADMITTED"  # holds a provider slot, submit on its way
    SUBMITTING = "SUBMITTING"  # provider call in progress (a crash here is detectable)
    SUBMITTED = "SUBMITTED"  # provider task exists, execution polls it
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELED = "CANCELED"  # called off before the provider made anything: not paid


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT,
                               JobStatus.CANCELED})
OPEN_STATUSES = frozenset(JobStatus) - TERMINAL_STATUSES
# Ended without an image: what a failed look shows, whatever ended it.
UNSUCCESSFUL_STATUSES = TERMINAL_STATUSES - {JobStatus.SUCCEEDED}

_S = JobStatus
# Every status change a job may make; JobRepository.transition refuses any other.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    _S.RECEIVED: frozenset({_S.QUEUED, _S.ADMITTED, _S.FAILED, _S.CANCELED}),
    _S.QUEUED: frozenset({_S.ADMITTED, _S.FAILED, _S.CANCELED}),
    # ADMITTED -> ADMITTED: moved to the fallback model with a slot of it at once.
    _S.ADMITTED: frozenset({_S.SUBMITTING, _S.ADMITTED, _S.QUEUED, _S.FAILED}),
    # SUBMITTING -> ADMITTED: the provider stayed busy (deferred) or a lost submit left
    # no task; -> QUEUED/ADMITTED on the fallback model.
    _S.SUBMITTING: frozenset({_S.SUBMITTED, _S.ADMITTED, _S.QUEUED, _S.FAILED}),
    _S.SUBMITTED: frozenset({_S.SUCCEEDED, _S.FAILED, _S.TIMED_OUT, _S.CANCELED}),
    **{status: frozenset() for status in TERMINAL_STATUSES},
}


def sources_of(status: JobStatus) -> frozenset[JobStatus]:
    """The statuses a job may move to `status` from."""
    return frozenset(source for source, targets in TRANSITIONS.items() if status in targets)


class ProviderStatus(StrEnum):
    """A task's status, as the provider spells it (a call model's job: SUCCEEDED)."""

    PENDING = "PENDING"
    PRE_PROCESSING = "PRE-PROCESSING"
    RUNNING = "RUNNING"
    POST_PROCESSING = "POST-PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"


PROVIDER_PENDING = frozenset({ProviderStatus.PENDING, ProviderStatus.PRE_PROCESSING,
                              ProviderStatus.RUNNING, ProviderStatus.POST_PROCESSING})
# A task that ended without an image.
PROVIDER_UNSUCCESSFUL = frozenset({ProviderStatus.FAILED, ProviderStatus.CANCELED,
                                   ProviderStatus.UNKNOWN})

# The provider calls whose last request id a job keeps, for support cases.
PROVIDER_CALLS = ("submit", "list", "upload", "parsing", "call", "query")


@dataclass(frozen=True)
class JobRecord:
    """One look's job. Timeline events (epoch seconds, the pipeline's clock):
    received, queued, admitted, submitting, submitted, provider_submit,
    provider_start, provider_end, end_seen, finalized."""

    job_id: str
    status: JobStatus
    # What was asked
    source: dict[str, str] | None = None  # the upload: bucket, key, etag, version_id
    look_id: str | None = None
    batch_id: str | None = None
    batch_order: str | None = None  # its place in the batch (index `batch`): 000042
    model: str | None = None  # the model that makes (or made) the image
    requested_model: str | None = None  # set when that is not the one asked for
    inputs: dict[str, str] | None = None  # role -> s3:// URI of the upload
    top_is_dress: bool | None = None
    parameters: dict[str, Any] | None = None
    keep: str | None = None  # "top" | "bottom"
    instruction: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    result_stem: str | None = None
    duplicate_looks: list[str] | None = None
    owner: str | None = None  # the integration that asked (the `owner` index)
    owner_order: str | None = None
    # Preparation: the checked inputs, for the model's rules
    normalized: dict[str, Any] | None = None
    submit_inputs: dict[str, dict[str, Any]] | None = None
    input_versions: dict[str, str] | None = None
    prepared_for: str | None = None
    # Admission: the `queue` index, what it waits for, its day in the budget
    queue: str | None = None
    queued_order: str | None = None
    waiting_for: str | None = None  # "slot" | "budget"
    priority: str | None = None  # "interactive" | "batch" (tryon.adapters.slots.PRIORITIES)
    budget_day: str | None = None
    fallback: dict[str, Any] | None = None
    # At the provider
    submit_attempts: int = 0
    provider_request: dict[str, Any] | None = None
    provider_task_id: str | None = None
    provider_status: ProviderStatus | None = None
    provider_request_id: str | None = None
    last_submit_request_id: str | None = None
    last_list_request_id: str | None = None
    last_upload_request_id: str | None = None
    last_parsing_request_id: str | None = None
    last_call_request_id: str | None = None
    last_query_request_id: str | None = None
    kept_garment: dict[str, Any] | None = None
    execution_arn: str | None = None
    polls: int = 0
    # The outcome
    usage: dict[str, int] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    notified_at: float | None = None
    timeline: dict[str, float] = field(default_factory=dict)
    # Erasure (tryon.stages.erasure): its images gone, the record cut to BILLING_FIELDS.
    erased_at: float | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def provider_pending(self) -> bool:
        """Its task may still be running (or queued) at the provider."""
        return self.provider_status in PROVIDER_PENDING

    def input_keys(self) -> dict[str, str]:
        """The original inputs' keys by role (`inputs` holds s3:// URIs)."""
        return {role: uri.split("/", 3)[3] for role, uri in (self.inputs or {}).items()}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobRecord:
        known = {k: v for k, v in item.items() if k in JOB_FIELDS}
        unknown = set(item) - set(known) - STORAGE_KEYS
        if unknown:  # written by a newer version of the code: kept in the table, not here
            log.warning("job record has unknown fields", extra={"fields": sorted(unknown)})
        known["status"] = JobStatus(known["status"])
        if known.get("provider_status"):
            known["provider_status"] = ProviderStatus(known["provider_status"])
        return cls(**known)

    def to_item(self) -> dict[str, Any]:
        """The fields that are set (DynamoDB stores no empty attribute)."""
        return _set_fields(self)


JOB_FIELDS = frozenset(f.name for f in dataclasses.fields(JobRecord))
# What an erased job keeps: who asked, which model made what, its status and times, what
# was billed (usage; the price is the model's) and the day its budget place counted in.
# No input, result, look id, attribute, instruction or error text: nothing of the person.
BILLING_FIELDS = frozenset({"job_id", "status", "owner", "owner_order", "model", "batch_id",
                            "provider_task_id", "usage", "budget_day", "timeline",
                            "submit_attempts", "erased_at"})
STORAGE_KEYS = frozenset({"pk", "sk", "expires_at"})


# What a workflow step answers in `status`, which the state machine routes on: a
# provider status while the task runs, or how the job's workflow ends (FALLBACK:
# the look moved to the fallback model's own workflow).
StepStatus = StrEnum("StepStatus", {**{status.name: status.value for status in ProviderStatus},
                                    "TIMED_OUT": "TIMED_OUT", "FALLBACK": "FALLBACK"})


@dataclass(frozen=True)
class WorkflowState:
    """The state a job's execution passes between its steps (the state machine's
    `$`): what starts it, and what each step adds. `failure` is set by the state
    machine's Catch (its Error and Cause)."""

    job_id: str
    protocol: str  # "task" | "call"
    model: str
    task_id: str | None = None
    deadline: int | None = None
    plan: list[float] | None = None  # query times from the task's start
    plan_from_submit: list[float] | None = None  # until a query finds it started
    next_delay: int | None = None
    poll_at: float | None = None
    polls: int = 0
    status: StepStatus | None = None
    image_url: str | None = None
    request_id: str | None = None
    usage: dict[str, int] | None = None
    error: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> WorkflowState:
        state = {k: v for k, v in event.items() if k in WORKFLOW_FIELDS}
        if state.get("status"):
            state["status"] = StepStatus(state["status"])
        return cls(**state)

    def to_event(self) -> dict[str, Any]:
        return _set_fields(self)

    def but(self, **changes: Any) -> WorkflowState:
        return dataclasses.replace(self, **changes)


WORKFLOW_FIELDS = frozenset(f.name for f in dataclasses.fields(WorkflowState))


def _set_fields(record: Any) -> dict[str, Any]:
    return {name: value for name, value in dataclasses.asdict(record).items()
            if value is not None}
