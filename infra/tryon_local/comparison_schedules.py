"""The fixed poll schedules the benchmarks compare the planned one with
(bench/polling.py, bench/poll_schedule.py). Not part of the product: a local
function worker started with POLL_SCHEDULE=<name> polls on that schedule instead
of its plan (lambda_worker installs it before it imports the handler)."""

from __future__ import annotations

from collections.abc import Sequence

from tryon import poll_schedule

# The official SDK's wait() sleeps 1, 1, 2, 2, 2, 4, 4, 4 s, then 5 s from then on.
COMPARISON_SCHEDULES = {"sdk-wait": (1, 1, 2, 2, 2, 4, 4, 4, 5), "fixed-5s": (5,)}


def fixed_delay(schedule: str, polls: int) -> float:
    steps = COMPARISON_SCHEDULES[schedule]
    return steps[min(polls, len(steps) - 1)]


def install(schedule: str) -> None:
    """Every wait of this process follows `schedule` ("planned": the product's own)."""
    if schedule == "planned":
        return
    fixed_delay(schedule, 0)  # an unknown name fails here, at the worker's start

    def next_poll(plan: Sequence[float], running_for: float | None, gap: float, *,
                  polls: int = 0) -> float:
        return fixed_delay(schedule, polls)

    poll_schedule.next_poll = next_poll
