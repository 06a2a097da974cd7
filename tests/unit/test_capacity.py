"""Each model's capacity (on the fakes): where its limits come from, the provider's
limits read at the sweep, a RateQuota slowdown, and the lookahead the provider
queues, refused and cut."""

import httpx
import pytest
from tryon.capacity import AHEAD_CUT_SECONDS, CACHE_SECONDS, SLOWDOWN_SECONDS
from tryon.job_record import JobStatus
from tryon.models.registry import Limits
from tryon.pacing import Rate
from tryon.providers.dashscope_limits import LimitsClient
from tryon.providers.errors import PermanentProviderError, RetryableProviderError
from tryon.stages import provider_limits
from tryon.stages.admission import acquire_slot, admit_or_queue
from tryon.stages.hand_on import hand_on
from tryon.stages.submit import submit_admitted

QWEN = "qwen-image-3.0"
TRYON = "aitryon-plus"
ANSWER = {"requests": 30, "period": 60, "running": 12, "queue": 200}


def test_limits_come_from_the_override_else_the_provider_else_the_registry(fake):
    assert (fake.ctx.capacity.of(QWEN).limits, fake.ctx.capacity.of(QWEN).source) == (
        Limits(10, 20, 60), "default")
    fake.provider.limits[QWEN] = ANSWER
    assert provider_limits.refresh(fake.ctx)[QWEN] == "read"
    read = fake.ctx.capacity.of(QWEN)
    assert (read.limits, read.source, read.slots) == (Limits(12, 30, 60, 200), "provider", 13)
    fake.configure(limit_overrides={QWEN: Limits(4, 6, 60)})
    # The operator's figures win; the provider's queue cap still bounds the lookahead.
    assert fake.ctx.capacity.of(QWEN).limits == Limits(4, 6, 60, 200)
    assert fake.ctx.capacity.of(QWEN).source == "override"


def test_a_synchronous_models_calls_in_flight_follow_from_its_rate():
    from tryon.capacity import provider_limits as limits_of
    assert limits_of({"requests": 4, "period": 1}, "qwen-image-2.0") == Limits(180, 4, 1)
    assert limits_of({"requests": 6, "period": 60}, "qwen-image-2.0-pro") == Limits(5, 6, 60)
    assert limits_of({"requests": 0, "period": 60}, QWEN) is None
    assert limits_of({}, QWEN) is None


def test_the_lookahead_is_a_setting_bounded_by_the_providers_queue(fake):
    assert fake.ctx.capacity.of(TRYON).slots == 6  # 5 running, 1 queued ahead
    assert fake.ctx.capacity.of("qwen-image-2.0").ahead == 0  # a call has no queue
    fake.configure(provider_queue_ahead=3)
    fake.provider.limits[QWEN] = {**ANSWER, "queue": 2}
    provider_limits.refresh(fake.ctx)
    assert fake.ctx.capacity.of(QWEN).ahead == 2
    fake.configure(provider_queue_ahead=0)
    assert fake.ctx.capacity.of(TRYON).slots == 5


def test_limits_are_read_at_start_then_hourly_and_a_failure_is_said_once(fake):
    fake.provider.limits[QWEN] = ANSWER
    first = provider_limits.refresh(fake.ctx)
    assert first[QWEN] == "read" and first[TRYON] == "unlisted"  # the default stays
    assert fake.provider.calls["limits"] == 6  # every model, once
    fake.advance(1800)
    assert provider_limits.refresh(fake.ctx) == {}  # not due
    fake.advance(1801)
    fake.provider.throttled["limits"] = 12  # the limits API is unreachable now
    assert set(provider_limits.refresh(fake.ctx).values()) == {"failed"}
    assert fake.counted.count("ProviderLimitsUnreadable") == 6  # once per model
    fake.advance(provider_limits.RETRY_SECONDS + 1)
    assert set(provider_limits.refresh(fake.ctx).values()) == {"failed"}
    assert fake.counted.count("ProviderLimitsUnreadable") == 6  # not said again
    fake.advance(CACHE_SECONDS)
    kept = fake.ctx.capacity.of(QWEN)
    assert (kept.limits.in_flight, kept.source, kept.read_error["code"]) == (
        12, "provider", "Throttling")  # the last known limits stay in force
    fake.advance(provider_limits.RETRY_SECONDS + 1)
    assert provider_limits.refresh(fake.ctx)[QWEN] == "read"
    assert fake.ctx.capacity.of(QWEN).read_error is None
    fake.advance(3601)
    fake.provider.throttled["limits"] = 1
    provider_limits.refresh(fake.ctx)
    assert fake.counted.count("ProviderLimitsUnreadable") == 7  # a new failure is said


def test_a_rate_quota_answer_halves_the_models_rate_for_a_while(fake):
    job_id = fake.admitted("look", QWEN)
    fake.provider.throttled["submit"] = 1
    fake.provider.throttled_code = "Throttling.RateQuota"
    submit_admitted(fake.ctx, job_id)
    assert fake.status(job_id) == "SUBMITTED" and fake.provider.calls["submit"] == 2
    capacity = fake.ctx.capacity.of(QWEN)
    assert capacity.slowed and capacity.rate == Rate(20, 120)
    assert fake.counted.count("ProviderSlowedDown") == 1
    fake.advance(SLOWDOWN_SECONDS + CACHE_SECONDS)
    assert fake.ctx.capacity.of(QWEN).rate == Rate(20, 60)


def fill(fake, model: str, running: int) -> list[str]:
    """`running` jobs submitted and running at the provider."""
    jobs = []
    for i in range(running):
        jobs.append(fake.admitted(f"running-{i}", model))
        submit_admitted(fake.ctx, jobs[-1])
    return jobs


def test_a_task_is_submitted_ahead_of_a_free_slot_and_a_refused_one_waits_queued(fake):
    running = fill(fake, TRYON, 5)
    ahead = fake.admitted("ahead", TRYON)  # the sixth slot: queued at the provider
    fake.look("next", TRYON)
    assert not admit_or_queue(fake.ctx, "next", TRYON, expect=[JobStatus.RECEIVED])
    fake.provider.throttled["submit"] = 1  # the provider's queue is full
    submit_admitted(fake.ctx, ahead)
    job = fake.jobs.get(ahead)
    assert job.status == JobStatus.QUEUED and job.provider_task_id is None
    assert fake.provider.calls["submit"] == 6  # one refused: nothing created
    assert ahead not in fake.slots.holders(TRYON) and fake.counted == ["LookaheadRefused"]
    assert fake.ctx.capacity.of(TRYON).slots == 5  # the lookahead is off for a while
    assert fake.admissions.take() == []  # and its slot was not handed on
    # A task ends: the job refused first (oldest in the queue) takes its slot.
    fake.advance(fake.provider.duration)
    hand_on(fake.ctx, TRYON, running[0])
    assert fake.status(ahead) == "SUBMITTED" and fake.status("next") == "QUEUED"
    assert fake.budget.spent("2026-11-18")["spent"] == 7  # charged once each
    fake.advance(AHEAD_CUT_SECONDS + CACHE_SECONDS)
    assert fake.ctx.capacity.of(TRYON).slots == 6


def test_a_throttled_submit_within_the_running_limit_is_retried_not_queued(fake):
    job_id = fake.admitted("look", TRYON)
    fake.provider.throttled["submit"] = 1
    submit_admitted(fake.ctx, job_id)
    assert fake.status(job_id) == "SUBMITTED" and fake.counted == []


def test_the_deadline_counts_a_tasks_run_not_its_wait_in_the_providers_queue(fake):
    fake.configure(poll_deadline_seconds=120)
    fake.provider.duration = 110  # it runs just within its deadline
    job_id = fake.admitted("look", TRYON)
    submit_admitted(fake.ctx, job_id)
    task_id = fake.jobs.get(job_id).provider_task_id
    fake.provider.hold(task_id)  # queued behind the running ones
    fake.advance(60)
    fake.provider.hold(task_id, False)  # starts 60 s after its submit
    end, _, _ = fake.run(job_id)
    assert end == "JobSucceeded" and fake.status(job_id) == "SUCCEEDED"


def test_a_task_still_queued_at_its_deadline_is_canceled(fake):
    fake.configure(poll_deadline_seconds=120)
    job_id = fake.admitted("look", TRYON)
    submit_admitted(fake.ctx, job_id)
    fake.provider.hold(fake.jobs.get(job_id).provider_task_id)
    end, _, _ = fake.run(job_id)
    job = fake.jobs.get(job_id)
    assert end != "JobSucceeded" and job.status == JobStatus.TIMED_OUT
    assert "canceled (not billed)" in job.error["message"]


def test_the_limits_client_reads_the_lowest_of_account_and_workspace_caps():
    answers = []

    def provider(request: httpx.Request) -> httpx.Response:
        answers.append(request)
        model = request.url.params["model"]
        quotas = [] if model == "nobody" else [{
            "model": model, "workspace_id": "ws",
            "model_limit": {"request_limit": 20, "request_limit_period": 60,
                            "usage_limit": None, "usage_limit_field": None,
                            "usage_limit_period": None, "async_user_concurrency_limit": 10,
                            "async_user_queue_limit": 500},
            "workspace_limit": None if model != QWEN else {
                "request_limit": 1, "request_limit_period": 1,  # 60/min: not lower
                "async_user_concurrency_limit": 4, "async_user_queue_limit": None}}]
        body = {"output": {"total": len(quotas), "page_no": 1, "page_size": 20,
                           "quotas": quotas}, "request_id": "r"}
        return httpx.Response(200, json=body)

    client = LimitsClient("https://ws.example/api/v1", "sk-x",
                          transport=httpx.MockTransport(provider))
    assert client.read(QWEN) == {"requests": 20, "period": 60, "running": 4, "queue": 500}
    assert client.read("qwen-image-3.0-pro") == {"requests": 20, "period": 60,
                                                 "running": 10, "queue": 500}
    assert client.read("nobody") is None
    assert answers[0].url.path == "/api/v1/models/limits"
    assert answers[0].headers["Authorization"] == "Bearer sk-x"
    broken = LimitsClient("https://ws.example/api/v1", "sk-x", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, json={"output": {}})))
    with pytest.raises(PermanentProviderError, match="quotas"):
        broken.read(QWEN)
    refused = LimitsClient("https://ws.example/api/v1", "sk-x", transport=httpx.MockTransport(
        lambda request: httpx.Response(503, json={"code": "ServiceUnavailable",
                                                  "message": "later"})))
    with pytest.raises(RetryableProviderError):
        refused.read(QWEN)


def test_a_slot_taken_counts_against_the_lookahead_like_any_other(fake):
    holders = [f"h-{i}" for i in range(6)]
    assert all(acquire_slot(fake.ctx, TRYON, h) for h in holders)
    assert not acquire_slot(fake.ctx, TRYON, "seventh")


def test_the_operator_sees_each_models_limits_and_their_source(fake):
    from tryon_ops import operations as ops
    target = ops.Target(name="the test stack", session=None, ctx=fake.ctx, outputs={},
                        api_url=None)
    fake.provider.limits[QWEN] = ANSWER
    fake.provider.throttled["limits"] = 1  # the first model's read fails
    models = {m["model"]: m for m in ops.limits(target, read=True)}
    assert models[QWEN]["source"] == "provider" and models[QWEN]["read"] == "read"
    assert models[TRYON]["read"] == "failed" and models[TRYON]["source"] == "default"
    text = ops.format_limits(list(models.values()))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert ("qwen-image-3.0 12 running + 1 ahead, 30/min, provider queue 200; from the "
            "provider's limits API") in lines
    assert "last read failed: Throttling (the limits above stay in force)" in lines
    assert ("aitryon 5 running + 1 ahead, 10/s; from the published table (nothing read yet)"
            in lines)
    assert [m["source"] for m in ops.limits(target)].count("provider") == 1
