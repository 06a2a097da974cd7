"""The job record's definition: its transition table walked whole, the workflow
state against the state machine's paths and statuses, and every error name the
state machine retries or catches against the code that raises it."""

import json
from pathlib import Path

import pytest
from tryon.adapters.jobs import TransitionRefused, check_transition
from tryon.job_record import (
    JOB_FIELDS,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    WORKFLOW_FIELDS,
    JobRecord,
    JobStatus,
    StepStatus,
    WorkflowState,
    sources_of,
)
from tryon.pacing import PacingTimeout
from tryon.providers.errors import RetryableProviderError
from tryon.stages.provider_calls import SubmitDeferred

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((ROOT / "infra" / "statemachine" / "tryon_job.asl.json").read_text())
# The names the functions' errors reach Step Functions under: the exception's class.
RAISED = {cls.__name__ for cls in (SubmitDeferred, RetryableProviderError, PacingTimeout)} | {
    "ResultDownloadError"}


def test_every_transition_in_the_table_is_allowed_and_every_other_refused():
    for source in JobStatus:
        for target in JobStatus:
            if target in TRANSITIONS[source]:
                assert check_transition([source], target) == [source]
            else:
                with pytest.raises(TransitionRefused):
                    check_transition([source], target)


def test_every_open_status_can_end_and_no_ended_one_moves():
    for status in OPEN_STATUSES:
        assert JobStatus.FAILED in TRANSITIONS[status], status
    assert all(not TRANSITIONS[status] for status in TERMINAL_STATUSES)
    assert sources_of(JobStatus.SUCCEEDED) == {JobStatus.SUBMITTED}
    assert sources_of(JobStatus.CANCELED) == {JobStatus.RECEIVED, JobStatus.QUEUED,
                                              JobStatus.SUBMITTED}
    # Every status but RECEIVED is reached from some other.
    reached = set().union(*TRANSITIONS.values())
    assert reached == set(JobStatus) - {JobStatus.RECEIVED}


def test_a_record_survives_its_item_and_says_when_fields_are_unknown(caplog):
    job = JobRecord(job_id="j", status=JobStatus.SUBMITTED, provider_status="RUNNING",
                    timeline={"received": 1.5}, attributes={"sku": "1"})
    item = job.to_item()
    assert None not in item.values() and item["status"] == "SUBMITTED"
    again = JobRecord.from_item({**item, "pk": "JOB#j", "sk": "JOB", "expires_at": 9})
    assert again == JobRecord.from_item(item) and again.provider_pending
    JobRecord.from_item({**item, "from_a_newer_version": 1})
    assert "unknown fields" in caplog.text


def _paths(node) -> set[str]:
    """Every `$.field` the definition reads or writes."""
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and value.startswith("$.") and key != "Payload.$":
                found.add(value.removeprefix("$.").split(".")[0])
            found |= _paths(value)
    elif isinstance(node, list):
        for value in node:
            found |= _paths(value)
    return found - {"Payload"}


def _choices(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        if "StringEquals" in node and node.get("Variable") == "$.status":
            found.add(node["StringEquals"])
        for value in node.values():
            found |= _choices(value)
    elif isinstance(node, list):
        for value in node:
            found |= _choices(value)
    return found


def test_the_workflow_state_has_every_field_the_state_machine_reads_or_writes():
    assert _paths(DEFINITION) <= WORKFLOW_FIELDS, _paths(DEFINITION) - WORKFLOW_FIELDS
    assert {"protocol", "status", "next_delay", "failure"} <= _paths(DEFINITION)


def test_the_state_machine_routes_on_exactly_the_step_statuses():
    assert _choices(DEFINITION) == {status.value for status in StepStatus}


def test_every_error_the_state_machine_retries_or_catches_is_raised_by_the_code():
    from tryon.adapters import result_download

    assert hasattr(result_download, "ResultDownloadError")
    named = set()
    for state in DEFINITION["States"].values():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            named |= {e for e in rule["ErrorEquals"] if not e.startswith(("States.", "Lambda."))}
    assert named == RAISED


def test_a_workflow_state_passes_through_a_step_unchanged():
    event = {"job_id": "j", "protocol": "task", "model": "aitryon-plus", "task_id": "t",
             "deadline": 10, "plan": [1.0, 2.0], "next_delay": 1, "poll_at": 1.5, "polls": 0,
             "status": "RUNNING", "failure": {"Error": "X", "Cause": "{}"}}
    state = WorkflowState.from_event(event)
    assert state.status is StepStatus.RUNNING and state.to_event() == event
    assert JOB_FIELDS.isdisjoint({"failure", "next_delay"})
