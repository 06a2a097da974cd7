"""Drives looks through the local stack as a user would: upload images and a
manifest to the inbox, watch the job records, collect the notifications and
the result images, and report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tryon_local.runtime import LocalStack, notifications_from

SAMPLES = Path(__file__).parent / "samples"
TIMING_FIELDS = ("received", "submitted", "provider_start", "provider_end", "finalized")


@dataclass(frozen=True)
class LookRequest:
    look_id: str
    person: Path
    top: Path | None = None
    bottom: Path | None = None
    model: str | None = None
    resolution: int | None = None
    restore_face: bool | None = None


def demo_looks() -> list[LookRequest]:
    """The four looks of `tryon demo`, on the bundled sample images."""
    person = SAMPLES / "person.jpg"
    return [
        LookRequest("top-only", person, top=SAMPLES / "top.jpg"),
        LookRequest("bottom-only", person, bottom=SAMPLES / "bottom.jpg"),
        LookRequest("top-and-bottom", person, top=SAMPLES / "top.jpg",
                    bottom=SAMPLES / "bottom.jpg"),
        LookRequest("dress", person, top=SAMPLES / "dress.jpg"),
    ]


class Driver:
    def __init__(self, stack: LocalStack, progress: Callable[[str], None] = print) -> None:
        self.stack = stack
        self.s3 = stack.client("s3")
        self.sqs = stack.client("sqs")
        self.table = stack.resource("dynamodb").Table(stack.outputs["JobsTableName"])
        self.inbox = stack.outputs["InboxBucketName"]
        self.progress = progress
        self.subscriber = stack.subscribe_queue(f"driver-{time.monotonic_ns()}")

    def upload_image(self, path: Path) -> str:
        key = f"inputs/{path.name}"
        self.s3.upload_file(str(path), self.inbox, key)
        return key

    def submit(self, look: LookRequest) -> str:
        """Upload the look's images and its manifest; returns the manifest key."""
        manifest: dict[str, Any] = {"version": 1, "id": look.look_id,
                                    "person": self.upload_image(look.person)}
        for role in ("top", "bottom"):
            path = getattr(look, role)
            if path:
                manifest[role] = self.upload_image(path)
        for option in ("model", "resolution", "restore_face"):
            if getattr(look, option) is not None:
                manifest[option] = getattr(look, option)
        key = f"jobs/{look.look_id}.json"
        self.s3.put_object(Bucket=self.inbox, Key=key, Body=json.dumps(manifest).encode(),
                           ContentType="application/json")
        return key

    def follow(self, manifest_keys: list[str], timeout: float) -> tuple[list[dict], list[dict]]:
        """Wait until every manifest's job has ended and been notified.

        Returns (job records, notifications as received)."""
        wanted = set(manifest_keys)
        notifications: list[dict] = []
        statuses: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for note in notifications_from(self.sqs, self.subscriber):
                if (note["message"].get("source") or {}).get("key") in wanted:
                    notifications.append(note)
            jobs = self._jobs(wanted)
            for job in jobs:
                label = job.get("look_id") or job["source"]["key"]
                if statuses.get(label) != job["status"]:
                    statuses[label] = job["status"]
                    self.progress(f"  {label:<16} {job['status']}")
            notified = {n["message"]["job_id"] for n in notifications}
            if jobs and {j["source"]["key"] for j in jobs} >= wanted and all(
                    j["job_id"] in notified for j in jobs):
                order = {key: i for i, key in enumerate(manifest_keys)}
                jobs.sort(key=lambda j: (order[j["source"]["key"]], j["timeline"]["received"]))
                return jobs, notifications
            time.sleep(0.25)
        raise TimeoutError(f"jobs still open after {timeout:.0f} s: {statuses}")

    def _jobs(self, manifest_keys: set[str]) -> list[dict]:
        from tryon.store import from_dynamo

        items, start = [], None
        while True:
            page = self.table.scan(**({"ExclusiveStartKey": start} if start else {}),
                                   ConsistentRead=True)
            items += [from_dynamo(i) for i in page["Items"]
                      if i.get("source", {}).get("key") in manifest_keys]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def download_result(self, job: dict, out_dir: Path) -> Path | None:
        if not job.get("result"):
            return None
        result = job["result"]
        name = f"{job.get('look_id') or job['job_id']}.{result['key'].rsplit('.', 1)[-1]}"
        target = out_dir / name
        self.s3.download_file(result["bucket"], result["key"], str(target))
        return target


def run_looks(stack: LocalStack, looks: list[LookRequest], out_dir: Path, *,
              timeout: float = 300, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run looks end to end; writes results and notifications to out_dir; returns the report."""
    driver = Driver(stack, progress)
    keys = [driver.submit(look) for look in looks]
    progress(f"uploaded {len(keys)} manifest(s); following the jobs")
    jobs, notifications = driver.follow(keys, timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "jobs": [{
            "job_id": job["job_id"],
            "look_id": job.get("look_id"),
            "status": job["status"],
            "result": str(path) if (path := driver.download_result(job, out_dir)) else None,
            "error": ({"code": job["error"]["code"], "message": job["error"]["message"]}
                      if job.get("error") else None),
            "provider_task_id": job.get("provider_task_id"),
            "polls": job.get("polls", 0),
            "timings": {name: job["timeline"].get(name) for name in TIMING_FIELDS},
        } for job in jobs],
        "notifications": [note["message"] for note in notifications],
    }
    (out_dir / "notifications.json").write_text(json.dumps(
        [{"message": n["message"], "message_attributes": n["attributes"]}
         for n in notifications], indent=2))
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def format_table(report: dict[str, Any]) -> str:
    def seconds(start: float | None, end: float | None) -> str:
        return f"{end - start:6.1f} s" if start and end else "      -"

    rows = [f"{'job':<16} {'status':<10} {'provider task':>13} {'end to end':>11} {'polls':>5}"]
    for job in report["jobs"]:
        t = job["timings"]
        rows.append(
            f"{job['look_id'] or job['job_id'][:16]:<16} {job['status']:<10} "
            f"{seconds(t['provider_start'], t['provider_end']):>13} "
            f"{seconds(t['received'], t['finalized']):>11} {job['polls']:>5}"
        )
        if job["error"]:
            rows.append(f"{'':<16} {job['error']['code']}: {job['error']['message']}")
    return "\n".join(rows)
