"""Chooses the poll schedule by simulation: for generation times drawn from the
recorded durations, what each schedule costs (queries per task) and how long a
finished task waits to be seen (the lag, which leaves a provider slot idle).

    .venv/bin/python bench/poll_schedule.py [--durations FILE] [--tasks 20000]

Durations: a JSON list of seconds (e.g. the `generation_seconds` of a burst run's
tasks), or by default U(15, 30) s, the emulator's and the provider's documented
range. The planned schedule learns from 40 of them (as the pipeline keeps 40),
drawn afresh in each of --trials trials, and is judged on all; its figures are
the trials' means. Compared: the planned schedule at several query budgets,
the schedule before it (first query at the 25th percentile, then every 2 s),
the official SDK's wait() and a fixed 5 s. Writes bench/results/poll_schedule.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))

from tryon.poll_schedule import (
    QUERY_BUDGET,
    min_gap,
    next_poll,
    plan_polls,
)
from tryon_local.comparison_schedules import COMPARISON_SCHEDULES

RESULTS = Path(__file__).parent / "results"
LEARNED = 40  # durations the pipeline keeps per model (DURATION_PLACES)
HANDOFF_SECONDS = 0.3  # a seen end to the next task's start (assumed: the hand-off's submit)

Schedule = Callable[[float], Sequence[float]]  # a task's duration -> its query times


def planned(plan: Sequence[float], gap: float) -> Schedule:
    """The pipeline's schedule: the plan, then the tail (tryon.poll_schedule.next_poll)."""
    def times(duration: float) -> list[float]:
        at, out = 0.0, []
        while not out or out[-1] < duration:
            at += next_poll(plan, at, gap)
            out.append(at)
        return out
    return times


def fixed(steps: Sequence[float], first: float | None = None) -> Schedule:
    """A first query at `first` (default: the first step), then the steps in turn,
    the last one repeated."""
    def times(duration: float) -> list[float]:
        out = [steps[0] if first is None else first]
        while out[-1] < duration:
            out.append(out[-1] + steps[min(len(out), len(steps) - 1)])
        return out
    return times


def judge(schedule: Schedule, durations: Sequence[float]) -> dict[str, float]:
    queries, lags = [], []
    for duration in durations:
        times = schedule(duration)
        queries.append(len(times))
        lags.append(times[-1] - duration)
    lags.sort()
    mean_run = statistics.fmean(durations)
    return {
        "queries_per_task": round(statistics.fmean(queries), 2),
        "lag_median": round(statistics.median(lags), 2),
        "lag_p95": round(lags[int(0.95 * len(lags))], 2),
        "lag_mean": round(statistics.fmean(lags), 2),
        # A slot's share of busy time in a steady stream (no ramp-up, no ragged end)
        # if every end waits this lag plus the hand-off.
        "utilization_estimate": round(mean_run / (mean_run + statistics.fmean(lags)
                                                  + HANDOFF_SECONDS), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--durations", type=Path, help="a JSON list of seconds")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    if args.durations:
        recorded = [float(x) for x in json.loads(args.durations.read_text())]
        durations = [rng.choice(recorded) for _ in range(args.tasks)]
        source = str(args.durations)
    else:
        durations = [rng.uniform(15, 30) for _ in range(args.tasks)]
        source = "U(15, 30) s"
    gap = min_gap(13, 20)  # the default limits: 5 + 5 + 2 + 1 task slots, 20 queries/s
    learned_sets = [rng.sample(durations, LEARNED) for _ in range(args.trials)]
    rows = {}
    for budget in (2.5, 3.0, 3.5, 3.75, 4.0, 4.5, 5.0, 6.0):
        trials = [judge(planned(plan_polls(learned, (15, 30), gap=gap, budget=budget), gap),
                        durations) for learned in learned_sets]
        rows[f"planned, budget {budget:g}"] = {
            key: round(statistics.fmean(t[key] for t in trials), 3) for key in trials[0]}
    ordered = sorted(learned_sets[0])
    quartile = ordered[len(ordered) // 4]
    rows["before: 25th percentile, then every 2 s"] = judge(fixed((2,), quartile), durations)
    for name, steps in COMPARISON_SCHEDULES.items():
        rows[name] = judge(fixed(steps), durations)
    report = {"command": "bench/poll_schedule.py" + (f" --durations {args.durations}"
                                                    if args.durations else ""),
              "durations": source, "tasks": args.tasks, "learned_from": LEARNED,
              "trials": args.trials,
              "handoff_seconds": HANDOFF_SECONDS, "chosen_budget": QUERY_BUDGET,
              "schedules": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "poll_schedule.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'schedule':42} {'queries':>7} {'lag med':>7} {'p95':>6} {'mean':>6} {'util.':>6}")
    for name, row in rows.items():
        print(f"{name:42} {row['queries_per_task']:7.2f} {row['lag_median']:7.2f} "
              f"{row['lag_p95']:6.2f} {row['lag_mean']:6.2f} {row['utilization_estimate']:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
