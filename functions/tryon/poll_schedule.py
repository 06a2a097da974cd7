"""When to ask the provider whether a task has ended.

A query costs a share of the account's query limit, a Lambda invocation and
state transitions; every second between a task's end and the query that sees
it leaves one of the provider's slots idle. From what is known of a model's
generation times (its recent durations, smoothed, with the registry's
documented range as a prior), `plan_polls` picks the query times with the
least expected lag whose expected number stays within QUERY_BUDGET: few where
the task is unlikely to end, dense where it most likely ends, sparse after.
It is a dynamic programme over a fine grid (the cost of a plan is its expected
lag plus a price per query; the price is raised until the budget holds).
`bench/poll_schedule.py` chose the budget by simulation.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from functools import lru_cache

# Expected queries per task (issue 10's ceiling), as planned from the learned
# durations. Real runs spend a little fewer (3.37-3.56 in bench/burst.py): queries
# land just after their planned time, and so find more tasks ended.
QUERY_BUDGET = 4.0
PRIOR_WEIGHT = 5  # the documented range weighs as much as this many measured durations
MAX_GAP = 8.0  # seconds between two planned queries at most, once the first is made
TAIL_GAP = 5.0  # past every planned query: the provider's recommended pace (3-5 s)
PENDING_GAP = 3.0  # a task waiting in the provider's own queue has not started
GRID_POINTS = 240  # the plan's resolution: 0.25 s for a 60 s range
MIN_STEP = 0.25

def min_gap(tasks_in_flight: int, queries_per_second: int) -> float:
    """Seconds between two queries of one task: at most one a second, and all the
    tasks that can be in flight at once together within the account's query limit."""
    return max(1.0, tasks_in_flight / max(1, queries_per_second))


def plan_polls(durations: Sequence[float], documented: tuple[float, float], *,
               gap: float = 1.0, budget: float = QUERY_BUDGET) -> tuple[float, ...]:
    """Offsets, in seconds after the task starts, of the queries to make (rounded
    to 0.01 s). `durations` are the model's recent generation times, smoothed; the
    documented range counts as PRIOR_WEIGHT of them, so a few measurements do not
    hide the range's ends (nor can a model that has moved outside it go unseen)."""
    kernels = [documented] * PRIOR_WEIGHT
    if durations:
        ordered = sorted(durations)
        spread = statistics.pstdev(ordered) or 1.0
        # Silverman's bandwidth: enough smoothing that 40 samples make a shape, not
        # spikes; none below the shortest known, where a query would be wasted.
        width = max(0.5, 1.06 * spread * len(ordered) ** -0.2)
        low = min(ordered[0], documented[0])
        kernels += [(max(low, x - width), x + width) for x in ordered]
    return _plan(tuple((round(a, 2), round(b, 2)) for a, b in kernels), round(gap, 2),
                 budget)


def next_poll(plan: Sequence[float], running_for: float | None, gap: float, *,
              polls: int = 0) -> float:
    """Seconds from now to the next query, `running_for` seconds into the task's run
    (None: still waiting in the provider's queue), after `polls` queries (the plan
    counts them in already; the benchmarks' fixed schedules go by them)."""
    if running_for is None:
        return max(gap, PENDING_GAP)
    for offset in plan:
        # A query that ran late still makes the plan's next one (a gap after it).
        if offset > running_for:
            return max(offset - running_for, gap)
    return max(gap, TAIL_GAP)


def expected_queries(plan: Sequence[float], cdf) -> float:
    """Queries a task makes on average under `plan`: each one is made only if the
    task had not ended by the one before it."""
    return sum(1.0 - cdf(before) for before in (0.0, *plan[:-1]))


@lru_cache(maxsize=64)
def _plan(kernels: tuple[tuple[float, float], ...], gap: float,
          budget: float) -> tuple[float, ...]:
    end = max(b for _, b in kernels)
    step = max(MIN_STEP, end / GRID_POINTS)
    shortest, longest = max(1, math.ceil(gap / step - 1e-9)), max(1, int(MAX_GAP / step))
    points = math.ceil(end / step) + shortest  # room for a last query past the end

    def cdf(t: float) -> float:
        return sum(min(1.0, max(0.0, (t - a) / (b - a))) if b > a else float(t >= a)
                   for a, b in kernels) / len(kernels)

    ended = [cdf(k * step) for k in range(points + 1)]
    area = [0.0]  # integral of the CDF from 0, by the trapezium rule
    for k in range(points):
        area.append(area[-1] + step * (ended[k] + ended[k + 1]) / 2)

    def solve(price: float) -> tuple[float, ...]:
        # best[k]: least cost from a query at grid point k that found the task running.
        best, after = [0.0] * (points + 1), [points] * (points + 1)
        for k in range(points - shortest, -1, -1):
            if ended[k] >= 1.0:
                continue  # every task has ended by then: no more queries
            far = points if k == 0 else min(points, k + longest)
            cost, choice = math.inf, points
            for m in range(k + shortest, far + 1):
                # Expected lag of the tasks ending between k and m: the integral of
                # (F(x) - F(k)) over [k, m].
                value = ((1.0 - ended[k]) * price + area[m] - area[k]
                         - (m - k) * step * ended[k] + best[m])
                if value < cost:
                    cost, choice = value, m
            best[k], after[k] = cost, choice
        offsets, k = [], 0
        while ended[k] < 1.0:
            k = after[k]
            offsets.append(round(k * step, 2))
        return tuple(offsets)

    low, high = 1e-3, 1e3  # the price of a query, in seconds of lag
    plan = solve(high)
    for _ in range(24):
        price = math.sqrt(low * high)
        candidate = solve(price)
        if expected_queries(candidate, cdf) <= budget:
            plan, high = candidate, price
        else:
            low = price
    return plan
