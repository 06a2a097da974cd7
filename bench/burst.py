"""Burst: N garments dropped at once (one job each) on one model at the
emulator's published limits (try-on: 5 running, 10/s; qwen-image-3.0: 10 running,
20/min), the emulator's generation time (try-on U(15, 30) s), at the provider's
real pace (--speedup 1) or on a clock sped up --speedup times (a quick check).

    .venv/bin/python bench/burst.py [--jobs 100] [--speedup 1] [--seed 11]
    .venv/bin/python bench/burst.py --queue-ahead 0           # no lookahead (before)
    .venv/bin/python bench/burst.py --model qwen-image-3.0 --jobs 60
    .venv/bin/python bench/burst.py --model qwen-image-3.0 --provider-limits 30/60/4
    .venv/bin/python bench/burst.py --model qwen-image-2.0 --model-limits \
        qwen-image-2.0=5/5 --provider-limits 5/1/5            # a call model, 5 at once

The pipeline learns the limits as a deployment does: the sweep reads the
emulator's limits API (run once at the start); --provider-limits changes what
the emulator enforces and answers (requests/period[/running]) before that.

Reports the share of slot-time the provider was busy while looks still waited
(from the first start to the last start: running limit x that window), the old
utilization (the sum of run times / (slots x first start to last end)), the idle
gap per slot cycle, submits per period against the limit, peak running and
queued at the provider, the lag from the provider's end to the job finalized,
queries per job, 429s, duplicate images, lost jobs and the cost per job; writes
bench/results/burst[-<model>][-<label>]-<speedup>x.json. Durations are provider
seconds (wall seconds x speedup); rates are real seconds.
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
    RESULTS,
    Meter,
    drop_garments,
    machine,
    start_stack,
    state_transitions,
    summary,
    sweep_now,
    timings,
    wait_for_jobs,
)

DEFAULT_MODEL = "aitryon-plus"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the stack's Model")
    parser.add_argument("--queue-ahead", type=int, default=None,
                        help="the stack's ProviderQueueAhead (default: the template's)")
    parser.add_argument("--model-limits", default=None,
                        help="the stack's ModelLimits override (default: none)")
    parser.add_argument("--provider-limits", default=None, metavar="REQUESTS/PERIOD[/RUNNING]",
                        help="what the emulator enforces and its limits API answers for "
                             "the model (default: the published limits)")
    parser.add_argument("--label", default=None, help="added to the result file's name")
    args = parser.parse_args()
    parameters = {"Model": args.model}
    if args.queue_ahead is not None:
        parameters["ProviderQueueAhead"] = str(args.queue_ahead)
    if args.model_limits:
        parameters["ModelLimits"] = args.model_limits
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as workdir:
        stack = start_stack(args.speedup, args.seed, Path(workdir), parameters)
        try:
            meter = Meter(stack)
            if args.provider_limits:
                set_provider_limits(meter, args.model, args.provider_limits)
            limits = meter.http.get("/_emulator/limits").raise_for_status().json()[args.model]
            sweep_now(stack)
            started = time.monotonic()
            job_ids = drop_garments(stack, "BURST", args.jobs)
            print(f"{args.jobs} garments dropped in {time.monotonic() - started:.1f} s; "
                  "waiting for their jobs", flush=True)
            enforced = limits["enforced"]
            slots = enforced["concurrency"] or enforced["request_limit"]
            per_slot = 22.5 / args.speedup
            spacing = enforced["request_limit_period"] / enforced["request_limit"]
            expected = args.jobs * max(per_slot / slots, spacing)
            jobs = wait_for_jobs(stack, job_ids, timeout=3 * expected + 300)
            wall = time.monotonic() - started
            report = measure(args, jobs, meter, stack, wall, enforced)
        finally:
            stack.stop()
    RESULTS.mkdir(exist_ok=True)
    parts = ["burst", *([args.model] if args.model != DEFAULT_MODEL else []),
             *([args.label] if args.label else []), f"{args.speedup:g}x"]
    (RESULTS / ("-".join(parts) + ".json")).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine",)}, indent=2))
    return 0


def set_provider_limits(meter: Meter, model: str, given: str) -> None:
    requests, period, *running = (int(part) for part in given.split("/"))
    body = {"model": model, "request_limit": requests, "request_limit_period": period}
    if running:
        body["concurrency"] = running[0]
    meter.http.post("/_emulator/limits", json=body).raise_for_status()


def measure(args, jobs, meter, stack, wall, enforced) -> dict:
    model = args.model
    tasks, provider = meter.tasks(), meter.provider()
    slots = enforced["concurrency"]
    runs = provider_runs(jobs)
    span = max(end for _, end in runs) - min(start for start, _ in runs)
    busy = sum(end - start for start, end in runs)
    succeeded = [j for j in jobs if j["status"] == "SUCCEEDED"]
    by_model = provider["by_model"].get(model, {})
    polls = [j.get("polls", 0) for j in jobs]
    transitions = state_transitions(stack, jobs)
    sent = sorted(j["timeline"]["submitted"] for j in jobs if "submitted" in j["timeline"])
    return {
        "command": " ".join(["bench/burst.py", *sys.argv[1:]]),
        "machine": machine(),
        "model": model,
        "provider_limits": enforced,
        "jobs": args.jobs,
        "speedup": args.speedup,
        "wall_seconds": round(wall, 1),
        "busy_share_while_waiting": busy_while_waiting(tasks, slots) if slots else None,
        "utilization": round(busy / (slots * span), 3) if slots else None,
        "span_provider_seconds": round(span, 1),
        "mean_run_seconds": round(busy / len(runs), 2),
        "idle_gap_per_slot_cycle_seconds": summary(idle_gaps(runs, slots)) if slots else None,
        "submits_per_period": submit_rate(sent, args.speedup, enforced),
        "lag_provider_end_to_finalized_seconds": summary(
            timings(jobs, "provider_end", "finalized")),
        # The lag's parts (task models): the end to the query that saw it, then the
        # hand-off and storing the result.
        "end_seen_seconds": summary(timings(jobs, "provider_end", "end_seen")),
        "seen_to_finalized_seconds": summary(timings(jobs, "end_seen", "finalized")),
        "queued_at_provider_seconds": summary(timings(jobs, "provider_submit",
                                                      "provider_start")),
        "queries_per_job": round(provider["queries"] / args.jobs, 2),
        "polls_per_job": summary(polls),
        "throttled_429": {"account_limits": provider["throttled_429"],
                          "model_limits": by_model.get("throttled", 0),
                          "past_a_full_queue": by_model.get("queue_full", 0)},
        "provider_peak_running": by_model.get("peak_running"),
        "provider_peak_pending": by_model.get("peak_pending"),
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


def busy_while_waiting(tasks: list[dict], slots: int) -> float | None:
    """The share of the running limit's slot-time the provider was running a task,
    from the first task's start to the last one's: while looks still waited to
    start. By the provider's own clock (the emulator's task timelines)."""
    runs = [(t["scheduled_time"], t["end_time"]) for t in tasks
            if t["scheduled_time"] is not None and t["end_time"] is not None]
    if len(runs) < 2:
        return None
    first, last = min(s for s, _ in runs), max(s for s, _ in runs)
    busy = sum(max(0.0, min(end, last) - max(start, first)) for start, end in runs)
    return round(busy / (slots * (last - first)), 4)


def submit_rate(sent: list[float], speedup: float, enforced: dict) -> dict | None:
    """Submits per limit period (real seconds) from the first to the last, against
    the limit."""
    if len(sent) < 2:
        return None
    period = enforced["request_limit_period"]
    # Pipeline times are wall clock here; the emulator's clock only scales durations.
    per_period = (len(sent) - 1) / (sent[-1] - sent[0]) * period
    return {"submits": len(sent), "per_period": round(per_period, 2), "period": period,
            "limit": enforced["request_limit"],
            "ratio": round(per_period / enforced["request_limit"], 3)}


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
