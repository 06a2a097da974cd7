"""The poll plan: queries where a task most likely ends, within the query budget."""

import random
import statistics
from itertools import pairwise

import pytest
from tryon import poll_schedule
from tryon.poll_schedule import (
    PENDING_GAP,
    QUERY_BUDGET,
    TAIL_GAP,
    min_gap,
    next_poll,
    plan_polls,
)
from tryon_local.comparison_schedules import install


def judged(plan, durations, gap=1.0):
    """Queries per task and the lag of each end, as the wait loop would poll."""
    queries, lags = [], []
    for duration in durations:
        at, count = 0.0, 0
        while count == 0 or at < duration:
            at += next_poll(plan, at, gap)
            count += 1
        queries.append(count)
        lags.append(at - duration)
    return statistics.fmean(queries), lags


RNG = random.Random(3)
DRAWS = [RNG.uniform(15, 30) for _ in range(4000)]


def test_before_anything_is_measured_the_documented_range_is_assumed():
    plan = plan_polls([], (15.0, 30.0))
    assert plan[0] > 15  # nothing ends sooner: a query there would be wasted
    assert plan[-1] >= 30  # every task in the range is seen by the plan
    queries, lags = judged(plan, DRAWS)
    assert queries <= QUERY_BUDGET + 0.1
    assert statistics.median(lags) < 1.2


def test_queries_are_dense_where_tasks_end_and_sparse_where_they_do_not():
    rng = random.Random(5)
    measured = [rng.gauss(20, 1) for _ in range(40)]
    plan = plan_polls(measured, (15.0, 30.0))
    gaps = [b - a for a, b in pairwise(plan)]
    near = [g for a, g in zip(plan, gaps, strict=False) if 19 <= a <= 21]
    assert min(measured) <= plan[0] <= 20  # the first query near the lower quantile
    assert near and max(near) <= 1.5  # about one a second around the usual end
    assert gaps[-1] >= max(near)  # sparser past it
    queries, lags = judged(plan, [rng.gauss(20, 1) for _ in range(4000)])
    assert queries <= QUERY_BUDGET + 0.2
    assert statistics.median(lags) < 0.8


def test_for_as_many_queries_as_the_old_schedule_the_plan_sees_ends_as_soon():
    measured = DRAWS[:40]
    ordered = sorted(measured)
    quartile = ordered[len(ordered) // 4]
    old = [quartile + 2 * i for i in range(20)]  # the 25th percentile, then every 2 s
    old_queries, old_lags = judged(old, DRAWS)
    queries, lags = judged(plan_polls(measured, (15.0, 30.0), budget=old_queries), DRAWS)
    assert queries <= old_queries + 0.1
    # Uniform durations suit the old schedule well: the plan is at least as good.
    assert statistics.fmean(lags) <= statistics.fmean(old_lags) + 0.05


@pytest.mark.parametrize("gap", [1.0, 2.0])
def test_no_task_is_queried_more_often_than_its_share_of_the_query_limit(gap):
    plan = plan_polls(DRAWS[:40], (15.0, 30.0), gap=gap)
    assert all(b - a >= gap - 1e-9 for a, b in pairwise(plan))
    assert plan[0] >= gap


def test_the_query_limit_is_shared_by_every_task_that_can_be_in_flight():
    assert min_gap(13, 20) == 1.0  # the default limits: at most one query a second
    assert min_gap(40, 20) == 2.0


def test_after_the_plan_the_provider_pace_and_while_queued_its_recommended_pace():
    plan = (18.0, 20.0, 22.0)
    assert next_poll(plan, 0.0, 1.0) == 18.0
    assert next_poll(plan, 18.2, 1.0) == pytest.approx(1.8)
    assert next_poll(plan, 19.5, 1.0) == 1.0  # 20.0 is under a second away: not skipped
    assert next_poll(plan, 25.0, 1.0) == TAIL_GAP
    assert next_poll(plan, None, 1.0) == PENDING_GAP


def test_the_benchmarks_comparison_schedules_step_through_their_waits(monkeypatch):
    monkeypatch.setattr(poll_schedule, "next_poll", poll_schedule.next_poll)  # restored after
    install("sdk-wait")
    assert [poll_schedule.next_poll((), 0.0, 1.0, polls=n) for n in range(11)] == [
        1, 1, 2, 2, 2, 4, 4, 4, 5, 5, 5]
    install("fixed-5s")
    assert poll_schedule.next_poll((), 0.0, 1.0, polls=7) == 5
    with pytest.raises(KeyError):
        install("every-minute")
