"""Burst: N garments dropped at once (one job each), 5 provider slots, the
emulator's generation time U(15, 30) s on a clock sped up --speedup times.

    .venv/bin/python bench/burst.py [--jobs 200] [--speedup 4] [--seed 11]

Reports throughput as a ratio of the provider's limit (5 tasks in flight / mean
task time), the provider's peak tasks in flight, 429s and jobs failed by them,
duplicate submissions and lost jobs; writes bench/results/burst.json.
All durations are provider seconds (wall seconds x speedup).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support import (
    MAX_IN_FLIGHT,
    RESULTS,
    Meter,
    drop_garments,
    machine,
    peak_overlap,
    start_stack,
    state_transitions,
    summary,
    timings,
    wait_for_jobs,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--speedup", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    speedup = args.speedup
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as workdir:
        stack = start_stack(speedup, args.seed, Path(workdir))
        try:
            meter = Meter(stack)
            started = time.monotonic()
            job_ids = drop_garments(stack, "BURST", args.jobs)
            print(f"{args.jobs} garments dropped in {time.monotonic() - started:.1f} s; "
                  "waiting for their jobs", flush=True)
            expected = args.jobs * 22.5 / MAX_IN_FLIGHT / speedup
            jobs = wait_for_jobs(stack, job_ids, timeout=3 * expected + 300)
            wall = time.monotonic() - started
            tasks = meter.tasks()
            provider = meter.provider()
            report = measure(args, jobs, tasks, provider, meter, stack, wall)
        finally:
            stack.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "burst.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine",)}, indent=2))
    return 0


def measure(args, jobs, tasks, provider, meter, stack, wall) -> dict:
    speedup = args.speedup
    ended = [t for t in tasks if t["end_time"]]
    task_seconds = [(t["end_time"] - t["scheduled_time"]) * speedup for t in ended]
    makespan = (max(t["end_time"] for t in ended) - min(t["submit_time"] for t in tasks)) \
        * speedup
    mean_task = statistics.fmean(task_seconds)
    limit = MAX_IN_FLIGHT / mean_task  # jobs per provider second at the limit
    succeeded = [j for j in jobs if j["status"] == "SUCCEEDED"]
    throttled_failures = [j for j in jobs if (j.get("error") or {}).get("code", "")
                          .startswith("Throttling")]
    task_ids = [j.get("provider_task_id") for j in jobs if j.get("provider_task_id")]
    polls = [j.get("polls", 0) for j in jobs]
    transitions = state_transitions(stack, jobs)
    return {
        "command": f"bench/burst.py --jobs {args.jobs} --speedup {speedup} --seed {args.seed}",
        "machine": machine(),
        "jobs": args.jobs,
        "speedup": speedup,
        "wall_seconds": round(wall, 1),
        "throughput": {
            "jobs_per_provider_minute": round(60 * len(succeeded) / makespan, 2),
            "limit_per_provider_minute": round(60 * limit, 2),
            "ratio_of_limit": round(len(succeeded) / makespan / limit, 3),
            "makespan_provider_seconds": round(makespan, 1),
            "mean_task_seconds": round(mean_task, 2),
            "mean_drawn_generation_seconds": round(statistics.fmean(
                t["generation_seconds"] for t in tasks), 2),
        },
        "provider_peak_in_flight": peak_overlap(tasks),
        "provider": provider,
        "jobs_failed_by_throttling": len(throttled_failures),
        "duplicate_submissions": provider["submits"] - len(set(task_ids)),
        "tasks_per_job": round(len(tasks) / args.jobs, 3),
        "lost_jobs": args.jobs - len([j for j in jobs if j.get("notified_at")]),
        "statuses": {s: sum(1 for j in jobs if j["status"] == s)
                     for s in sorted({j["status"] for j in jobs})},
        "polls_per_job": summary(polls),
        "queued_seconds": summary(timings(jobs, "queued", "admitted")),
        "lag_provider_end_to_finalized_seconds": summary(
            timings(jobs, "provider_end", "finalized")),
        "per_job": {
            "provider_queries": round(provider["queries"] / args.jobs, 2),
            "lambda_invocations": round(sum(meter.invocations().values()) / args.jobs, 2),
            "state_transitions": round(statistics.fmean(transitions), 2),
            "dynamodb_writes": round(meter.dynamodb_writes() / args.jobs, 2),
        },
        "lambda_invocations": meter.invocations(),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
