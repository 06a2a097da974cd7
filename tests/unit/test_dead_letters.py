"""The dead-letter consumer's stage against moto (in process): whatever state an
upload's intake died in, every look it was to make ends FAILED once, quoting the
last error, and its batch still completes."""

import json

from moto_stages import DAY_ONE
from tryon.jobs import Source, job_id_for
from tryon.stages.dead_letters import end_dead_job, end_dead_upload

LAST_ERROR = {"code": "ReadTimeoutError", "message": "Read timed out"}


def test_a_batch_whose_intake_died_midway_ends_every_look_and_completes(moto_stages):
    ctx, store = moto_stages.ctx, moto_stages.ctx.store
    body = json.dumps({"version": 1, "looks": [{"id": "a", "person": "p.jpg", "top": "t.jpg"},
                                                {"id": "b", "person": "p.jpg",
                                                 "bottom": "b.jpg"}]}).encode()
    version = moto_stages.s3.put_object(Bucket="inbox", Key="jobs/spring.json",
                                        Body=body)["VersionId"]
    source = Source("inbox", "jobs/spring.json", "etag", version)
    batch_id = job_id_for(source, "batch")
    a, b = job_id_for(source, "a"), job_id_for(source, "b")
    # The intake recorded the batch and look "a", then died before look "b".
    store.create_batch({"batch_id": batch_id, "job_ids": [a, b], "source": source.as_dict()},
                       DAY_ONE)
    store.create({"job_id": a, "status": "RECEIVED", "batch_id": batch_id,
                  "source": source.as_dict(), "timeline": {"received": DAY_ONE}}, DAY_ONE)

    end_dead_upload(ctx, source, LAST_ERROR)
    end_dead_upload(ctx, source, LAST_ERROR)  # a redelivered dead letter changes nothing

    jobs = {job["job_id"]: job for job in store.get_jobs([a, b])}
    assert {job["status"] for job in jobs.values()} == {"FAILED"}
    error = jobs[b]["error"]
    assert error["code"] == "IntakeFailed"
    assert "the last error: ReadTimeoutError: Read timed out" in error["message"]
    notes = moto_stages.notices()
    assert sorted(n["event"] for n in notes) == ["batch.completed", "job.failed", "job.failed"]
    assert moto_stages.counted == ["JobsFailed", "JobsFailed"]


def test_an_admitted_job_whose_submit_died_ends_submit_failed_once(moto_stages):
    ctx, store = moto_stages.ctx, moto_stages.ctx.store
    store.create({"job_id": "j1", "status": "ADMITTED", "timeline": {}}, DAY_ONE)
    end_dead_job(ctx, "j1", "submit", None)
    end_dead_job(ctx, "j1", "submit", LAST_ERROR)
    job = store.get("j1")
    assert job["status"] == "FAILED" and job["error"]["code"] == "SubmitFailed"
    assert "no error was recorded" in job["error"]["message"]
    assert [n["event"] for n in moto_stages.notices()] == ["job.failed"]
