"""Fair turns: integration A queues 100 batch looks; then integration B sends one
interactive look and 10 batch looks, all on one model at the emulator's published
limits, at the provider's real pace (--speedup 1) or a clock sped up --speedup times.

    .venv/bin/python bench/fairness.py [--speedup 10] [--model aitryon-plus]
                                       [--model-limits aitryon-plus=2/10]

The looks are written as the HTTP API writes them (manifests under
jobs/api/<integration>/), so intake, admission and the hand-offs are the real ones.
Reports who got each slot (the admission timeline), the wait of B's interactive
look against one task time, where B's batch looks fell among A's, and lost,
duplicated and twice-paid jobs; writes bench/results/fairness-<speedup>x.json.
Durations are provider seconds (wall seconds x speedup).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from support import RESULTS, Meter, machine, start_stack, sweep_now, wait_for_jobs
from tryon.adapters.jobs import job_key
from tryon.jobs import Source, job_id_for
from tryon_local.driver import SAMPLES

TASK_SECONDS = 22.5  # the emulator's mean try-on generation time, U(15, 30) s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speedup", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", default="aitryon-plus")
    parser.add_argument("--model-limits", default="",
                        help="the ModelLimits parameter (model=in_flight/requests): fewer "
                             "slots, so that A's looks wait before B sends")
    args = parser.parse_args()
    parameters = {"Model": args.model, **(
        {"ModelLimits": args.model_limits} if args.model_limits else {})}
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as workdir:
        stack = start_stack(args.speedup, args.seed, Path(workdir), parameters)
        try:
            meter = Meter(stack)
            sweep_now(stack)
            started = time.monotonic()
            a = write_looks(stack, "retailer-a", "catalog-a", 100, "batch", per_manifest=50)
            wait_queued(stack, a)
            b_live = write_looks(stack, "retailer-b", "live", 1, None)
            b_batch = write_looks(stack, "retailer-b", "catalog-b", 10, "batch")
            jobs = wait_for_jobs(stack, a + b_live + b_batch,
                                 timeout=111 * TASK_SECONDS / 2 / args.speedup * 3 + 300)
            report = measure(args, jobs, meter, a, b_live, b_batch,
                             time.monotonic() - started)
        finally:
            stack.stop()
    RESULTS.mkdir(exist_ok=True)
    label = "-limited" if args.model_limits else ""
    out = RESULTS / f"fairness-{args.speedup:g}x{label}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine", "timeline")},
                     indent=2))
    print("timeline (slot order):", " ".join(report["timeline"]))
    return 0


def write_looks(stack, integration: str, name: str, count: int, priority: str | None,
                per_manifest: int = 50) -> list[str]:
    """`count` looks of distinct garments as manifests of the integration's API
    requests; returns their job ids."""
    s3, inbox = stack.client("s3"), stack.outputs["InboxBucketName"]
    person, top = (SAMPLES / "person.jpg").read_bytes(), (SAMPLES / "top.jpg").read_bytes()
    s3.put_object(Bucket=inbox, Key="models/alex.jpg", Body=person)
    job_ids = []
    for first in range(0, count, per_manifest):
        looks = []
        for i in range(first, min(count, first + per_manifest)):
            key = f"catalog/{name}-{i:03d}.jpg"
            s3.put_object(Bucket=inbox, Key=key, Body=top)
            looks.append({"id": f"{name}-{i:03d}", "person": "models/alex.jpg", "top": key})
        manifest = {"version": 1, "looks": looks, **(
            {"defaults": {"priority": priority}} if priority else {})}
        if count == 1:  # one look alone: the inline form, interactive by default
            manifest = {"version": 1, **looks[0]}
        key = f"jobs/api/{integration}/{name}-{first}.json"
        answer = s3.put_object(Bucket=inbox, Key=key, Body=json.dumps(manifest).encode())
        source = Source(inbox, key, answer["ETag"].strip('"'), answer["VersionId"])
        job_ids += [job_id_for(source, look["id"]) for look in looks]
    return job_ids


def wait_queued(stack, job_ids: list[str]) -> None:
    """Until A's looks are all past intake (queued, or admitted into the free slots)."""
    table = stack.resource("dynamodb").Table(stack.outputs["JobsTableName"])
    while True:
        statuses = [table.get_item(Key=job_key(j)).get("Item", {}).get("status")
                    for j in job_ids]
        if all(s not in (None, "RECEIVED") for s in statuses):
            return
        time.sleep(1)


def measure(args, jobs, meter, a, b_live, b_batch, wall) -> dict:
    by_id = {j["job_id"]: j for j in jobs}
    who = {**dict.fromkeys(a, "A"), **dict.fromkeys(b_live, "B!"),
           **dict.fromkeys(b_batch, "B")}
    admitted = sorted(by_id.values(), key=lambda j: j["timeline"]["admitted"])
    timeline = [who[j["job_id"]] for j in admitted]
    live = by_id[b_live[0]]
    b_arrived = live["timeline"]["received"]
    # The slots B's interactive look waited for: admissions between its arrival and its own.
    before_live = sum(1 for j in admitted if b_arrived <= j["timeline"]["admitted"]
                      < live["timeline"]["admitted"])
    after = [who[j["job_id"]] for j in admitted if j["timeline"]["admitted"] >= b_arrived]
    b_places = [i for i, w in enumerate(after) if w == "B"]
    provider = meter.provider()
    statuses = {j["status"] for j in jobs}
    return {
        "machine": machine(), "speedup": args.speedup, "model": args.model,
        "model_limits": args.model_limits or "published",
        "jobs": len(jobs), "statuses": sorted(statuses), "wall_seconds": round(wall, 1),
        "b_interactive_wait_seconds": round(live["timeline"]["admitted"] - b_arrived, 2),
        "b_interactive_wait_in_task_times": round(
            (live["timeline"]["admitted"] - b_arrived) / TASK_SECONDS, 3),
        "admissions_before_b_interactive": before_live,
        "b_batch_places_after_b_arrived": b_places,
        "a_admitted_after_b_arrived": after.count("A"),
        "lost": 111 - sum(1 for j in jobs if j.get("notified_at")),
        "images_billed": provider["by_model"][args.model]["images"],
        "submits": provider["submits"], "throttled_429": provider["throttled_429"],
        "timeline": timeline,
    }


if __name__ == "__main__":
    sys.exit(main())
