"""Burst: N garments dropped at once (one job each), 5 provider slots, the
emulator's generation time U(15, 30) s, at the provider's real pace (--speedup 1)
or on a clock sped up --speedup times (a quick check).

    .venv/bin/python bench/burst.py [--jobs 100] [--speedup 1] [--seed 11]
    .venv/bin/python bench/burst.py --model qwen-image-2.0   # a call-protocol model

Reports how busy the provider's slots were (utilization: the sum of the jobs'
provider run times / (slots x span from the first start to the last end)), the
idle gap per slot cycle (a task's end to the start of the task that took its
slot), the lag from the provider's end to the job finalized, queries per job,
429s, duplicate images, lost jobs and the cost per job; writes
bench/results/burst[-<model>]-<speedup>x.json. Durations are provider seconds
(wall seconds x speedup).
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", default=None,
                        help="the stack's Model (default: the template's, aitryon-plus)")
    args = parser.parse_args()
    speedup = args.speedup
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as workdir:
        stack = start_stack(speedup, args.seed, Path(workdir), model=args.model)
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
    name = f"burst{'-' + args.model if args.model else ''}-{speedup:g}x.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine",)}, indent=2))
    return 0


def measure(args, jobs, tasks, provider, meter, stack, wall) -> dict:
    model = args.model or "aitryon-plus"
    runs = provider_runs(jobs)
    span = max(end for _, end in runs) - min(start for start, _ in runs)
    busy = sum(end - start for start, end in runs)
    succeeded = [j for j in jobs if j["status"] == "SUCCEEDED"]
    by_model = provider["by_model"].get(model, {})
    polls = [j.get("polls", 0) for j in jobs]
    transitions = state_transitions(stack, jobs)
    return {
        "command": f"bench/burst.py --jobs {args.jobs} --speedup {args.speedup:g} "
                   f"--seed {args.seed}" + (f" --model {args.model}" if args.model else ""),
        "machine": machine(),
        "model": model,
        "jobs": args.jobs,
        "speedup": args.speedup,
        "wall_seconds": round(wall, 1),
        "utilization": round(busy / (MAX_IN_FLIGHT * span), 3),
        "span_provider_seconds": round(span, 1),
        "mean_run_seconds": round(busy / len(runs), 2),
        "idle_gap_per_slot_cycle_seconds": summary(idle_gaps(runs, MAX_IN_FLIGHT)),
        "lag_provider_end_to_finalized_seconds": summary(
            timings(jobs, "provider_end", "finalized")),
        # The lag's parts (task models): the end to the query that saw it, then the
        # hand-off and storing the result.
        "end_seen_seconds": summary(timings(jobs, "provider_end", "end_seen")),
        "seen_to_finalized_seconds": summary(timings(jobs, "end_seen", "finalized")),
        "queries_per_job": round(provider["queries"] / args.jobs, 2),
        "polls_per_job": summary(polls),
        "throttled_429": {"account_limits": provider["throttled_429"],
                          "model_limits": by_model.get("throttled", 0)},
        "provider_peak_in_flight": by_model.get("peak_running"),
        "duplicate_images": by_model.get("images", 0) - len(succeeded),
        "lost_jobs": args.jobs - len([j for j in jobs if j.get("notified_at")]),
        "statuses": {s: sum(1 for j in jobs if j["status"] == s)
                     for s in sorted({j["status"] for j in jobs})},
        "queued_seconds": summary(timings(jobs, "queued", "admitted")),
        "per_job": {
            "lambda_invocations": round(sum(meter.invocations().values()) / args.jobs, 2),
            "state_transitions": round(statistics.fmean(transitions), 2),
            "dynamodb_writes": round(meter.dynamodb_writes() / args.jobs, 2),
        },
        "provider": {k: v for k, v in provider.items() if k != "by_model"},
        "lambda_invocations": meter.invocations(),
        "tasks_at_emulator": len(tasks),
    }


def provider_runs(jobs: list[dict]) -> list[tuple[float, float]]:
    """Each job's time holding a provider slot, by the provider's clock: a task's
    start to its end, or a call's send to its answer."""
    return sorted((j["timeline"]["provider_start"], j["timeline"]["provider_end"])
                  for j in jobs if {"provider_start", "provider_end"} <= set(j["timeline"]))


def idle_gaps(runs: list[tuple[float, float]], slots: int) -> list[float]:
    """How long each freed slot stayed empty: every start after the first `slots`
    takes the slot freed longest ago (a task's end to the next task's start)."""
    freed: list[float] = []
    gaps = []
    events = sorted([(start, 1) for start, _ in runs] + [(end, 0) for _, end in runs])
    taken = 0
    for at, is_start in events:
        if not is_start:
            freed.append(at)
        elif taken < slots:
            taken += 1
        elif freed:
            gaps.append(at - freed.pop(0))
    return gaps


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
