"""The dead-letter consumer's stage (on the fakes): whatever state an upload's
intake died in, every look it was to make ends FAILED once, quoting the last
error, and its batch still completes."""

import json

from fakes import INBOX
from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import Source, job_id_for
from tryon.stages.dead_letters import end_dead_job, end_dead_upload

LAST_ERROR = {"code": "ReadTimeoutError", "message": "Read timed out"}


def test_a_batch_whose_intake_died_midway_ends_every_look_and_completes(fake):
    body = json.dumps({"version": 1, "looks": [{"id": "a", "person": "p.jpg", "top": "t.jpg"},
                                                {"id": "b", "person": "p.jpg",
                                                 "bottom": "b.jpg"}]}).encode()
    version = fake.storage.put(INBOX, "jobs/spring.json", body, "application/json")
    source = Source(INBOX, "jobs/spring.json", "etag", version)
    batch_id = job_id_for(source, "batch")
    a, b = job_id_for(source, "a"), job_id_for(source, "b")
    # The intake recorded the batch and look "a", then died before look "b".
    fake.batches.create({"batch_id": batch_id, "job_ids": [a, b],
                         "source": source.as_dict()}, fake.clock())
    fake.jobs.create(JobRecord(job_id=a, status=JobStatus.RECEIVED, batch_id=batch_id,
                               source=source.as_dict(), timeline={"received": fake.clock()}),
                     fake.clock())

    end_dead_upload(fake.ctx, source, LAST_ERROR)
    end_dead_upload(fake.ctx, source, LAST_ERROR)  # a redelivered dead letter changes nothing

    jobs = {job.job_id: job for job in fake.jobs.get_many([a, b])}
    assert {job.status for job in jobs.values()} == {JobStatus.FAILED}
    error = jobs[b].error
    assert error["code"] == "IntakeFailed"
    assert "the last error: ReadTimeoutError: Read timed out" in error["message"]
    assert sorted(n["event"] for n in fake.notifier.events()) == [
        "batch.completed", "job.failed", "job.failed"]
    assert fake.counted == ["JobsFailed", "JobsFailed"]


def test_an_admitted_job_whose_submit_died_ends_submit_failed_once(fake):
    fake.jobs.create(JobRecord(job_id="j1", status=JobStatus.ADMITTED), fake.clock())
    end_dead_job(fake.ctx, "j1", "submit", None)
    end_dead_job(fake.ctx, "j1", "submit", LAST_ERROR)
    job = fake.jobs.get("j1")
    assert job.status == JobStatus.FAILED and job.error["code"] == "SubmitFailed"
    assert "no error was recorded" in job.error["message"]
    assert [n["event"] for n in fake.notifier.events()] == ["job.failed"]


def test_an_upload_that_cannot_be_read_any_more_gets_one_record(fake):
    source = Source(INBOX, "jobs/gone.json", "etag", "v9")
    end_dead_upload(fake.ctx, source, LAST_ERROR)
    [job] = fake.jobs.records.values()
    assert job.status == JobStatus.FAILED and job.error["code"] == "IntakeFailed"
    assert "s3://inbox/jobs/gone.json" in job.error["message"]
