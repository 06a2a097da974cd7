"""A slot handed on without a hop (moto, in process; the provider and the state
machine are recording fakes): the function that saw a task end submits the
oldest waiting job itself, once, and only a submit that fails goes through the
submit queue."""

from dataclasses import dataclass, field, replace
from types import SimpleNamespace

from moto_stages import DAY_ONE
from tryon.image_rules import TRYON_RULES
from tryon.providers.errors import RetryableProviderError
from tryon.stages.admission import acquire_slot, admit_or_queue
from tryon.stages.submission import hand_on

MODEL = "aitryon-plus"


@dataclass
class Recorder:
    """The provider's task client, the workflow and the submit queue, as recordings."""

    fail_with: Exception | None = None
    submitted: list = field(default_factory=list)
    started: list = field(default_factory=list)
    sent: list = field(default_factory=list)

    def submit(self, request, oss_resolve=False):
        if self.fail_with:
            raise self.fail_with
        self.submitted.append(request)
        return SimpleNamespace(task_id=f"task-{len(self.submitted)}")

    def start(self, name, payload):
        self.started.append((name, payload))
        return f"arn:execution:{name}"


def stages(moto_stages, recorder):
    ctx = replace(moto_stages.ctx, provider=lambda: SimpleNamespace(tasks=recorder),
                  workflow=recorder, admissions=SimpleNamespace(send=recorder.sent.extend),
                  pacer=SimpleNamespace(wait_turn=lambda operation: None),
                  sleep=lambda seconds: None)
    moto_stages.s3.put_object(Bucket="inbox", Key="p.jpg", Body=b"person")
    moto_stages.s3.put_object(Bucket="inbox", Key="t.jpg", Body=b"top")
    return ctx


def waiting_job(ctx, job_id):
    """A checked look, as intake records it, that asks for a slot."""
    ref = {"bucket": "inbox", "extension": "jpg", "content_type": "image/jpeg"}
    ctx.store.create({
        "job_id": job_id, "status": "RECEIVED", "model": MODEL, "timeline": {},
        "inputs": {"person": "s3://inbox/p.jpg", "top": "s3://inbox/t.jpg"},
        "submit_inputs": {"person": {**ref, "key": "p.jpg"}, "top": {**ref, "key": "t.jpg"}},
        "prepared_for": TRYON_RULES.label,
        "parameters": {"resolution": -1, "restore_face": True}}, DAY_ONE)
    return admit_or_queue(ctx, job_id, MODEL, fields={}, from_statuses=["RECEIVED"])


def test_the_task_that_ended_submits_the_oldest_waiting_job_itself(moto_stages):
    recorder = Recorder()
    ctx = stages(moto_stages, recorder)
    holders = [f"running-{i}" for i in range(ctx.settings.limits(MODEL).in_flight)]
    assert all(acquire_slot(ctx, MODEL, holder) for holder in holders)
    assert not waiting_job(ctx, "first") and not waiting_job(ctx, "second")

    hand_on(ctx, MODEL, holders[0])
    hand_on(ctx, MODEL, holders[0])  # a poll retried after its task ended: no second hand-off

    first = ctx.store.get("first")
    assert first["status"] == "SUBMITTED" and first["provider_task_id"] == "task-1"
    assert ctx.store.get("second")["status"] == "QUEUED"  # first in, first out
    assert len(recorder.submitted) == 1 and recorder.sent == []  # no hop, no queue
    (name, payload), = recorder.started
    assert name == "first" and payload["task_id"] == "task-1"
    assert payload["plan"] and payload["next_delay"] == int(payload["plan"][0])
    assert set(ctx.store.slot_holders(MODEL)) == {*holders[1:], "first"}


def test_a_hand_off_that_cannot_submit_goes_through_the_submit_queue(moto_stages):
    recorder = Recorder(fail_with=RetryableProviderError(429, "Throttling", "busy"))
    ctx = stages(moto_stages, recorder)
    holders = [f"running-{i}" for i in range(ctx.settings.limits(MODEL).in_flight)]
    assert all(acquire_slot(ctx, MODEL, holder) for holder in holders)
    waiting_job(ctx, "first")

    hand_on(ctx, MODEL, holders[0])

    job = ctx.store.get("first")
    assert job["status"] == "ADMITTED" and job["error"]["code"] == "Throttling"
    assert recorder.sent == ["first"] and recorder.started == []
    assert moto_stages.counted == ["HandOffsQueued"]
    assert "first" in ctx.store.slot_holders(MODEL)  # it keeps the slot it was handed
