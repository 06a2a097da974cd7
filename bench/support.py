"""What the throughput benchmarks share: an embedded stack, a drop-folder load,
waiting for jobs to end, and the counts they are judged on."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from tryon.adapters.dynamo import Table
from tryon.adapters.jobs import JobRepository
from tryon.jobs import Source, job_id_for
from tryon_local.driver import SAMPLES
from tryon_local.emulator.config import ModelQuota
from tryon_local.events import ScheduledInvoker
from tryon_local.moto_dynamodb import writes_by_kind
from tryon_local.runtime import LocalOptions, LocalStack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MAX_IN_FLIGHT = 5


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}


def start_stack(speedup: float, seed: int, workdir: Path,
                parameters: dict[str, str] | None = None,
                emulator_limits: dict[str, ModelQuota] | None = None,
                **function_env: str) -> LocalStack:
    """The embedded stack with template `parameters` over the defaults, its
    emulator holding the published limits except `emulator_limits`."""
    # Enough warm workers that no job pays a local process start (a Lambda cold
    # start would be paid once per container in AWS, not per burst).
    stack = LocalStack(LocalOptions(speedup=speedup, seed=seed, workdir=workdir,
                                    parameters=parameters or {},
                                    emulator_limits=emulator_limits or {},
                                    function_env=function_env, warm_workers=MAX_IN_FLIGHT + 1))
    stack.start()
    return stack


def sweep_now(stack: LocalStack) -> None:
    """Run the scheduled sweep once, now: it reads the provider's limits (as a
    deployed stack's first sweep does within a minute of starting)."""
    for loop in stack.event_loops:
        if isinstance(loop, ScheduledInvoker) and "tryon.sweep" in loop.schedule["input"]:
            loop.tick()


class Meter:
    """Counters of one measured stretch: provider calls, Lambda invocations,
    DynamoDB writes (differences from when the meter was made)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.http = httpx.Client(base_url=stack.emulator.root_url, timeout=30)
        self.started = time.time()
        self._stats = self.stats()
        self._invocations = Counter(stack.lambdas.invocations)
        self._writes = Counter(stack.dynamodb_meter.counts)

    def stats(self) -> dict[str, Any]:
        return self.http.get("/_emulator/stats").raise_for_status().json()

    def provider(self) -> dict[str, Any]:
        now = self.stats()
        return {
            "submits": now["submits"] - self._stats["submits"],
            "submit_requests": now["submit_requests"] - self._stats["submit_requests"],
            "queries": now["queries"] - self._stats["queries"],
            "throttled_429": sum(now["throttled"].values())
            - sum(self._stats["throttled"].values()),
            "lost_answers": now["lost_answers"] - self._stats["lost_answers"],
            # Per model: billed images, 429s and refusals past a full queue since
            # the meter was made; its peak slots held and tasks queued (since the
            # stack started).
            "by_model": {model: {"images": counts["images"]
                                 - self._stats["by_model"][model]["images"],
                                 "throttled": counts["throttled"]
                                 - self._stats["by_model"][model]["throttled"],
                                 "queue_full": counts["queue_full"]
                                 - self._stats["by_model"][model]["queue_full"],
                                 "peak_running": counts["peak_running"],
                                 "peak_pending": counts["peak_pending"]}
                         for model, counts in now["by_model"].items()},
        }

    def tasks(self) -> list[dict[str, Any]]:
        return [t for t in self.http.get("/_emulator/tasks").raise_for_status().json()
                if t["submit_time"] >= self.started - 1]

    def invocations(self) -> dict[str, int]:
        now = Counter(self.stack.lambdas.invocations)
        return {name.split("-")[-1]: now[name] - self._invocations[name] for name in now}

    def dynamodb_writes(self) -> int:
        return sum(self.dynamodb_writes_by_kind().values())

    def dynamodb_writes_by_kind(self) -> Counter[str]:
        """Item writes since the meter was made, by the kind of item (JOB, SLOTS, ...)."""
        return writes_by_kind(Counter(self.stack.dynamodb_meter.counts) - self._writes)


def drop_garments(stack: LocalStack, prefix: str, count: int,
                  person: str = "alex") -> list[str]:
    """A roster of one person, then `count` garments dropped at once: one job each.
    Returns the ids of their jobs."""
    s3, inbox = stack.client("s3"), stack.outputs["InboxBucketName"]
    s3.put_object(Bucket=inbox, Key=f"models/{person}.jpg",
                  Body=(SAMPLES / "person.jpg").read_bytes())
    top = (SAMPLES / "top.jpg").read_bytes()
    job_ids = []
    for i in range(count):
        key = f"garments/top/{prefix}-{i:04d}.jpg"
        answer = s3.put_object(Bucket=inbox, Key=key, Body=top)
        source = Source(inbox, key, answer["ETag"].strip('"'), answer["VersionId"])
        job_ids.append(job_id_for(source, person))
    return job_ids


def wait_for_jobs(stack: LocalStack, job_ids: list[str], timeout: float,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Until every job has ended and been notified (or the timeout)."""
    jobs_table = JobRepository(Table(stack.outputs["JobsTableName"], stack.resource("dynamodb")))
    deadline, shown = time.monotonic() + timeout, None
    while True:
        jobs = [job.to_item() for job in jobs_table.get_many(job_ids)]
        statuses = Counter(j["status"] for j in jobs)
        if progress and statuses != shown:
            print(f"  {dict(sorted(statuses.items()))}", flush=True)
            shown = statuses
        if len(jobs) == len(job_ids) and all(j.get("notified_at") for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            return jobs
        time.sleep(2)


def state_transitions(stack: LocalStack, jobs: list[dict[str, Any]]) -> list[int]:
    """Billed Step Functions transitions per job: the states each execution entered."""
    sfn = stack.client("stepfunctions")
    counts = []
    for job in jobs:
        if not job.get("execution_arn"):
            counts.append(0)
            continue
        pages = sfn.get_paginator("get_execution_history").paginate(
            executionArn=job["execution_arn"])
        counts.append(sum(1 for page in pages for event in page["events"]
                          if event["type"].endswith("StateEntered")))
    return counts


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "mean": None, "max": None}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "mean": round(statistics.fmean(ordered), 2), "max": round(ordered[-1], 2)}


def timings(jobs: list[dict[str, Any]], start: str, end: str) -> list[float]:
    return [j["timeline"][end] - j["timeline"][start] for j in jobs
            if start in j["timeline"] and end in j["timeline"]]
