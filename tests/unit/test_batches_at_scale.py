"""A batch too large to keep its jobs' ids (more than MAX_LISTED_LOOKS looks: a large
roster, a catalogue file) counts its ended jobs, completes with one batch.completed
of counts, and is read a page at a time in its order."""

import io
import math
import re
from urllib.parse import unquote

from fakes import INBOX
from PIL import Image
from tryon.adapters.integrations import Integration
from tryon.job_record import JobStatus
from tryon.jobs import (
    MAX_LISTED_LOOKS,
    Source,
    batch_jobs,
    batch_order,
    batch_view,
    every_batch_job,
    job_id_for,
    price_of,
    shard_sizes,
)
from tryon.models.registry import model_spec
from tryon.stages.api_requests import review_page
from tryon.stages.batch_progress import batch_progress
from tryon.stages.completion import end_job
from tryon.stages.intake import take_upload
from tryon_ops.operations import progress_line

LOOKS = MAX_LISTED_LOOKS + 20


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((768, 1024), 64).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_roster_past_the_listed_size_completes_once_by_its_counters(fake):
    fake.configure(max_roster_size=LOOKS, daily_image_budget=10 * LOOKS)
    photo = jpeg()
    for i in range(LOOKS):
        fake.storage.put(INBOX, f"models/p{i:03d}.jpg", photo)
    key = "garments/top/SKU-9.jpg"
    source = Source(INBOX, key, "etag", fake.storage.put(INBOX, key, photo))
    take_upload(fake.ctx, source)
    batch_id = job_id_for(source, "batch")
    batch = fake.batches.get(batch_id)
    assert batch["total"] == LOOKS and "job_ids" not in batch  # counters, not a list

    jobs = list(every_batch_job(fake.jobs, batch))
    assert [job.look_id for job in jobs] == [f"p{i:03d}" for i in range(LOOKS)]  # in order
    assert fake.counted.count("ImagesDecoded") == LOOKS + 1  # each photo, the garment once
    for job in jobs:
        for _ in range(2):  # ended twice (a retried step): counted once
            end_job(fake.ctx, job.job_id, JobStatus.FAILED, error={"code": "X", "message": "x"})
    summaries = [n for n in fake.notifier.events() if n["event"] == "batch.completed"]
    assert len(summaries) == 1
    [summary] = summaries
    assert summary["counts"] == {"total": LOOKS, "succeeded": 0, "failed": LOOKS,
                                 "timed_out": 0, "canceled": 0}
    assert summary["looks"] is None and summary["status"] == "FAILED"
    assert sum(1 for n in fake.notifier.events() if n["event"].startswith("job.")) == LOOKS


    # What GET /v1/batches/{id} shows of it: counters, and its jobs a page at a time.
    batch = fake.batches.get(batch_id)
    view = batch_view(batch, *batch_jobs(fake.jobs, batch))
    assert (view["status"], view["counts"]["failed"], view["counts"]["open"]) == (
        "FAILED", LOOKS, 0)
    assert len(view["jobs"]) == MAX_LISTED_LOOKS and view["next"]
    rest, end = batch_jobs(fake.jobs, batch, after=view["next"])
    assert len(rest) == LOOKS - MAX_LISTED_LOOKS and end is None
    # Its last page still counts the whole batch, not the page.
    assert batch_view(batch, rest, end, after=view["next"])["counts"] == view["counts"]


def test_progress_says_images_made_their_price_and_the_time_to_go(fake):
    model = "aitryon-plus"
    fake.batches.create({"batch_id": "b", "total": 12}, fake.clock())
    ends = {0: JobStatus.SUCCEEDED, 1: JobStatus.SUCCEEDED, 2: JobStatus.FAILED}
    for i in range(12):
        fake.look(f"j{i}", model, status=ends.get(i, JobStatus.QUEUED), batch_id="b",
                  batch_order=f"{i:06d}")
    for i in range(2):
        fake.batches.record_end("b", f"j{i}", "SUCCEEDED", model)
    fake.batches.record_end("b", "j2", "FAILED", model)
    batch = fake.batches.get("b")
    view = batch_progress(fake.ctx, batch)
    per_image = price_of(model)
    low, high = model_spec(model).generation_seconds
    running = fake.ctx.capacity.of(model).limits.in_flight
    assert view["progress"] == {
        "images_made": 2, "price_so_far": {per_image["currency"]: 2 * per_image["per_image"]},
        "eta_seconds": round(math.ceil(9 / running) * (low + high) / 2, 1), "pace_of": model}
    assert view["counts"]["queued"] == 9 and view["status"] == "OPEN"
    # Measured times replace the published ones.
    fake.durations.record(model, "t1", 10.0)
    assert batch_progress(fake.ctx, batch)["progress"]["eta_seconds"] == (
        math.ceil(9 / running) * 10.0)
    assert progress_line(view, width=12) == (
        "[##x.........] 3/12 ended: 9 queued, 2 succeeded, 1 failed; 2 images, "
        f"{2 * per_image['per_image']:g} USD; about 45 s to go")


def test_a_listed_batchs_images_agree_with_its_counts_before_its_ends_are_tallied(fake):
    # A job's record says SUCCEEDED a moment before its end reaches the batch's counters:
    # a batch whose jobs are all listed counts its images from the same records.
    model = "aitryon-plus"
    fake.batches.create({"batch_id": "b", "total": 2, "job_ids": ["j0", "j1"],
                         "shards": shard_sizes(range(2))}, fake.clock())
    for i in range(2):
        fake.look(f"j{i}", model, status=JobStatus.SUCCEEDED, batch_id="b",
                  batch_order=f"{i:06d}")
    fake.batches.record_end("b", "j0", "SUCCEEDED", model)
    view = batch_progress(fake.ctx, fake.batches.get("b"))
    assert (view["counts"]["succeeded"], view["progress"]["images_made"]) == (2, 2)
    # Still OPEN until its counters have every end (batch.completed; a retry may start).
    assert view["status"] == "OPEN"
    fake.batches.record_end("b", "j1", "SUCCEEDED", model)
    assert batch_progress(fake.ctx, fake.batches.get("b"))["status"] == "SUCCEEDED"


def test_the_review_page_of_a_large_batch_pages_and_shows_its_failed_looks(fake):
    fake.batches.create({"batch_id": "big", "total": LOOKS, "owner": "acme",
                         "shards": shard_sizes(range(LOOKS))}, fake.clock())
    for i in range(LOOKS):
        fake.look(f"j{i:03d}", status=JobStatus.FAILED if i % 10 == 0 else JobStatus.QUEUED,
                  batch_id="big", batch_order=batch_order(i), owner="acme",
                  error={"code": "X", "message": "x"} if i % 10 == 0 else None)
    acme = Integration("acme", 10)
    first = review_page(fake.ctx, acme, "big")
    assert first.count('class="look') == MAX_LISTED_LOOKS
    more = re.search(r"review\?after=([0-9]+%23[0-9a-z]+)", first)
    assert more and "More looks of this batch" in first
    assert f"This page: {MAX_LISTED_LOOKS} looks of the batch&#x27;s {LOOKS}." in first
    # The heading sums up the whole batch (from its counters), not the page.
    fake.batches.record_end("big", "j000", "FAILED")
    summary = re.search(r'class="summary">([^<]*)<', review_page(fake.ctx, acme, "big"))
    assert summary.group(1) == f"{LOOKS} looks: 1 failed, {LOOKS - 1} open"
    rest = review_page(fake.ctx, acme, "big", after=unquote(more.group(1)))
    assert rest.count('class="look') == LOOKS - MAX_LISTED_LOOKS
    assert "More looks" not in rest and "It is the last page." in rest
    failed = review_page(fake.ctx, acme, "big", failed=True)
    assert failed.count('class="look') == MAX_LISTED_LOOKS // 10 and "failed=true" in failed
