"""Catalogue scale (issue 21): one CSV of --rows looks through the local stack, and the
same looks as manifests of 50 (today's path), with the emulator's clock --speedup
times faster and its limits raised to --provider-limits, so that the pipeline, not
the emulated provider, is what is measured.

    .venv/bin/python bench/catalogue.py [--rows 10000] [--path csv|manifests|both]
                                        [--speedup 10] [--provider-limits 200/200]

The looks pair --persons person photos with distinct garments (every look distinct,
rows // persons garments), so each distinct image is one photo to decode. Reports,
per path: upload to every look admitted or queued, and to every look ended; Lambda
invocations and DynamoDB writes per look; each function's peak memory ("Max Memory
Used", the local containers' peak RSS); images decoded against distinct images;
notifications per job and batch.completed per batch (read from a subscriber queue).
Writes bench/results/catalogue-<rows>[-<path>].json. Durations are wall seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from support import RESULTS, Meter, machine, start_stack, sweep_now
from tryon.adapters.dynamo import Table
from tryon.adapters.jobs import JobRepository, job_key
from tryon.job_record import TERMINAL_STATUSES, JobStatus
from tryon.jobs import Source, job_id_for
from tryon.settings import Timebase
from tryon.stages.completion import execution_name
from tryon_local.driver import SAMPLES
from tryon_local.lambda_worker import peak_rss_kb
from tryon_local.runtime import notifications_from

MODEL = "aitryon-plus"
WAITING_OR_LATER = {s for s in JobStatus if s not in (JobStatus.RECEIVED,)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--persons", type=int, default=20)
    parser.add_argument("--path", choices=["csv", "manifests", "both"], default="both")
    parser.add_argument("--speedup", type=float, default=10.0)
    parser.add_argument("--provider-limits", default="200/200",
                        help="RUNNING/REQUESTS-PER-SECOND the emulator enforces and the "
                             "stack runs at (ModelLimits)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    report = {"machine": machine(), "rows": args.rows, "persons": args.persons,
              "speedup": args.speedup, "provider_limits": args.provider_limits, "paths": {}}
    for path in (["csv", "manifests"] if args.path == "both" else [args.path]):
        report["paths"][path] = run(args, path)
        print(json.dumps({path: report["paths"][path]}, indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    name = f"catalogue-{args.rows}" + ("" if args.path == "both" else f"-{args.path}")
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def run(args, path: str) -> dict:
    running, rate = args.provider_limits.split("/")
    with tempfile.TemporaryDirectory(prefix=f"bench-catalogue-{path}-") as workdir:
        stack = start_stack(args.speedup, 11, Path(workdir), {
            "Model": MODEL, "ModelLimits": f"{MODEL}={running}/{rate}",
            "MaxBatchLooks": str(max(args.rows, 1)), "DailyImageBudget": str(args.rows * 2),
            "MaxRosterSize": "1"})
        try:
            meter = Meter(stack)
            meter.http.post("/_emulator/limits", json={
                "model": MODEL, "request_limit": int(rate), "request_limit_period": 1,
                "concurrency": int(running)}).raise_for_status()
            sweep_now(stack)
            queue = stack.subscribe_queue(f"bench-{path}")
            s3, inbox = stack.client("s3"), stack.outputs["InboxBucketName"]
            looks = upload_images(s3, inbox, args.rows, args.persons)
            started, started_wall = time.monotonic(), time.time()
            job_ids, batches = (put_csv if path == "csv" else put_manifests)(s3, inbox, looks)
            uploaded = time.monotonic() - started
            jobs_table = JobRepository(Table(stack.outputs["JobsTableName"],
                                             stack.resource("dynamodb")))
            progress = Progress(stack.client("dynamodb"), stack.outputs["JobsTableName"])
            wait(progress, job_ids, started, args.timeout,
                 lambda status, _: status in WAITING_OR_LATER)
            admitted = {"invocations": sum(meter.invocations().values()),
                        "dynamodb_writes": meter.dynamodb_writes_by_kind()}
            wait(progress, job_ids, started, args.timeout,
                 lambda status, notified: status in TERMINAL_STATUSES and notified)
            time.sleep(3)  # the last notifications reach the subscriber queue
            notes = notifications_from(stack.client("sqs"), queue)
            clock = Timebase(scale=args.speedup, anchor=stack.time_anchor)
            return measure(stack, meter, job_ids, batches, jobs_table, notes, uploaded,
                           lambda marks, jobs: reached(jobs, marks, clock, started_wall),
                           admitted, args)
        finally:
            stack.stop()


def upload_images(s3, inbox: str, rows: int, persons: int) -> list[tuple[str, str]]:
    """Person photos and distinct garments (each a different image: a pixel changed),
    paired so that every look is distinct."""
    person, top = (SAMPLES / "person.jpg").read_bytes(), (SAMPLES / "top.jpg").read_bytes()
    for p in range(persons):
        s3.put_object(Bucket=inbox, Key=f"catalog/person-{p:03d}.jpg", Body=person)
    garments = -(-rows // persons)
    for g in range(garments):
        s3.put_object(Bucket=inbox, Key=f"catalog/top-{g:05d}.jpg", Body=top)
    return [(f"catalog/person-{i % persons:03d}.jpg", f"catalog/top-{i // persons:05d}.jpg")
            for i in range(rows)]


def put_csv(s3, inbox: str, looks: list[tuple[str, str]]) -> tuple[list[str], int]:
    lines = ["id,person,top,attr.sku"] + [f"look-{i:05d},{person},{top},SKU-{i:05d}"
                                           for i, (person, top) in enumerate(looks)]
    key = "jobs/catalogue.csv"
    answer = s3.put_object(Bucket=inbox, Key=key, Body=("\n".join(lines) + "\n").encode())
    source = Source(inbox, key, answer["ETag"].strip('"'), answer["VersionId"])
    return [job_id_for(source, f"look-{i:05d}") for i in range(len(looks))], 1


def put_manifests(s3, inbox: str, looks: list[tuple[str, str]]) -> tuple[list[str], int]:
    job_ids, batches = [], 0
    for first in range(0, len(looks), 50):
        chunk = [{"id": f"look-{i:05d}", "person": person, "top": top,
                  "attributes": {"sku": f"SKU-{i:05d}"}}
                 for i, (person, top) in enumerate(looks[first:first + 50], start=first)]
        key = f"jobs/part-{first // 50:03d}.json"
        answer = s3.put_object(Bucket=inbox, Key=key,
                               Body=json.dumps({"version": 1, "looks": chunk}).encode())
        source = Source(inbox, key, answer["ETag"].strip('"'), answer["VersionId"])
        job_ids += [job_id_for(source, look["id"]) for look in chunk]
        batches += 1
    return job_ids, batches


class Progress:
    """Each job's status and whether it was notified, read with a projection (whole
    records were a sixth of the emulated DynamoDB's work: serializing them)."""

    def __init__(self, dynamodb, table: str) -> None:
        self.dynamodb, self.table = dynamodb, table

    def of(self, job_ids: list[str]) -> dict[str, tuple[JobStatus, bool]]:
        found = {}
        for start in range(0, len(job_ids), 100):
            request = {self.table: {
                "Keys": [{name: {"S": value} for name, value in job_key(j).items()}
                         for j in job_ids[start:start + 100]],
                "ProjectionExpression": "job_id, #s, notified_at",
                "ExpressionAttributeNames": {"#s": "status"}}}
            while request:
                answer = self.dynamodb.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.table, []):
                    found[item["job_id"]["S"]] = (JobStatus(item["status"]["S"]),
                                                  "notified_at" in item)
                request = answer.get("UnprocessedKeys") or None
        return found


def wait(progress: Progress, job_ids: list[str], started: float, timeout: float,
         done) -> None:
    """Until `done` holds for every job (or the timeout). Reads only the jobs not done
    yet (`done` stays true once it holds), every 2 s, or for a large run less often:
    a 10,000-row run read whole every 20 s was a third of the emulated DynamoDB's
    work. The times reported come from the records afterwards (`reached`)."""
    interval, pending, shown = max(2.0, len(job_ids) / 200), list(job_ids), None
    while pending and time.monotonic() - started <= timeout:
        states = progress.of(pending)
        pending = [j for j in pending if not done(*states.get(j, (None, False)))]
        if len(pending) != shown:
            print(f"  {time.monotonic() - started:7.1f} s: "
                  f"{len(job_ids) - len(pending)}/{len(job_ids)}", flush=True)
            shown = len(pending)
        if pending:
            time.sleep(interval)


def reached(jobs, marks: tuple[str, ...], clock: Timebase, started_wall: float):
    """Real seconds from the upload until every job had reached one of `marks` (its
    timeline's first of them, on the pipeline's clock), or None if one never did."""
    times = []
    for job in jobs:
        seen = [job.timeline[m] for m in marks if m in job.timeline]
        if not seen:
            return None
        times.append(clock.to_wall(min(seen)))
    return round(max(times) - started_wall, 1)


def measure(stack, meter, job_ids, batches, jobs_table, notes, uploaded, reached_by,
            admitted, args) -> dict:
    rows = len(job_ids)
    jobs = jobs_table.get_many(job_ids)
    per_job = Counter(n["message"].get("job_id") for n in notes
                      if n["message"]["event"].startswith("job."))
    completed = sum(1 for n in notes if n["message"]["event"] == "batch.completed")
    invocations = meter.invocations()
    decoded = decodes(stack.lambdas.log_dir)
    return {
        "upload_seconds": round(uploaded, 1),
        "to_every_look_admitted_or_queued_seconds": reached_by(
            ("queued", "admitted", "finalized"), jobs),
        "to_every_look_ended_seconds": reached_by(("finalized",), jobs),
        "statuses": dict(Counter(job.status.value for job in jobs)),
        "failures": failures(stack, jobs),
        "lambda_invocations_per_look_to_admission": round(admitted["invocations"] / rows, 3),
        "dynamodb_writes_per_look_to_admission": round(
            sum(admitted["dynamodb_writes"].values()) / rows, 2),
        "dynamodb_writes_per_look_to_admission_by_kind": per_look(admitted["dynamodb_writes"],
                                                                  rows),
        "lambda_invocations_per_look": round(sum(invocations.values()) / rows, 3),
        "lambda_invocations": invocations,
        "dynamodb_writes_per_look": round(meter.dynamodb_writes() / rows, 2),
        "dynamodb_writes_per_look_by_kind": per_look(meter.dynamodb_writes_by_kind(), rows),
        "dynamodb_requests": {action: {"count": int(n), "seconds": round(t, 1),
                                       "kb_answered": round(b / 1024)}
                              for action, (n, t, b) in sorted(
                                  stack.dynamodb_meter.requests.items(),
                                  key=lambda entry: -entry[1][1])},
        "peak_memory_mb": {name.split("-")[-1]: mb
                           for name, mb in sorted(stack.lambdas.peak_memory_mb.items())},
        # The emulation's own processes: moto's DynamoDB, and this one (moto's other
        # services, the provider emulator, the Lambda runtime's dispatch, the bench).
        "local_stack_peak_memory_mb": {"dynamodb": stack.dynamodb_meter.peak_memory_mb,
                                       "moto_and_emulator": round(peak_rss_kb() / 1024, 1)},
        "images_decoded": decoded,
        "distinct_images": args.persons + -(-rows // args.persons),
        "jobs_with_one_notification": sum(1 for j in job_ids if per_job[j] == 1),
        "jobs_with_other_than_one": sum(1 for j in job_ids if per_job[j] != 1),
        "batches": batches, "batch_completed_notifications": completed,
        "images_billed": meter.provider()["by_model"][MODEL]["images"],
        "throttled_429": meter.provider()["throttled_429"],
    }


def failures(stack, jobs) -> list[dict]:
    """Each look that ended FAILED or TIMED_OUT: its error and, when its workflow
    stopped (a Workflow* code), the workflow's own error and cause."""
    machine = stack.outputs["JobStateMachineArn"].replace(":stateMachine:", ":execution:")
    stepfunctions = stack.client("stepfunctions")
    found = []
    for job in jobs:
        if job.status not in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            continue
        failure = {"job_id": job.job_id, "status": job.status.value, **(job.error or {})}
        if failure.get("code", "").startswith("Workflow"):
            execution = stepfunctions.describe_execution(
                executionArn=f"{machine}:{execution_name(job)}")
            failure["workflow"] = {k: str(execution.get(k, ""))[:2000]
                                   for k in ("status", "error", "cause")}
        found.append(failure)
    return found


def per_look(counts: Counter[str], rows: int) -> dict[str, float]:
    return {kind: round(count / rows, 2) for kind, count in counts.most_common()}


def decodes(log_dir: Path) -> int:
    """The ImagesDecoded metric the functions emitted (Powertools' EMF lines)."""
    count = 0
    for log in log_dir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"ImagesDecoded"' not in line or not line.startswith("{"):
                continue
            try:
                value = json.loads(line).get("ImagesDecoded")
            except json.JSONDecodeError:
                continue
            count += sum(value) if isinstance(value, list) else int(value or 0)
    return count


if __name__ == "__main__":
    sys.exit(main())
