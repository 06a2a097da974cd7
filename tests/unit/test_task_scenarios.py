"""A task model's job from submit to its end, on the fakes and the real state
machine definition: the happy path, throttling, a lost submit answer, a model the
provider refuses (the fallback), a deadline, a cancel at the provider. What each
costs is counted: provider work, notifications, executions."""

import pytest
from tryon.job_record import JobStatus
from tryon.models.registry import model_spec
from tryon.stages.admission import acquire_slot, admit_or_queue
from tryon.stages.cancellation import CannotCancel, cancel_job
from tryon.stages.submit import submit_admitted

MODEL = "aitryon-plus"


def test_a_task_is_submitted_once_polled_to_its_end_and_stored_with_one_notice(fake):
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    end, _, states = fake.run(job_id)
    job = fake.jobs.get(job_id)
    assert end == "JobSucceeded" and job.status == JobStatus.SUCCEEDED
    assert fake.provider.calls["submit"] == 1 and job.polls == fake.provider.calls["query"]
    assert job.result["uri"].startswith("s3://results/looks/looks/look.")
    assert job.usage == {"width": 576, "height": 1024, "image_count": 1}
    assert [body["event"] for body in fake.notifier.events()] == ["job.succeeded"]
    assert fake.slots.holders(MODEL) == {}  # given back when the task ended
    assert {"submitted", "provider_start", "provider_end", "end_seen", "finalized"} <= set(
        job.timeline)
    assert states[:2] == ["RouteByProtocol", "WaitForResult"] and "StoreResult" in states


def test_a_throttled_submit_is_retried_and_paid_once(fake):
    job_id = fake.admitted()
    fake.provider.throttled["submit"] = 2
    submit_admitted(fake.ctx, job_id)
    assert fake.provider.calls["submit"] == 3 and len(fake.provider.tasks) == 1
    assert fake.jobs.get(job_id).submit_attempts == 3
    assert fake.status(job_id) == "SUBMITTED"


def test_a_submit_still_throttled_keeps_its_slot_and_is_redelivered(fake):
    from tryon.stages.provider_calls import SubmitDeferred

    job_id = fake.admitted()
    fake.provider.throttled["submit"] = 10
    with pytest.raises(SubmitDeferred):  # SQS delivers the message again
        submit_admitted(fake.ctx, job_id)
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.ADMITTED and job.error["code"] == "Throttling"
    assert job_id in fake.slots.holders(MODEL) and fake.provider.tasks == {}
    fake.provider.throttled["submit"] = 0
    submit_admitted(fake.ctx, job_id)
    assert fake.status(job_id) == "SUBMITTED" and len(fake.provider.tasks) == 1


def test_a_submit_whose_answer_is_lost_is_found_in_the_task_list_not_paid_twice(fake):
    job_id = fake.admitted()
    fake.provider.lost["submit"] = 1
    submit_admitted(fake.ctx, job_id)
    [task_id] = fake.provider.tasks  # adopted, not resubmitted
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.SUBMITTED and job.provider_task_id == task_id
    assert job.submit_attempts == 1 and fake.task_owners.owner(task_id) == job_id
    assert fake.run(job_id)[0] == "JobSucceeded"


def test_a_lost_answer_with_two_unowned_candidates_adopts_neither_and_pays_nothing_more(fake):
    other = fake.admitted("other")
    job_id = fake.admitted()
    fake.provider.lost["submit"] = 2
    submit_admitted(fake.ctx, other)  # its task is nobody's: its answer was lost as well
    fake.task_owners.owners.clear()
    fake.jobs.update(other, timeline={})
    submit_admitted(fake.ctx, job_id)
    assert len(fake.provider.tasks) == 2
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "SubmitOutcomeUnknown"
    assert "none is adopted" in job.error["message"]


def test_two_submits_lost_and_never_listed_end_the_job_without_a_third(fake):
    job_id = fake.admitted()
    fake.provider.lost["submit"] = 2
    fake.provider.recent_tasks = lambda model, since, until: []  # the list never shows them
    submit_admitted(fake.ctx, job_id)
    job = fake.jobs.get(job_id)
    assert fake.provider.calls["submit"] == 2
    assert job.status == JobStatus.FAILED and job.error["code"] == "SubmitOutcomeUnknown"
    assert [body["event"] for body in fake.notifier.events()] == ["job.failed"]


def test_a_provider_failure_ends_in_one_failure_notice(fake):
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    fake.provider.fail(fake.jobs.get(job_id).provider_task_id, "InvalidPerson", "no person")
    end, _, states = fake.run(job_id)
    job = fake.jobs.get(job_id)
    assert end == "JobFailed" and "RecordFailure" in states
    assert job.status == JobStatus.FAILED and job.error == {"code": "InvalidPerson",
                                                          "message": "no person"}
    assert [body["event"] for body in fake.notifier.events()] == ["job.failed"]


def test_a_throttled_query_is_retried_by_the_state_machine(fake):
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    fake.provider.throttled["query"] = 2
    assert fake.run(job_id)[0] == "JobSucceeded"
    assert fake.jobs.get(job_id).polls == fake.provider.calls["query"] - 2


def test_past_its_deadline_a_queued_task_is_canceled_and_the_job_times_out(fake):
    fake.configure(poll_deadline_seconds=60)
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    task_id = fake.jobs.get(job_id).provider_task_id
    fake.provider.hold(task_id)  # the provider keeps it PENDING
    end, _, _ = fake.run(job_id)
    job = fake.jobs.get(job_id)
    assert end == "JobFailed" and job.status == JobStatus.TIMED_OUT
    assert job.error["code"] == "DeadlineExceeded" and "canceled (not billed)" in (
        job.error["message"])
    assert fake.provider.tasks[task_id].canceled
    assert [body["event"] for body in fake.notifier.events()] == ["job.timed_out"]
    assert fake.slots.holders(MODEL) == {}  # a canceled task holds no slot


def test_a_running_task_past_its_deadline_keeps_its_slot_until_the_provider_ends_it(fake):
    fake.configure(poll_deadline_seconds=5)
    fake.provider.duration = 60
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    assert fake.run(job_id)[0] == "JobFailed" and fake.status(job_id) == "TIMED_OUT"
    assert job_id in fake.slots.holders(MODEL)  # the sweep checks it with the provider


def test_a_task_still_queued_at_the_provider_is_canceled_there(fake):
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    task_id = fake.jobs.get(job_id).provider_task_id
    fake.provider.hold(task_id)
    job = cancel_job(fake.ctx, job_id, "integration 'acme'")
    assert job.status == JobStatus.CANCELED and "while queued at the provider" in (
        job.error["message"])
    assert fake.provider.tasks[task_id].canceled and fake.slots.holders(MODEL) == {}
    # The poll that sees the task canceled ends nothing twice.
    assert fake.run(job_id)[0] == "JobFailed"
    assert [body["event"] for body in fake.notifier.events()] == ["job.canceled"]


def test_a_running_task_cannot_be_canceled_and_ends_on_its_own(fake):
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    with pytest.raises(CannotCancel, match="refused the cancel"):
        cancel_job(fake.ctx, job_id, "the operator")
    assert fake.run(job_id)[0] == "JobSucceeded"


def test_a_queued_job_is_canceled_at_no_cost_and_gives_its_budget_back(fake):
    holders = [f"running-{i}" for i in range(fake.ctx.capacity.of(MODEL).slots)]
    assert all(acquire_slot(fake.ctx, MODEL, h) for h in holders)
    fake.look("waiting", MODEL)
    assert not admit_or_queue(fake.ctx, "waiting", MODEL, expect=[JobStatus.RECEIVED])
    day = "2026-11-18"
    assert fake.budget.spent(day)["spent"] == 1
    job = cancel_job(fake.ctx, "waiting", "the operator")
    assert job.status == JobStatus.CANCELED and job.queue is None
    assert fake.budget.spent(day)["spent"] == 0 and fake.provider.calls == {}
    assert cancel_job(fake.ctx, "waiting", "the operator").status == JobStatus.CANCELED


def test_a_retired_model_falls_back_once_and_later_looks_skip_the_doomed_call(fake):
    fake.provider.refused.add(MODEL)
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)  # refused: nothing made, moved to the fallback
    job = fake.jobs.get(job_id)
    assert (job.model, job.requested_model, job.status) == ("qwen-image-3.0", MODEL,
                                                            JobStatus.ADMITTED)
    assert fake.slots.holders(MODEL) == {} and job_id in fake.slots.holders("qwen-image-3.0")
    assert fake.admissions.take() == [job_id] and fake.provider.tasks == {}
    # Prepared again for the fallback's rules (by the intake function), then submitted.
    rules = model_spec("qwen-image-3.0").input_rules.label
    assert job.prepared_for != rules
    fake.jobs.update(job_id, prepared_for=rules)
    submit_admitted(fake.ctx, job_id)
    assert fake.run(job_id)[0] == "JobSucceeded"
    later = fake.admitted("later")
    submit_admitted(fake.ctx, later)
    assert fake.jobs.get(later).model == "qwen-image-3.0"  # without a call to MODEL
    assert fake.provider.calls["submit"] == 2  # the refused one, and the fallback's
    assert fake.jobs.get(job_id).fallback["from"] == MODEL


def test_a_retired_model_without_a_usable_fallback_ends_model_retired(fake):
    fake.configure(fallback_model=None)
    fake.provider.refused.add(MODEL)
    job_id = fake.admitted()
    submit_admitted(fake.ctx, job_id)
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "ModelRetired"
    assert "FallbackModel" in job.error["message"]
    assert fake.counted == ["JobsFailed", "ModelRetired"] and fake.provider.tasks == {}


def test_a_retired_parsing_model_moves_only_the_looks_that_keep_a_garment(fake):
    fake.provider.refused.add("aitryon-parsing-v1")
    keeps = fake.admitted("keeps", keep="bottom")
    submit_admitted(fake.ctx, keeps)
    assert fake.jobs.get(keeps).model == "qwen-image-3.0"
    plain = fake.admitted("plain")
    submit_admitted(fake.ctx, plain)
    assert fake.jobs.get(plain).model == MODEL and fake.status(plain) == "SUBMITTED"


def test_a_kept_garment_not_on_the_person_fails_before_the_try_on(fake):
    fake.provider.no_garment = True
    job_id = fake.admitted(keep="top")
    submit_admitted(fake.ctx, job_id)
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "KeptGarmentNotFound"
    assert fake.provider.calls["submit"] == 0


def test_a_task_that_waits_in_the_provider_queue_is_polled_on_the_times_from_submit(fake):
    # Submitted ahead of a free slot (ProviderQueueAhead), each task waits 20 s PENDING
    # behind running ones, then runs 20 s: the run's plan counted from the submit
    # would query while it still waits (6 queries a task once learned, not 4).
    fake.provider.queue_wait = 20.0
    polls = []  # queries of each task, in turn: the plans learn from the ones before
    for i in range(10):
        job_id = fake.admitted(f"look-{i}")
        submit_admitted(fake.ctx, job_id)
        assert fake.run(job_id)[0] == "JobSucceeded"
        polls.append(fake.jobs.get(job_id).polls)
    assert set(fake.durations.recent(MODEL)) == {20.0}  # the run, for the plan once started
    assert set(fake.durations.recent(MODEL, since="submit")) == {40.0}
    job = fake.jobs.get("look-9")
    assert polls[-1] <= 4
    assert job.timeline["end_seen"] - job.timeline["provider_end"] <= 1.0
