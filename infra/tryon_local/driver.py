"""Drives work through the local stack as a user would: upload images and a
manifest (or drop a garment) in the inbox, watch the job records, collect the
notifications and the result images, and report."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError
from PIL import Image, ImageOps
from tryon.adapters.batches import BatchRepository
from tryon.adapters.dynamo import Table, from_dynamo
from tryon.jobs import safe_name
from tryon.review import render_review

from tryon_local.runtime import LocalStack, notifications_from

SAMPLES = Path(__file__).parent / "samples"
TIMING_FIELDS = ("received", "submitted", "provider_start", "provider_end", "finalized")
# The model `tryon demo` has its embedded emulator answer as retired, so that one
# look shows the fallback.
DEMO_RETIRED_MODEL = "aitryon"
# Formats every browser shows; an input in another (HEIC, or not an image at all)
# gets a placeholder on the review page instead of a broken image.
BROWSER_IMAGE_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP"})


@dataclass(frozen=True)
class LookRequest:
    look_id: str
    person: Path
    top: Path | None = None
    bottom: Path | None = None
    dress: Path | None = None
    keep: str | None = None
    model: str | None = None
    resolution: int | None = None
    restore_face: bool | None = None
    instruction: str | None = None


def demo_looks() -> list[LookRequest]:
    """The single looks of `tryon demo`, on the bundled sample images: the seed's
    four on the default model, two on the Qwen successors (one per protocol), and
    one on a model the demo's emulator reports retired (it ends on the fallback)."""
    person, top, bottom = SAMPLES / "person.jpg", SAMPLES / "top.jpg", SAMPLES / "bottom.jpg"
    return [
        LookRequest("top-only", person, top=top),
        LookRequest("bottom-only", person, bottom=bottom),
        LookRequest("top-and-bottom", person, top=top, bottom=bottom),
        LookRequest("dress", person, top=SAMPLES / "dress.jpg"),
        LookRequest("qwen3-top-and-bottom", person, top=top, bottom=bottom,
                    model="qwen-image-3.0"),
        LookRequest("qwen2-dress", person, dress=SAMPLES / "dress.jpg", model="qwen-image-2.0"),
        LookRequest("retired-model", person, top=top, keep="bottom", model=DEMO_RETIRED_MODEL),
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
        self.versions: dict[str, str] = {}  # what this driver uploaded: key -> version id

    def put(self, key: str, body: bytes, content_type: str = "binary/octet-stream") -> str:
        answer = self.s3.put_object(Bucket=self.inbox, Key=key, Body=body,
                                    ContentType=content_type)
        self.versions[key] = answer["VersionId"]
        return key

    def upload_image(self, path: Path, key: str | None = None) -> str:
        return self.put(key or f"inputs/{path.name}", path.read_bytes())

    def put_manifest(self, name: str, manifest: dict[str, Any]) -> str:
        return self.put(f"jobs/{name}.json", json.dumps(manifest).encode(), "application/json")

    def submit(self, look: LookRequest) -> str:
        """Upload the look's images and a one-look manifest; returns the manifest key."""
        manifest: dict[str, Any] = {"version": 1, "id": look.look_id,
                                    "person": self.upload_image(look.person)}
        for role in ("top", "bottom", "dress"):
            path = getattr(look, role)
            if path:
                manifest[role] = self.upload_image(path)
        for option in ("keep", "model", "resolution", "restore_face", "instruction"):
            if getattr(look, option) is not None:
                manifest[option] = getattr(look, option)
        return self.put_manifest(look.look_id, manifest)

    def submit_manifest_file(self, manifest_path: Path, images: Path) -> str:
        """Upload every image a manifest names (found in `images` by key, or by file
        name), then the manifest itself."""
        manifest = json.loads(manifest_path.read_text())
        looks = manifest.get("looks", [manifest])
        for look in looks if isinstance(looks, list) else []:
            for slot in ("person", "top", "bottom", "dress"):
                key = look.get(slot) if isinstance(look, dict) else None
                if isinstance(key, str):
                    path = images / key if (images / key).is_file() else images / Path(key).name
                    if path.is_file():
                        self.upload_image(path, key)
        return self.put(f"jobs/{manifest_path.name}", manifest_path.read_bytes(),
                        "application/json")

    def drop_garment(self, path: Path, slot: str, sku: str) -> str:
        """What drop-folder automation does: copy a garment to garments/<slot>/<sku>.<ext>."""
        return self.upload_image(path, f"garments/{slot}/{sku}{path.suffix.lower()}")

    def follow(self, keys: list[str], timeout: float) -> tuple[list[dict], list[dict]]:
        """Wait until every upload's jobs have ended and been notified, and every batch
        among them has sent its summary. Returns (job records, notifications)."""
        wanted = set(keys)
        notifications: list[dict] = []
        statuses: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for note in notifications_from(self.sqs, self.subscriber):
                if (note["message"].get("source") or {}).get("key") in wanted:
                    notifications.append(note)
            jobs, positions = self._records(wanted)
            for job in jobs:
                if statuses.get(job_label(job)) != job["status"]:
                    statuses[job_label(job)] = job["status"]
                    self.progress(f"  {job_label(job):<24} {job['status']}")
            notified = {n["message"].get("job_id") for n in notifications}
            summarised = {n["message"].get("batch_id") for n in notifications
                          if n["message"]["event"] == "batch.completed"}
            batches = {j["batch_id"] for j in jobs if j.get("batch_id")}
            if (jobs and {j["source"]["key"] for j in jobs} >= wanted
                    and all(j["job_id"] in notified for j in jobs) and batches <= summarised):
                order = {key: i for i, key in enumerate(keys)}
                jobs.sort(key=lambda j: (order[j["source"]["key"]], positions.get(j["job_id"], 0),
                                         j["timeline"]["received"]))
                return jobs, notifications
            time.sleep(0.25)
        raise TimeoutError(f"jobs still open after {timeout:.0f} s: {statuses}")

    def _records(self, source_keys: set[str]) -> tuple[list[dict], dict[str, int]]:
        """The jobs of these uploads (of the versions this driver uploaded, when it
        uploaded them), and each batched job's place in its batch."""
        jobs, positions, start = [], {}, None
        while True:
            page = self.table.scan(**({"ExclusiveStartKey": start} if start else {}),
                                   ConsistentRead=True)
            for item in page["Items"]:
                source = item.get("source", {})
                if source.get("key") not in source_keys or not self._follows(source):
                    continue
                if item["pk"].startswith("JOB#"):
                    jobs.append(from_dynamo(item))
                    if item.get("batch_order"):
                        positions[item["job_id"]] = int(item["batch_order"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return jobs, positions

    def _follows(self, source: dict) -> bool:
        """Exactly the version this driver uploaded; any version of other keys."""
        mine = self.versions.get(source["key"])
        return mine is None or source.get("version_id") == mine

    def jobs_of(self, source_keys: set[str]) -> list[dict]:
        return self._records(source_keys)[0]

    def download_result(self, job: dict, out_dir: Path) -> Path | None:
        if not job.get("result"):
            return None
        result = job["result"]
        extension = result["key"].rsplit(".", 1)[-1]
        target = out_dir / f"{job_label(job).replace('/', '-')}.{extension}"
        self.s3.download_file(result["bucket"], result["key"], str(target))
        return target

    def download_input(self, uri: str, inputs_dir: Path) -> Path | None:
        """Copy an input image (s3://bucket/key) into inputs_dir under a name that is
        safe and unique per URI; None if it is gone or no browser could show it."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        digest = hashlib.sha256(uri.encode()).hexdigest()[:8]
        target = inputs_dir / f"{digest}-{safe_name(Path(key).name, 'image')}"
        inputs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.s3.download_file(bucket, key, str(target))
            with Image.open(target) as image:
                viewable = image.format in BROWSER_IMAGE_FORMATS
        except (ClientError, OSError, ValueError, Image.DecompressionBombError):
            return None
        return target if viewable else None

    def batch_of(self, jobs: list[dict]) -> dict | None:
        """The batch record when all these jobs are one batch's."""
        batch_ids = {job.get("batch_id") for job in jobs}
        if len(batch_ids) != 1 or None in batch_ids:
            return None
        table = Table(self.stack.outputs["JobsTableName"], self.stack.resource("dynamodb"))
        return BatchRepository(table).get(batch_ids.pop())


def job_label(job: dict) -> str:
    """A short name for a job: its look id, or garment/person for a drop-folder job."""
    key = job["source"]["key"]
    if key.startswith("garments/"):
        return f"{Path(key).stem}/{job.get('look_id')}"
    return job.get("look_id") or Path(key).name


def run(stack: LocalStack, send: Callable[[Driver], list[str]], out_dir: Path, *,
        timeout: float = 300, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Send work with `send` (it returns the triggering keys), follow it to the end,
    write results and notifications to out_dir, and return the report."""
    driver = Driver(stack, progress)
    keys = send(driver)
    progress(f"uploaded {len(keys)} manifest(s)/garment(s); following the jobs")
    jobs, notifications = driver.follow(keys, timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {job["job_id"]: driver.download_result(job, out_dir) for job in jobs}
    messages = [note["message"] for note in notifications]
    report = {
        "jobs": [{
            "job_id": job["job_id"],
            "look_id": job.get("look_id"),
            "label": job_label(job),
            "status": job["status"],
            "model": job.get("model"),
            "requested_model": job.get("requested_model") or job.get("model"),
            "result": str(path) if (path := results[job["job_id"]]) else None,
            "error": ({"code": job["error"]["code"], "message": job["error"]["message"]}
                      if job.get("error") else None),
            "provider_task_id": job.get("provider_task_id"),
            "polls": job.get("polls", 0),
            "timings": {name: job["timeline"].get(name) for name in TIMING_FIELDS},
        } for job in jobs],
        "batches": [m for m in messages if m["event"] == "batch.completed"],
        "notifications": messages,
    }
    (out_dir / "notifications.json").write_text(json.dumps(
        [{"message": n["message"], "message_attributes": n["attributes"]}
         for n in notifications], indent=2))
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    write_review(driver, jobs, results, out_dir,
                 f"Try-on results: {keys[0]}" if len(keys) == 1 else
                 f"Try-on results: {len(keys)} uploads")
    return report


def write_review(driver: Driver, jobs: list[dict], results: dict[str, Path | None],
                 out_dir: Path, title: str) -> Path:
    """out_dir/index.html, the review page, with every image a path relative to it
    (inputs are copied to out_dir/inputs/), so the folder can be opened or moved as is."""
    local: dict[str, Path | None] = {
        job["result"]["uri"]: path for job in jobs if (path := results.get(job["job_id"]))}
    for job in jobs:
        for uri in (job.get("inputs") or {}).values():
            if uri not in local:
                local[uri] = driver.download_input(uri, out_dir / "inputs")

    def link(uri: str) -> str | None:
        path = local.get(uri)
        return quote(path.relative_to(out_dir).as_posix()) if path else None

    page = out_dir / "index.html"
    page.write_text(render_review(title, jobs, link, batch=driver.batch_of(jobs)))
    return page


def run_looks(stack: LocalStack, looks: list[LookRequest], out_dir: Path, *,
              timeout: float = 300, progress: Callable[[str], None] = print) -> dict[str, Any]:
    return run(stack, lambda driver: [driver.submit(look) for look in looks], out_dir,
               timeout=timeout, progress=progress)


def send_demo(driver: Driver) -> list[str]:
    """The demo: four single looks; a batch manifest keeping the person's own bottom
    and top; a dress dropped in the drop folder, tried on a roster of two; and a small
    catalogue file (a spreadsheet's CSV: a BOM, semicolons, one row per look)."""
    keys = [driver.submit(look) for look in demo_looks()]
    person = driver.upload_image(SAMPLES / "person.jpg")
    keys.append(driver.put_manifest("kept-garments", {
        "version": 1,
        "attributes": {"retailer": "demo-shop", "campaign": "spring"},
        "looks": [
            {"id": "new-top-own-bottom", "person": person,
             "top": driver.upload_image(SAMPLES / "top.jpg"), "keep": "bottom"},
            {"id": "own-top-new-bottom", "person": person,
             "bottom": driver.upload_image(SAMPLES / "bottom.jpg"), "keep": "top",
             "attributes": {"sku": "BOTTOM-7"}},
        ]}))
    driver.upload_image(SAMPLES / "person.jpg", "models/alex.jpg")
    mirrored = driver.stack.workdir / "sam.jpg"
    ImageOps.mirror(Image.open(SAMPLES / "person.jpg")).save(mirrored, quality=92)
    driver.upload_image(mirrored, "models/sam.jpg")
    keys.append(driver.drop_garment(SAMPLES / "dress.jpg", "dress", "DRESS-001"))
    top, bottom = (driver.upload_image(SAMPLES / f"{name}.jpg") for name in ("top", "bottom"))
    rows = ["id;person;top;bottom;attr.sku", f"cat-tee;{person};{top};;TEE-1",
            f"cat-jeans;{person};;{bottom};JEANS-2", f"cat-outfit;{person};{top};{bottom};SET-3"]
    keys.append(driver.put("jobs/catalogue.csv", ("\ufeff" + "\r\n".join(rows) + "\r\n")
                           .encode(), "text/csv"))
    return keys


def format_table(report: dict[str, Any]) -> str:
    def seconds(start: float | None, end: float | None) -> str:
        return f"{end - start:6.1f} s" if start and end else "      -"

    def model(job: dict[str, Any]) -> str:
        if job["requested_model"] and job["requested_model"] != job["model"]:
            return f"{job['requested_model']} -> {job['model']}"
        return job["model"] or "-"

    rows = [f"{'job':<22} {'model':<26} {'status':<10} {'provider':>8} {'end to end':>10} "
            f"{'polls':>5}"]
    for job in report["jobs"]:
        t = job["timings"]
        rows.append(
            f"{job['label']:<22} {model(job):<26} {job['status']:<10} "
            f"{seconds(t['provider_start'], t['provider_end']):>8} "
            f"{seconds(t['received'], t['finalized']):>10} {job['polls']:>5}"
        )
        if job["error"]:
            rows.append(f"{'':<22} {job['error']['code']}: {job['error']['message']}")
    for batch in report["batches"]:
        counts = ", ".join(f"{v} {k}" for k, v in batch["counts"].items() if v)
        rows.append(f"batch {batch['source']['key']}: {batch['status']} ({counts})")
    return "\n".join(rows)
