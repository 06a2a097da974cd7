"""A slot handed on without a hop (on the fakes): the function that saw a task end
submits the oldest waiting job itself, once, and only a submit that fails goes
through the submit queue."""

from tryon.job_record import JobStatus
from tryon.stages.admission import acquire_slot, admit_or_queue
from tryon.stages.hand_on import hand_on

MODEL = "aitryon-plus"


def full(stack) -> list[str]:
    """Every slot of MODEL taken by a running job."""
    holders = [f"running-{i}" for i in range(stack.ctx.capacity.of(MODEL).slots)]
    assert all(acquire_slot(stack.ctx, MODEL, holder) for holder in holders)
    return holders


def waiting_job(stack, job_id):
    """A checked look, as intake records it, that asks for a slot."""
    stack.look(job_id, MODEL)
    stack.advance(1)
    return admit_or_queue(stack.ctx, job_id, MODEL, expect=[JobStatus.RECEIVED])


def test_the_task_that_ended_submits_the_oldest_waiting_job_itself(fake):
    holders = full(fake)
    assert not waiting_job(fake, "first") and not waiting_job(fake, "second")

    hand_on(fake.ctx, MODEL, holders[0])
    hand_on(fake.ctx, MODEL, holders[0])  # a poll retried after its task ended: no second

    first = fake.jobs.get("first")
    [task_id] = fake.provider.tasks
    assert first.status == JobStatus.SUBMITTED and first.provider_task_id == task_id
    assert fake.status("second") == "QUEUED"  # first in, first out
    assert fake.provider.calls["submit"] == 1 and fake.admissions.sent == []  # no hop
    [(name, payload)] = fake.workflow.started.items()
    assert name == "first" and payload["task_id"] == task_id
    assert payload["plan"] and payload["next_delay"] == int(payload["plan"][0])
    assert set(fake.slots.holders(MODEL)) == {*holders[1:], "first"}


def test_a_hand_off_that_cannot_submit_goes_through_the_submit_queue(fake):
    fake.configure(provider_queue_ahead=0)  # a throttled lookahead submit waits QUEUED again
    holders = full(fake)
    waiting_job(fake, "first")
    fake.provider.throttled["submit"] = 10

    hand_on(fake.ctx, MODEL, holders[0])

    job = fake.jobs.get("first")
    assert job.status == JobStatus.ADMITTED and job.error["code"] == "Throttling"
    assert fake.admissions.sent == ["first"] and fake.workflow.started == {}
    assert fake.counted == ["HandOffsQueued"]
    assert "first" in fake.slots.holders(MODEL)  # it keeps the slot it was handed


def test_a_hand_off_whose_submit_turn_is_far_goes_through_the_submit_queue(fake):
    # A rate-bound model (20 submits a minute): waiting here for the submit's turn
    # would hold up the result of the job that just ended.
    holders = full(fake)
    waiting_job(fake, "first")
    fake.pacer.far.add(f"submit:{MODEL}")

    hand_on(fake.ctx, MODEL, holders[0])

    assert fake.status("first") == "ADMITTED" and fake.admissions.sent == ["first"]
    assert fake.provider.calls["submit"] == 0 and fake.counted == ["HandOffsQueued"]
    assert "first" in fake.slots.holders(MODEL)  # it keeps the slot it was handed


def test_a_hand_off_whose_queue_message_is_lost_too_leaves_it_to_the_sweep(fake):
    fake.configure(provider_queue_ahead=0)
    holders = full(fake)
    waiting_job(fake, "first")
    fake.provider.throttled["submit"] = 10
    fake.admissions.fail_next()

    hand_on(fake.ctx, MODEL, holders[0])  # the caller's own job goes on regardless

    assert fake.status("first") == "ADMITTED" and "first" in fake.slots.holders(MODEL)
