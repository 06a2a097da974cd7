"""What the operator sets per integration (`tryon keys set NAME ...`): its share of the
turns of waiting looks, the priorities its looks may ask for (the API refuses another
at once, intake fails that look alone), and its share of the daily budget."""

import dataclasses
import io
import json

import pytest
from fakes import INBOX
from PIL import Image
from test_fair_turns import MODEL, admissions, full, queue
from tryon.adapters.integrations import Integration
from tryon.job_record import JobStatus
from tryon.jobs import Source, job_id_for, utc_day
from tryon.stages.admission import admit_or_queue, release_slot
from tryon.stages.api_requests import Problem, accept_looks
from tryon.stages.intake import take_upload
from tryon_ops import operations as ops


def test_a_share_of_two_takes_two_turns_to_anothers_one(fake):
    fake.integrations.items["retailer-b"] = {"share": 2}
    holders = full(fake)
    for i in range(4):
        queue(fake, f"a-{i}", "retailer-a", "batch")
    for i in range(4):
        queue(fake, f"b-{i}", "retailer-b", "batch")
    assert admissions(fake, holders, 8) == ["a-0", "b-0", "b-1", "a-1", "b-2", "b-3",
                                            "a-2", "a-3"]


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((768, 1024), 64).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def taken(fake, key: str, manifest: dict) -> dict:
    photo = jpeg()
    for name in ("p.jpg", "t.jpg", "t2.jpg"):
        fake.storage.put(INBOX, name, photo)
    source = Source(INBOX, key, "etag", fake.storage.put(INBOX, key, json.dumps(
        manifest).encode(), "application/json"))
    take_upload(fake.ctx, source)
    return {look["id"]: fake.jobs.get(job_id_for(source, look["id"]))
            for look in manifest.get("looks", [manifest])}


LOOK = {"id": "one", "person": "p.jpg", "top": "t.jpg"}


def test_intake_fails_a_look_asking_for_a_priority_its_integration_may_not_use(fake):
    fake.integrations.items["acme"] = {"priorities": ["batch"]}
    jobs = taken(fake, "jobs/api/acme/n1.json", {"version": 1, "looks": [
        {**LOOK, "priority": "interactive"}, {**LOOK, "id": "two", "top": "t2.jpg"}]})
    refused = jobs["one"]
    assert refused.status == JobStatus.FAILED and refused.error["code"] == "PriorityNotAllowed"
    assert refused.error["message"] == (
        "s3://inbox/jobs/api/acme/n1.json: look 'one' (at /looks/0) asks for priority "
        "'interactive', which integration 'acme' may not use (it may use batch): set "
        "priority to one of those, or leave it out (one look alone is interactive, more "
        "are batch, where allowed), or ask the operator to allow it with `tryon keys set "
        "acme --priorities ...`")
    assert jobs["two"].status == JobStatus.ADMITTED and jobs["two"].priority == "batch"
    # One look alone is interactive by default, except where the integration may not.
    alone = taken(fake, "jobs/api/acme/n2.json", {"version": 1, **LOOK})["one"]
    assert alone.status == JobStatus.ADMITTED and alone.priority == "batch"
    elsewhere = taken(fake, "jobs/api/other/n3.json", {"version": 1, **LOOK})["one"]
    assert elsewhere.priority == "interactive"


@pytest.fixture
def api_ctx(moto_stages):
    ctx = moto_stages.ctx
    ctx.settings = dataclasses.replace(ctx.settings, inbox_bucket="inbox",
                                       daily_image_budget=20)
    for name in ("person", "top0", "top1", "top2"):
        moto_stages.s3.put_object(Bucket="inbox", Key=f"uploads/acme/u/{name}.jpg", Body=b"x")
    return ctx


def api_looks(count: int, **fields) -> dict:
    return {"version": 1, "looks": [
        {"id": f"l{i}", "person": "uploads/acme/u/person.jpg",
         "top": f"uploads/acme/u/top{i}.jpg", **fields}
        for i in range(count)]}


def test_the_api_refuses_a_priority_the_operator_does_not_allow_and_writes_nothing(
        api_ctx, moto_stages):
    batch_only = Integration("acme", 50, priorities=("batch",))
    with pytest.raises(Problem) as refused:
        accept_looks(api_ctx, batch_only, api_looks(1, priority="interactive"), "n1")
    assert (refused.value.status, refused.value.code) == (422, "PriorityNotAllowed")
    assert "asks for priority 'interactive'" in refused.value.message
    assert "Contents" not in moto_stages.s3.list_objects_v2(Bucket="inbox", Prefix="jobs/")
    assert api_ctx.integrations.quota_used("acme", utc_day(api_ctx.clock())) == 0
    assert accept_looks(api_ctx, batch_only, api_looks(1, priority="batch"), "n2")["looks"]


def test_a_budget_share_caps_the_quota_at_that_fraction_of_the_days_budget(api_ctx):
    capped = Integration("acme", 50, budget_share=0.1)  # 0.1 x 20 = 2 images a day
    assert capped.quota(20) == 2 and Integration("acme", 50).quota(20) == 50
    accept_looks(api_ctx, capped, api_looks(2), "n1")
    with pytest.raises(Problem) as refused:
        accept_looks(api_ctx, capped, api_looks(1), "n2")
    assert (refused.value.status, refused.value.code) == (429, "QuotaExceeded")
    assert refused.value.message.startswith(
        "1 more images would pass this integration's quota of 2 a day (its share 0.1 of the "
        "stack's 20 a day) (2 used on")


def test_the_operator_sets_them_and_the_authorizer_hands_them_on(moto_stages):
    target = ops.Target("the test stack", None, moto_stages.ctx, {}, None)
    integrations = moto_stages.ctx.integrations
    key = ops.create_key(target, "acme", 500, None)["key"]
    assert ops.set_settings(target, "acme", {"share": 2.5, "priorities": ["batch"],
                                             "budget_share": 0.25})["share"] == 2.5
    who = integrations.authenticate(key, 100)
    assert (who.priorities, who.budget_share) == (("batch",), 0.25)
    assert Integration.from_context(who.context()) == who  # strings through API Gateway
    [listed] = ops.list_keys(target)
    budget = ops.budget(target)["limit"]
    assert listed["daily_quota"] == min(500, int(0.25 * budget))
    assert (f"of {listed['daily_quota']} images used today (UTC) (at most 0.25 of the "
            "budget); instruction off; share 2.5; priorities batch") in ops.format_keys([listed])
    # What admission and intake read: the settings alone, never the keys' hashes.
    assert integrations.settings("acme") == {"share": 2.5, "priorities": ["batch"],
                                             "budget_share": 0.25}
    assert integrations.settings("nobody") == {}
    ops.set_settings(target, "acme", {"max_in_flight": 3})
    assert "; at most 3 slots of a model" in ops.format_keys(ops.list_keys(target))

    ops.set_settings(target, "acme", {"budget_share": None, "priorities": None})
    who = integrations.authenticate(key, 100)
    assert (who.priorities, who.budget_share) == (("interactive", "batch"), None)
    for values, why in (({"share": 0}, "share 0 is out of range"),
                        ({"budget_share": 1.5}, "budget share 1.5 is out of range"),
                        ({"priorities": ["urgent"]}, "priorities must be some of"),
                        ({"max_in_flight": 0}, "max in flight 0 is out of range")):
        with pytest.raises(ops.OperatorError, match=why):
            ops.set_settings(target, "acme", values)
    with pytest.raises(ops.OperatorError, match="no integration named 'nobody'"):
        ops.set_settings(target, "nobody", {"share": 2})


def test_an_integration_at_its_cap_of_slots_waits_while_others_take_them(fake):
    fake.integrations.items["retailer-a"] = {"max_in_flight": 1}
    holders = full(fake)
    for i in range(3):
        queue(fake, f"a-{i}", "retailer-a", "batch")
    queue(fake, "b-0", "retailer-b", "batch")
    # A's turn first; then A holds its one slot, and B's look takes the next in A's stead.
    assert admissions(fake, holders, 2) == ["a-0", "b-0"]
    freed = holders.pop(0)  # a third slot comes free: nobody but A waits, and A is at its cap
    assert release_slot(fake.ctx, MODEL, freed, send=False) == []
    assert fake.ctx.slots.in_flight(MODEL, "retailer-a") == 1
    assert fake.jobs.get("a-1").status == JobStatus.QUEUED
    # A's look ends: its next one takes the slot.
    assert release_slot(fake.ctx, MODEL, "a-0", send=False) == ["a-1"]


def test_a_look_of_an_integration_at_its_cap_queues_even_with_slots_free(fake):
    fake.integrations.items["acme"] = {"max_in_flight": 1}
    for job_id, owner, admitted in (("first", "acme", True), ("second", "acme", False),
                                    ("other", "shop", True)):
        fake.look(job_id, MODEL, owner=owner)
        assert admit_or_queue(fake.ctx, job_id, MODEL, expect=[JobStatus.RECEIVED],
                              owner=owner) is admitted, job_id
    assert fake.jobs.get("second").status == JobStatus.QUEUED
