"""Latency and cost per job on an idle system (no job waits for a slot), for the
planned poll schedule (tryon.poll_schedule) and, on the same jobs, the two it is compared with: the
official SDK's wait() (1, 1, 2, 2, 2, 4, 4, 4, 5, 5... s) and a fixed 5 s poll.

    .venv/bin/python bench/polling.py [--waves 4] [--speedup 1] [--seed 5]

Each schedule gets a fresh stack with the same emulator seed, so the k-th task
draws the same generation time U(15, 30) s in every run. Jobs go in waves of 5
(the provider's slots), each wave once the previous one has ended. Writes
bench/results/polling.json; durations are provider seconds.
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
    start_stack,
    state_transitions,
    summary,
    timings,
    wait_for_jobs,
)

SCHEDULES = ("planned", "sdk-wait", "fixed-5s")


def run(schedule: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-polling-{schedule}-") as workdir:
        stack = start_stack(args.speedup, args.seed, Path(workdir), POLL_SCHEDULE=schedule)
        try:
            meter = Meter(stack)
            jobs = []
            for wave in range(args.waves):
                job_ids = drop_garments(stack, f"W{wave}", MAX_IN_FLIGHT)
                jobs += wait_for_jobs(stack, job_ids, timeout=600 / args.speedup + 60,
                                      progress=False)
                print(f"  {schedule}: wave {wave + 1}/{args.waves} done", flush=True)
            count = len(jobs)
            polls = [j.get("polls", 0) for j in jobs]
            transitions = state_transitions(stack, jobs)
            provider = meter.provider()
            return {
                "jobs": count,
                "succeeded": sum(1 for j in jobs if j["status"] == "SUCCEEDED"),
                "lag_provider_end_to_finalized_seconds": summary(
                    timings(jobs, "provider_end", "finalized")),
                "received_to_submitted_seconds": summary(
                    timings(jobs, "received", "submitted")),
                "polls_per_job": summary(polls),
                "per_job": {
                    "provider_submits": round(provider["submits"] / count, 2),
                    "provider_queries": round(provider["queries"] / count, 2),
                    "lambda_invocations": round(sum(meter.invocations().values()) / count, 2),
                    "state_transitions": round(statistics.fmean(transitions), 2),
                    "dynamodb_writes": round(meter.dynamodb_writes() / count, 2),
                },
                "throttled_429": provider["throttled_429"],
            }
        finally:
            stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=SCHEDULES)
    args = parser.parse_args()
    started = time.monotonic()
    report = {
        "command": f"bench/polling.py --waves {args.waves} --speedup {args.speedup} "
                   f"--seed {args.seed}",
        "machine": machine(),
        "speedup": args.speedup,
        "schedules": {schedule: run(schedule, args) for schedule in args.schedules},
    }
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "polling.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'schedule':<10} {'polls med':>9} {'queries':>8} {'lag med':>8} {'lag p95':>8} "
          f"{'intake med':>10} {'λ calls':>8} {'transitions':>11} {'ddb writes':>10}")
    for name, row in report["schedules"].items():
        lag, cost = row["lag_provider_end_to_finalized_seconds"], row["per_job"]
        print(f"{name:<10} {row['polls_per_job']['median']:>9} {cost['provider_queries']:>8} "
              f"{lag['median']:>8} {lag['p95']:>8} "
              f"{row['received_to_submitted_seconds']['median']:>10} "
              f"{cost['lambda_invocations']:>8} {cost['state_transitions']:>11} "
              f"{cost['dynamodb_writes']:>10}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
