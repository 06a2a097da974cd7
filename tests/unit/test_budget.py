"""The daily image budget (on the fakes; tests/unit/test_repositories.py holds the
DynamoDB repository to the same behaviour): counted once per look, refused past
the limit with one notice a day, and open again when the UTC day turns or the
operator raises it."""

import pytest
from tryon.jobs import Look, unique_looks
from tryon.stages.admission import within_budget


@pytest.fixture
def budget(fake):
    fake.configure(daily_image_budget=2)
    for i in range(6):
        fake.look(f"job-{i}")
    return fake


def notices(stack):
    return [body for body, _ in stack.notifier.sent]


def test_each_look_is_counted_once_and_the_day_is_refused_past_its_budget(budget):
    ctx = budget.ctx
    assert within_budget(ctx, "job-0") and within_budget(ctx, "job-1")
    assert within_budget(ctx, "job-0")  # a repeat keeps its place, and costs nothing more
    assert not within_budget(ctx, "job-2") and not within_budget(ctx, "job-3")
    assert ctx.budget.spent("2026-11-18")["spent"] == 2
    [notice] = notices(budget)  # one a day, however many looks wait
    assert notice["event"] == "budget.reached" and notice["day"] == "2026-11-18"
    assert (notice["budget"], notice["spent"]) == (2, 2)
    assert budget.counted == ["BudgetReached"]


def test_the_budget_opens_again_when_the_day_turns_or_it_is_raised(budget):
    ctx = budget.ctx
    assert within_budget(ctx, "job-0") and within_budget(ctx, "job-1")
    assert not within_budget(ctx, "job-2")
    ctx.budget.set_override(3)  # the operator raises it
    assert within_budget(ctx, "job-2") and not within_budget(ctx, "job-3")
    ctx.budget.set_override(None)
    budget.advance(86400)  # the next UTC day
    assert within_budget(ctx, "job-3") and within_budget(ctx, "job-4")
    assert not within_budget(ctx, "job-5")
    assert [n["day"] for n in notices(budget)] == ["2026-11-18", "2026-11-19"]


def test_a_budget_of_zero_admits_nothing_even_on_a_fresh_day(budget):
    ctx = budget.ctx
    ctx.budget.set_override(0)  # the operator stops all spending (`tryon budget set 0`)
    assert not within_budget(ctx, "job-0")
    assert ctx.budget.spent("2026-11-18")["spent"] == 0
    assert [(n["budget"], n["spent"]) for n in notices(budget)] == [(0, 0)]


def test_a_notice_that_could_not_be_sent_is_sent_by_the_next_refusal(budget):
    ctx = budget.ctx
    assert within_budget(ctx, "job-0") and within_budget(ctx, "job-1")
    budget.notifier.fail_next()
    with pytest.raises(ConnectionError):
        within_budget(ctx, "job-2")
    assert not within_budget(ctx, "job-3")
    assert [n["event"] for n in notices(budget)] == ["budget.reached"]


def test_a_look_asked_twice_in_one_upload_is_made_once():
    a = Look("a", "p.jpg", top="t.jpg", attributes=(("sku", "1"),))
    b = Look("b", "p.jpg", bottom="b.jpg")
    again = Look("a2", "p.jpg", top="t.jpg", attributes=(("sku", "2"),))
    other_model = Look("a3", "p.jpg", top="t.jpg", model="qwen-image-3.0")
    looks, repeats = unique_looks([a, b, again, other_model])
    assert looks == [a, b, other_model] and repeats == {"a": ["a2"]}
