"""A batch too large to keep its jobs' ids (more than MAX_LISTED_LOOKS looks: a large
roster, a catalogue file) counts its ended jobs, completes with one batch.completed
of counts, and is read a page at a time in its order."""

import io

from fakes import INBOX
from PIL import Image
from tryon.job_record import JobStatus
from tryon.jobs import (
    MAX_LISTED_LOOKS,
    Source,
    batch_jobs,
    batch_view,
    every_batch_job,
    job_id_for,
)
from tryon.stages.completion import end_job
from tryon.stages.intake import take_upload

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
