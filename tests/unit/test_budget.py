"""The daily image budget against moto's DynamoDB and SNS (in process): counted
once per look, refused past the limit with one notice a day, and open again when
the UTC day turns or the operator raises it."""

import pytest
from moto_stages import DAY_ONE, at
from tryon.jobs import Look, unique_looks
from tryon.stages.admission import within_budget


@pytest.fixture
def budget(moto_stages):
    for i in range(6):
        moto_stages.ctx.store.create({"job_id": f"job-{i}", "status": "RECEIVED"}, DAY_ONE)
    return moto_stages.ctx, moto_stages.notices, moto_stages.counted


def test_each_look_is_counted_once_and_the_day_is_refused_past_its_budget(budget):
    ctx, notices, counted = budget
    assert within_budget(ctx, "job-0") and within_budget(ctx, "job-1")
    assert within_budget(ctx, "job-0")  # a repeat keeps its place, and costs nothing more
    assert not within_budget(ctx, "job-2") and not within_budget(ctx, "job-3")
    assert ctx.store.budget_spent("2026-11-18")["spent"] == 2
    [notice] = notices()  # one a day, however many looks wait
    assert notice["event"] == "budget.reached" and notice["day"] == "2026-11-18"
    assert (notice["budget"], notice["spent"]) == (2, 2)
    assert counted == ["BudgetReached"]


def test_the_budget_opens_again_when_the_day_turns_or_it_is_raised(budget):
    ctx, notices, _ = budget
    assert within_budget(ctx, "job-0") and within_budget(ctx, "job-1")
    assert not within_budget(ctx, "job-2")
    ctx.store.set_budget_limit(3)  # the operator raises it
    assert within_budget(ctx, "job-2") and not within_budget(ctx, "job-3")
    ctx.store.set_budget_limit(None)
    ctx.settings = at(ctx.settings, DAY_ONE + 86400)  # the next UTC day
    assert within_budget(ctx, "job-3") and within_budget(ctx, "job-4")
    assert not within_budget(ctx, "job-5")
    assert [n["day"] for n in notices()] == ["2026-11-18", "2026-11-19"]


def test_a_budget_of_zero_admits_nothing_even_on_a_fresh_day(budget):
    ctx, notices, _ = budget
    ctx.store.set_budget_limit(0)  # the operator stops all spending (`tryon budget set 0`)
    assert not within_budget(ctx, "job-0")
    assert ctx.store.budget_spent("2026-11-18")["spent"] == 0
    assert [(n["budget"], n["spent"]) for n in notices()] == [(0, 0)]


def test_a_look_asked_twice_in_one_upload_is_made_once():
    a = Look("a", "p.jpg", top="t.jpg", attributes=(("sku", "1"),))
    b = Look("b", "p.jpg", bottom="b.jpg")
    again = Look("a2", "p.jpg", top="t.jpg", attributes=(("sku", "2"),))
    other_model = Look("a3", "p.jpg", top="t.jpg", model="qwen-image-3.0")
    looks, repeats = unique_looks([a, b, again, other_model])
    assert looks == [a, b, other_model] and repeats == {"a": ["a2"]}
