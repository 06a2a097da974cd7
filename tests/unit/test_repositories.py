"""The repositories of the jobs table and their fakes, held to one behaviour: each
check runs on the DynamoDB repositories (moto, in process) and on tests/fakes,
so a stage test on the fakes means what it would on DynamoDB."""

from types import SimpleNamespace

import pytest
from fakes import FakeStack
from tryon.adapters.checked_images import CHECK_LEASE_SECONDS, CHECKED_TTL_SECONDS
from tryon.adapters.jobs import TransitionRefused
from tryon.adapters.slots import QUEUE_ATTRIBUTES, parse_order, queue_entry
from tryon.job_record import JobRecord, JobStatus, ProviderStatus
from tryon.jobs import (
    SHARD_LOOKS,
    batch_complete,
    batch_order,
    batch_total,
    ended_counts,
    images_made,
    shard_sizes,
)

NOW = 1_795_000_000.0


@pytest.fixture(params=["dynamodb", "fake"])
def repos(request):
    if request.param == "fake":
        return FakeStack()
    ctx = request.getfixturevalue("moto_stages").ctx
    return SimpleNamespace(jobs=ctx.jobs, batches=ctx.batches, slots=ctx.slots,
                           queue=ctx.queue, budget=ctx.budget, task_owners=ctx.task_owners,
                           durations=ctx.durations, retired=ctx.retired,
                           message_errors=ctx.message_errors, limit_notes=ctx.limit_notes,
                           checked_images=ctx.checked_images)


def job(job_id="j", **fields) -> JobRecord:
    return JobRecord(job_id=job_id, status=fields.pop("status", JobStatus.RECEIVED),
                     model="aitryon-plus", timeline={"received": NOW}, **fields)


def test_a_job_is_created_once_and_read_back_whole(repos):
    record = job(inputs={"person": "s3://inbox/p.jpg"}, attributes={"sku": "1"},
                 parameters={"resolution": -1, "restore_face": True}, polls=0)
    assert repos.jobs.create(record, NOW)
    assert not repos.jobs.create(job(look_id="other"), NOW)  # a redelivery
    assert repos.jobs.get("j") == record and repos.jobs.get("nobody") is None
    assert repos.jobs.get_many(["nobody", "j"]) == [record]


def test_a_transition_applies_only_from_the_statuses_it_expects(repos):
    repos.jobs.create(job(), NOW)
    assert repos.jobs.transition("j", expect=[JobStatus.RECEIVED], to=JobStatus.QUEUED,
                                 timeline={"queued": NOW + 1}, waiting_for="slot",
                                 **queue_entry("aitryon-plus", NOW + 1, "j"))
    assert not repos.jobs.transition("j", expect=[JobStatus.RECEIVED], to=JobStatus.FAILED)
    assert [j for j, _ in repos.queue.next_up("aitryon-plus", 10)] == ["j"]
    assert repos.jobs.transition("j", expect=[JobStatus.QUEUED], to=JobStatus.ADMITTED,
                                 remove=QUEUE_ATTRIBUTES, increment={"submit_attempts": 1})
    got = repos.jobs.get("j")
    assert (got.status, got.queue, got.waiting_for, got.submit_attempts) == (
        JobStatus.ADMITTED, None, None, 1)
    assert got.timeline == {"received": NOW, "queued": NOW + 1}
    assert repos.queue.next_up("aitryon-plus", 10) == []
    assert repos.queue.waiting("aitryon-plus") == {}
    assert not repos.jobs.transition("nobody", expect=[JobStatus.RECEIVED], to=JobStatus.QUEUED)


def test_a_transition_the_table_refuses_or_an_unknown_field_raises(repos):
    repos.jobs.create(job(), NOW)
    with pytest.raises(TransitionRefused):
        repos.jobs.transition("j", expect=[JobStatus.RECEIVED], to=JobStatus.SUCCEEDED)
    with pytest.raises(ValueError, match="not job fields"):
        repos.jobs.update("j", colour="red")
    with pytest.raises(ValueError, match="status"):
        repos.jobs.update("j", status=JobStatus.FAILED)
    assert repos.jobs.get("j").status == JobStatus.RECEIVED


def test_update_sets_fields_and_claims_once(repos):
    repos.jobs.create(job(), NOW)
    assert repos.jobs.update("j", provider_status=ProviderStatus.RUNNING, polls=2,
                             timeline={"provider_start": NOW + 3}, error=None)
    assert repos.jobs.update("j", notified_at=NOW, only_if_absent="notified_at")
    assert not repos.jobs.update("j", notified_at=NOW + 1, only_if_absent="notified_at")
    repos.jobs.record_request_id("j", "query", "req-1")
    repos.jobs.record_request_id("j", "query", None)
    got = repos.jobs.get("j")
    assert (got.provider_status, got.polls, got.notified_at, got.last_query_request_id) == (
        ProviderStatus.RUNNING, 2, NOW, "req-1")
    assert got.timeline["provider_start"] == NOW + 3
    assert repos.jobs.update("j", remove=["notified_at"]) and repos.jobs.get(
        "j").notified_at is None


def test_an_owners_jobs_are_listed_newest_first_a_page_at_a_time(repos):
    for i in range(5):
        repos.jobs.create(job(f"j{i}", owner="acme", owner_order=f"{NOW + i:017.3f}#j{i}",
                              status=JobStatus.QUEUED if i % 2 else JobStatus.RECEIVED), NOW)
    repos.jobs.create(job("other", owner="globex", owner_order=f"{NOW:017.3f}#other"), NOW)
    page, after = repos.jobs.owned("acme", status=None, limit=2, after=None)
    assert [j.job_id for j in page] == ["j4", "j3"] and after
    page, after = repos.jobs.owned("acme", status=None, limit=10, after=after)
    assert [j.job_id for j in page] == ["j2", "j1", "j0"] and after is None
    queued, _ = repos.jobs.owned("acme", status="QUEUED", limit=10, after=None)
    assert [j.job_id for j in queued] == ["j3", "j1"]


def test_slots_are_taken_up_to_the_limit_once_per_job(repos):
    assert repos.slots.acquire("m", "a", NOW + 5, 2) and repos.slots.acquire("m", "a", NOW + 6, 2)
    assert repos.slots.acquire("m", "b", NOW + 5, 2) and not repos.slots.acquire("m", "c", NOW, 2)
    assert repos.slots.renew("m", "a", NOW + 9) and not repos.slots.renew("m", "c", NOW)
    assert repos.slots.holders("m") == {"a": NOW + 9, "b": NOW + 5}
    assert repos.slots.release("m", "a") and not repos.slots.release("m", "a")
    assert repos.slots.holders("m") == {"b": NOW + 5} and repos.slots.holders("x") == {}


def test_slots_know_whose_job_holds_them_until_it_gives_them_back(repos):
    for job_id, tenant in (("a1", "acme"), ("a2", "acme"), ("s1", "shop"), ("u1", None)):
        assert repos.slots.acquire("m", job_id, NOW + 5, 9, tenant=tenant)
    assert (repos.slots.in_flight("m", "acme"), repos.slots.in_flight("m", "shop")) == (2, 1)
    assert repos.slots.release("m", "a1") and repos.slots.in_flight("m", "acme") == 1
    assert repos.slots.release("m", "u1")  # a bucket look's slot: no tenant noted
    assert repos.slots.holders("m") == {"a2": NOW + 5, "s1": NOW + 5}


def test_the_budget_counts_each_job_once_and_gives_a_place_back(repos):
    for name in ("a", "b", "c"):
        repos.jobs.create(job(name), NOW)
    assert repos.budget.charge("a", "d1", 2, NOW) and repos.budget.charge("a", "d1", 2, NOW)
    assert repos.budget.charge("b", "d1", 2, NOW) and not repos.budget.charge("c", "d1", 2, NOW)
    assert not repos.budget.charge("nobody", "d1", 5, NOW)
    assert not repos.budget.charge("c", "d2", 0, NOW)
    assert repos.budget.spent("d1") == {"spent": 2, "reached_at": None}
    assert repos.budget.claim_notice("d1", NOW) and not repos.budget.claim_notice("d1", NOW)
    repos.budget.refund("a")
    repos.budget.refund("a")
    assert repos.budget.spent("d1") == {"spent": 1, "reached_at": NOW}
    assert repos.jobs.get("a").budget_day is None and repos.jobs.get("b").budget_day == "d1"
    repos.budget.release_notice("d1")
    assert repos.budget.claim_notice("d1", NOW)
    assert repos.budget.override() is None
    repos.budget.set_override(7)
    assert repos.budget.override() == 7
    repos.budget.set_override(None)
    assert repos.budget.override() is None


def test_batches_count_each_jobs_end_once_and_complete_once(repos):
    places = range(SHARD_LOOKS + 1)  # two shards: 100 jobs and 1
    assert repos.batches.create({"batch_id": "b", "total": len(places),
                                 "shards": shard_sizes(places), "owner": None}, NOW)
    assert not repos.batches.create({"batch_id": "b", "job_ids": []}, NOW)
    for place in places:
        status = "SUCCEEDED" if place % 2 else "FAILED"
        done = repos.batches.record_end("b", f"j{place}", status, "m", batch_order(place))
        assert batch_complete(done) == (place == SHARD_LOOKS), place
    again = repos.batches.record_end("b", "j1", "SUCCEEDED", "m", batch_order(1))  # repeated
    assert batch_complete(again)
    batch = repos.batches.get("b")
    assert (batch["ended"], batch_total(batch)) == (101, 101)
    assert ended_counts(batch) == {"succeeded": 50, "failed": 51}
    assert images_made(batch, None) == {"m": 50}
    assert repos.batches.claim_notification("b", NOW)
    assert not repos.batches.claim_notification("b", NOW)
    repos.batches.release_notification("b")
    assert repos.batches.claim_notification("b", NOW) and repos.batches.get("nobody") is None


def test_a_batch_recorded_before_the_shards_still_completes_by_its_set(repos):
    repos.batches.create({"batch_id": "old", "job_ids": ["x", "y"]}, NOW)
    repos.batches.record_end("old", "x", "SUCCEEDED")
    old = repos.batches.record_end("old", "x", "SUCCEEDED")
    assert old["ended_jobs"] == {"x"} and batch_total(old) == 2
    assert not batch_complete(old)
    assert batch_complete(repos.batches.record_end("old", "y", "FAILED"))


def test_a_batch_names_each_retry_once(repos):
    repos.batches.create({"batch_id": "b", "job_ids": ["x"]}, NOW)
    for retry in ("r1", "r1", "r2"):  # r1 asked twice
        repos.batches.add_retry("b", retry)
    assert repos.batches.get("b")["retries"] == ["r1", "r2"]


def test_a_large_batchs_jobs_are_read_in_its_order_a_page_at_a_time(repos):
    for place in (2, 0, 1):
        repos.jobs.create(job(job_id=f"j{place}", batch_id="big",
                              batch_order=batch_order(place)), NOW)
    repos.jobs.create(job(job_id="other", batch_id="small"), NOW)  # no place: not indexed
    first, after = repos.jobs.of_batch("big", limit=2, after=None)
    rest, end = repos.jobs.of_batch("big", limit=2, after=after)
    assert [j.job_id for j in first + rest] == ["j0", "j1", "j2"] and end is None


def test_what_the_pipeline_remembers_of_the_provider(repos):
    assert repos.task_owners.claim("t1", "a", NOW) and repos.task_owners.claim("t1", "a", NOW)
    assert not repos.task_owners.claim("t1", "b", NOW) and repos.task_owners.owner("t1") == "a"
    assert repos.task_owners.owner("t2") is None
    repos.durations.record("m", "t1", 12.5)
    repos.durations.record("m", "t1", 13.0)  # a task has one place
    assert repos.durations.recent("m") == [13.0] and repos.durations.recent("x") == []
    repos.durations.record("m", "t1", 20.0, since="submit")  # its queue wait included
    assert repos.durations.recent("m", since="submit") == [20.0]
    assert repos.durations.recent("m") == [13.0]
    assert repos.retired.until("m") == 0
    repos.retired.remember("m", NOW + 60, {"code": "ModelNotFound", "message": "gone"})
    assert repos.retired.until("m") == NOW + 60
    assert repos.message_errors.last("msg") is None
    repos.message_errors.remember("msg", {"code": "E", "message": "m"}, NOW)
    assert repos.message_errors.last("msg") == {"code": "E", "message": "m"}


def test_what_the_pipeline_learned_of_each_models_limits(repos):
    notes = repos.limit_notes
    assert notes.read() == {}
    notes.record_read("qwen-image-3.0", {"requests": 20, "period": 60, "running": 10}, NOW)
    notes.record_read("aitryon", None, NOW)  # the provider lists none
    assert notes.record_failure("aitryon-plus", {"code": "Throttling", "message": "m"}, NOW)
    assert not notes.record_failure("aitryon-plus", {"code": "Throttling", "message": "m"},
                                    NOW + 5)  # said once
    assert notes.hold_until("qwen-image-3.0", "slowed_until", NOW + 60, NOW)
    assert not notes.hold_until("qwen-image-3.0", "slowed_until", NOW + 90, NOW + 30)
    assert notes.hold_until("qwen-image-3.0", "slowed_until", NOW + 200, NOW + 61)
    assert notes.read() == {
        "qwen-image-3.0": {"limits": {"requests": 20, "period": 60, "running": 10},
                           "read_at": NOW, "slowed_until": NOW + 200},
        "aitryon": {"limits": {}, "read_at": NOW},
        "aitryon-plus": {"read_error": {"code": "Throttling", "message": "m"},
                         "failed_at": NOW + 5}}
    notes.record_read("aitryon-plus", {"requests": 10, "period": 1}, NOW + 9)
    assert notes.read()["aitryon-plus"] == {"limits": {"requests": 10, "period": 1},
                                            "read_at": NOW + 9}


def test_credentials_and_the_budget_override_live_apart_from_the_jobs(moto_stages):
    """What says who may call and spend is in the credentials table, which the functions
    that decode images cannot write (tests/unit/test_template_security.py)."""
    import boto3

    ctx = moto_stages.ctx
    ctx.integrations.create_key("acme", 5, NOW)
    ctx.integrations.allow_principal("acme", "arn:aws:iam::123456789012:role/acme", NOW)
    ctx.integrations.charge_quota("acme", "2026-11-18", 1, 5, NOW)
    ctx.budget.set_override(9)
    kinds = {}
    for table in ("jobs", "credentials"):
        items = boto3.resource("dynamodb").Table(table).scan()["Items"]
        kinds[table] = {item["pk"].split("#")[0] for item in items}
    assert kinds["credentials"] == {"INTEGRATIONS", "APIKEY", "PRINCIPAL", "QUOTA", "BUDGET"}
    assert not kinds["jobs"] & kinds["credentials"]


def test_a_stacks_old_credentials_move_to_the_credentials_table_once(moto_stages):
    import boto3
    from tryon.adapters.integrations import Integrations
    from tryon_ops import operations as ops

    ctx = moto_stages.ctx
    legacy = Integrations("jobs")  # where stacks before the credentials table kept them
    key, _ = legacy.create_key("acme", 5, NOW)
    boto3.resource("dynamodb").Table("jobs").put_item(
        Item={"pk": "BUDGET#LIMIT", "sk": "BUDGET", "limit": 9})
    ctx.jobs.create(job(), NOW)
    target = ops.Target("the test stack", boto3, ctx, {}, None)
    assert ops.migrate_credentials(target) == {"INTEGRATIONS": 1, "APIKEY": 1, "BUDGET#LIMIT": 1}
    assert ctx.integrations.authenticate(key, 100).name == "acme"
    assert ctx.budget.override() == 9 and legacy.authenticate(key, 100) is None
    assert ctx.jobs.get("j") is not None  # jobs stay where they are
    assert ops.migrate_credentials(target) == {}


def test_turns_on_dynamodb_interleave_tenants_and_put_interactive_first(repos):
    model, orders = "qwen-image-3.0-pro", {}
    for job_id, tenant, priority, share in [("a0", "a", "batch", 1), ("a1", "a", "batch", 1),
                                            ("a2", "a", "batch", 1), ("b0", "b", "batch", 2),
                                            ("b1", "b", "batch", 2), ("live", "b",
                                                                      "interactive", 1)]:
        repos.jobs.create(job(job_id=job_id), NOW)
        entry = repos.queue.entry(model, priority, tenant, share, NOW, job_id)
        assert repos.jobs.transition(job_id, expect=[JobStatus.RECEIVED], to=JobStatus.QUEUED,
                                     **entry)
        orders[job_id] = entry["queued_order"]
    # b has twice a's share: its two turns fit in a's first.
    assert [j for j, _ in repos.queue.next_up(model, 10)] == ["live", "a0", "b0", "b1", "a1",
                                                              "a2"]
    repos.queue.served(model, orders["a1"])
    repos.queue.served(model, orders["a0"])  # late: the clock never goes back
    late = repos.queue.entry(model, "batch", "c", 1, NOW + 5, "c0")
    assert parse_order(late["queued_order"]) == ("batch", 1.0, "c")
    # Who waits, from the index alone; a tenant once seen stays, at 0 when none waits.
    assert repos.queue.waiting(model) == {"a": 3, "b": 3, "c": 0}


def test_a_checked_image_is_read_back_for_its_version_and_rules_until_it_expires(repos):
    checked = repos.checked_images
    outcome = {"ready": {"key": "normalized/x.jpg", "fixes": ["converted"]}}
    checked.put("inbox", "models/a.jpg", "v1", "tryon-v1", outcome, 1000.0)
    assert checked.get("inbox", "models/a.jpg", "v1", "tryon-v1", 1001.0) == outcome
    for other in (("inbox", "models/a.jpg", "v2", "tryon-v1"),
                  ("inbox", "models/a.jpg", "v1", "qwen-v1"),
                  ("other", "models/a.jpg", "v1", "tryon-v1")):
        assert checked.get(*other, 1001.0) is None
    assert checked.get("inbox", "models/a.jpg", "v1", "tryon-v1",
                       1000.0 + CHECKED_TTL_SECONDS) is None
    # A claim to check a version: one holder until its lease lapses, or the outcome.
    assert checked.claim("inbox", "models/b.jpg", "v1", "tryon-v1", 1000.0)
    assert not checked.claim("inbox", "models/b.jpg", "v1", "tryon-v1", 1001.0)
    assert checked.get("inbox", "models/b.jpg", "v1", "tryon-v1", 1001.0) is None
    assert checked.claim("inbox", "models/b.jpg", "v1", "tryon-v1", 1000.0 + CHECK_LEASE_SECONDS)
    assert not checked.claim("inbox", "models/a.jpg", "v1", "tryon-v1", 1001.0)  # recorded
