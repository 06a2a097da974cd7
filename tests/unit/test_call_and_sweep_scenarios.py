"""A call model's job (one synchronous request) on the fakes and the real state
machine definition, and the sweep's recovery of what a crash leaves: a lease
whose holder vanished, a job left ADMITTED, SUBMITTING, or SUBMITTED without its
workflow, and a job whose workflow stopped."""

import pytest
from tryon.job_record import JobRecord, JobStatus
from tryon.stages.admission import acquire_slot, admit_or_queue
from tryon.stages.calling import CALL_ATTEMPTS
from tryon.stages.completion import execution_ended
from tryon.stages.provider_calls import SubmitDeferred, defer
from tryon.stages.submit import LEASE_MARGIN_SECONDS, submit_admitted
from tryon.stages.sweep import sweep

CALL, TASK = "qwen-image-2.0", "aitryon-plus"


def test_a_call_model_makes_the_image_in_one_call_inside_its_workflow(fake):
    job_id = fake.admitted(model=CALL)
    submit_admitted(fake.ctx, job_id)
    assert fake.provider.calls["call"] == 0  # the workflow's call step makes it
    end, _, states = fake.run(job_id)
    job = fake.jobs.get(job_id)
    assert end == "JobSucceeded" and states[:2] == ["RouteByProtocol", "CallModel"]
    assert fake.provider.calls["call"] == 1 and job.status == JobStatus.SUCCEEDED
    assert job.provider_request["size"] and "image 1" in job.provider_request["instruction"]
    assert fake.slots.holders(CALL) == {}
    assert [body["event"] for body in fake.notifier.events()] == ["job.succeeded"]


def test_a_throttled_call_is_retried_and_paid_once(fake):
    job_id = fake.admitted(model=CALL)
    submit_admitted(fake.ctx, job_id)
    fake.provider.throttled["call"] = 4  # past one step's attempts: the state machine retries
    end, _, states = fake.run(job_id)
    assert end == "JobSucceeded" and states.count("CallModel") == 1
    assert fake.provider.calls["call"] == 5 and fake.jobs.get(job_id).submit_attempts == 2


def test_a_lost_call_answer_is_never_repeated(fake):
    job_id = fake.admitted(model=CALL)
    submit_admitted(fake.ctx, job_id)
    fake.provider.lost["call"] = 1
    end, _, _ = fake.run(job_id)
    job = fake.jobs.get(job_id)
    assert end == "JobFailed" and fake.provider.calls["call"] == 1
    assert job.status == JobStatus.FAILED and job.error["code"] == "CallOutcomeUnknown"
    assert "not repeated" in job.error["message"]


def test_a_call_step_retried_after_its_function_died_does_not_call_again(fake):
    job_id = fake.admitted(model=CALL)
    submit_admitted(fake.ctx, job_id)
    fake.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.SUBMITTING)
    end, _, _ = fake.run(job_id)  # the step finds the call already sent
    assert end == "JobFailed" and fake.provider.calls["call"] == 0
    assert fake.jobs.get(job_id).error["code"] == "CallOutcomeUnknown"


def test_a_call_waiting_its_turn_is_not_taken_for_a_lost_one(fake):
    """A 2/min model's call may wait up to a minute for its turn: the sweep that runs
    meanwhile finds its lease alive and leaves it alone."""
    job_id = fake.admitted(model=CALL)
    submit_admitted(fake.ctx, job_id)

    swept: dict = {}

    class SlowTurn:
        def longest_wait(self, operation):
            return 60.0

        def wait_turn(self, operation):
            if operation.startswith("submit:"):
                # Past the margin and both attempts' timeouts, within their turns.
                fake.advance(LEASE_MARGIN_SECONDS + CALL_ATTEMPTS
                             * fake.ctx.settings.call_timeout_seconds + 60)
                swept.update(sweep(fake.ctx))

    fake.ctx.pacer = SlowTurn()
    end, _, _ = fake.run(job_id)
    assert end == "JobSucceeded" and fake.provider.calls["call"] == 1
    assert swept and not {"failed", "reclaimed"} & set(swept)


def test_a_retired_call_model_hands_the_look_to_the_fallbacks_workflow(fake):
    fake.provider.refused.add(CALL)
    job_id = fake.admitted(model=CALL)
    submit_admitted(fake.ctx, job_id)
    end, _, _ = fake.run(job_id)
    job = fake.jobs.get(job_id)
    assert end == "HandedToFallback" and job.model == "qwen-image-3.0"
    assert (job.requested_model, job.status) == (CALL, JobStatus.ADMITTED)
    assert fake.notifier.sent == []  # the look goes on: no notice yet
    assert fake.admissions.take() == [job_id]


def test_the_sweep_reclaims_slots_whose_holder_vanished_and_admits_the_waiting_job(fake):
    slots = fake.ctx.capacity.of(TASK).slots  # its running limit, and the lookahead
    for i in range(slots):
        assert fake.slots.acquire(TASK, f"vanished-{i}", fake.clock() + 100, slots)
    fake.look("waiting", TASK)
    assert not admit_or_queue(fake.ctx, "waiting", TASK, expect=[JobStatus.RECEIVED])
    assert sweep(fake.ctx) == {"admitted": 0}  # leases still running
    fake.advance(101)
    assert sweep(fake.ctx) == {"reclaimed": slots, "admitted": 1}
    assert fake.status("waiting") == "ADMITTED" and fake.admissions.take() == ["waiting"]
    assert set(fake.slots.holders(TASK)) == {"waiting"}


def test_the_sweep_resends_a_job_left_admitted_or_submitted_without_its_workflow(fake):
    job_id = fake.admitted(model=TASK)
    fake.advance(301)  # its admission message never arrived
    assert sweep(fake.ctx)["readmitted"] == 1 and fake.admissions.take() == [job_id]
    fake.workflow.fail_next()  # the submit lands, its workflow does not start
    with pytest.raises(ConnectionError):
        submit_admitted(fake.ctx, job_id)
    assert fake.status(job_id) == "SUBMITTED" and fake.workflow.started == {}
    # Its lease covers the deadline twice: a task's deadline moves on by its wait in
    # the provider's queue (polling.run_deadline).
    fake.advance(2 * fake.ctx.settings.poll_deadline_seconds + 121)
    assert sweep(fake.ctx)["readmitted"] == 1
    submit_admitted(fake.ctx, fake.admissions.take()[0])  # the one recovery path
    assert list(fake.workflow.started) == [job_id] and fake.provider.calls["submit"] == 1


def test_the_sweep_adopts_the_task_of_a_submit_whose_function_died(fake):
    job_id = fake.admitted(model=TASK)
    fake.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.SUBMITTING,
                         timeline={"submitting": fake.clock()})
    task = fake.provider.submit(type("R", (), {"model": TASK})())  # it had landed
    fake.advance(301)
    assert sweep(fake.ctx)["adopted"] == 1
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.SUBMITTED and job.provider_task_id == task.task_id
    assert list(fake.workflow.started) == [job_id] and len(fake.provider.tasks) == 1


def test_the_sweep_resubmits_a_submit_that_never_landed(fake):
    job_id = fake.admitted(model=TASK)
    fake.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.SUBMITTING,
                         timeline={"submitting": fake.clock()})
    fake.advance(301)
    assert sweep(fake.ctx)["resubmitted"] == 1
    assert fake.status(job_id) == "ADMITTED" and fake.admissions.take() == [job_id]


def test_the_sweep_fails_a_call_whose_function_died_mid_call(fake):
    job_id = fake.admitted(model=CALL)
    fake.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.SUBMITTING)
    fake.advance(301)
    assert sweep(fake.ctx)["failed"] == 1
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "CallOutcomeUnknown"
    assert fake.provider.calls["call"] == 0


def test_a_slot_kept_for_a_task_past_its_deadline_goes_back_when_the_provider_ends_it(fake):
    fake.provider.duration = 2000
    job_id = fake.admitted(model=TASK)
    submit_admitted(fake.ctx, job_id)
    fake.jobs.update(job_id, provider_status="RUNNING")
    fake.jobs.transition(job_id, expect=[JobStatus.SUBMITTED], to=JobStatus.TIMED_OUT)
    fake.advance(2 * fake.ctx.settings.poll_deadline_seconds + 121)
    assert sweep(fake.ctx)["still-running"] == 1 and job_id in fake.slots.holders(TASK)
    fake.advance(1000)
    assert sweep(fake.ctx)["reclaimed"] == 1 and fake.slots.holders(TASK) == {}


def test_a_stopped_workflow_still_ends_its_job_with_one_notice(fake):
    job_id = fake.admitted(model=TASK)
    submit_admitted(fake.ctx, job_id)
    execution_ended(fake.ctx, job_id, "ABORTED")
    execution_ended(fake.ctx, job_id, "ABORTED")  # EventBridge delivers at least once
    job = fake.jobs.get(job_id)
    assert job.status == JobStatus.FAILED and job.error["code"] == "WorkflowAborted"
    assert [body["event"] for body in fake.notifier.events()] == ["job.failed"]
    assert job_id in fake.slots.holders(TASK)  # its task still runs at the provider


def test_waiting_jobs_are_admitted_first_in_first_out(fake):
    holders = [f"running-{i}" for i in range(fake.ctx.capacity.of(TASK).slots)]
    assert all(acquire_slot(fake.ctx, TASK, h) for h in holders)
    for name in ("a", "b", "c"):
        fake.look(name, TASK)
        fake.advance(1)
        assert not admit_or_queue(fake.ctx, name, TASK, expect=[JobStatus.RECEIVED])
    admitted_order = []
    for holder in holders[:3]:
        fake.slots.release(TASK, holder)
        sweep(fake.ctx)
        admitted_order += fake.admissions.take()
    assert admitted_order == ["a", "b", "c"]


def test_a_job_ended_elsewhere_is_never_moved_back_by_a_late_deferral(fake):
    job_id = fake.admitted(model=TASK)
    fake.jobs.transition(job_id, expect=[JobStatus.ADMITTED], to=JobStatus.SUBMITTING)
    fake.jobs.transition(job_id, expect=[JobStatus.SUBMITTING], to=JobStatus.FAILED)
    with pytest.raises(SubmitDeferred):
        defer(fake.ctx, job_id, {"code": "Throttling", "message": "busy"})
    assert fake.status(job_id) == "FAILED"
    assert isinstance(fake.jobs.get(job_id), JobRecord)
