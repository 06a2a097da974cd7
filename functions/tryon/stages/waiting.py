"""The wait loop's timing: each task's poll plan (from its model's measured
generation times, tryon.poll_schedule) and the next wait, in whole seconds for
the state machine's Wait state and to the millisecond for the poll itself."""

from __future__ import annotations

from typing import Any

from tryon import poll_schedule
from tryon.models.registry import model_spec
from tryon.poll_schedule import plan_polls
from tryon.ports import Since
from tryon.stages.context import Context

# The poll sleeps at most this long to land on its planned time (the Wait state
# before it counts whole seconds only).
MAX_TOP_UP_SECONDS = 1.5


def poll_plan(ctx: Context, model: str, *, since: Since = "start") -> list[float]:
    """When to query a task of `model`, in seconds after it starts running, or after
    its submit while it may still wait in the provider's queue (planned from the
    model's recent times from submit to end: a task submitted ahead of a free slot
    starts when a running one ends)."""
    return list(plan_polls(ctx.durations.recent(model, since=since),
                           model_spec(model).generation_seconds,
                           gap=ctx.capacity.query_gap()))


def next_wait(ctx: Context, plan: list[float], running_for: float | None, polls: int, *,
              now: float, deadline: float) -> dict[str, Any]:
    """`next_delay` (whole seconds) for the Wait state, `poll_at` for the poll; never
    past the deadline."""
    delay = poll_schedule.next_poll(plan, running_for, ctx.capacity.query_gap(),
                                    polls=polls)
    delay = max(0.0, min(delay, deadline - now))
    return {"next_delay": int(delay), "poll_at": round(now + delay, 3)}


def wait_until(ctx: Context, poll_at: float | None) -> None:
    """Sleep the fraction of a second the Wait state could not."""
    ahead = (poll_at or 0.0) - ctx.clock()
    if 0 < ahead <= MAX_TOP_UP_SECONDS:
        ctx.sleep(ctx.settings.timebase.wall_span(ahead))
