from tryon.job_record import JobRecord, JobStatus
from tryon.jobs import (
    MAX_ERROR_MESSAGE_CHARS,
    Source,
    batch_summary,
    bounded_error,
    drop_result_stem,
    dropped_garment,
    job_id_for,
    manifest_result_stem,
    notification_for,
)


def test_job_ids_are_stable_per_upload_and_look():
    source = Source("inbox", "jobs/a.json", "etag1")
    assert job_id_for(source, "x") == job_id_for(Source("inbox", "jobs/a.json", "etag1"), "x")
    assert job_id_for(source, "x") != job_id_for(source, "y")
    assert job_id_for(source, "x") != job_id_for(Source("inbox", "jobs/a.json", "etag2"), "x")
    versioned = Source("inbox", "jobs/a.json", "etag1", version_id="v2")
    assert job_id_for(versioned, "x") != job_id_for(source, "x")


def test_result_keys_are_safe_whatever_the_manifest_is_called():
    source = Source("inbox", "jobs/../../etc/Spring campaign ☀.json", "e")
    key = manifest_result_stem(source, "look-1", "0123456789abcdef")
    assert key == "looks/manifest/manifest/etc/Spring_campaign/look-1-0123456789"
    assert ".." not in key


def test_result_keys_never_collide_between_jobs():
    """Two teams' spring.json, a re-upload of one, and names that reduce alike."""
    uploads = [Source("inbox", "jobs/teamA/spring.json", "e1"),
               Source("inbox", "jobs/teamB/spring.json", "e1"),
               Source("inbox", "jobs/teamA/spring.json", "e2"),  # uploaded again
               Source("inbox", "jobs/a b.json", "e1"), Source("inbox", "jobs/a_b.json", "e1")]
    keys = [manifest_result_stem(u, "look-1", job_id_for(u, "look-1")) for u in uploads]
    assert len(set(keys)) == len(keys)
    assert keys[0].startswith("looks/teamA/spring/look-1-")
    assert keys[1].startswith("looks/teamB/spring/look-1-")
    garment = dropped_garment("garments/top/TEE 1.jpg")
    assert drop_result_stem(garment, "anna", "abcdef0123456789") == (
        "results/TEE_1/anna-abcdef0123")


def test_notifications_carry_filterable_attributes():
    body, attributes = notification_for(JobRecord.from_item({
        "job_id": "j", "status": "FAILED", "model": "aitryon", "look_id": "a",
        "error": {"code": "InvalidPerson", "message": "m"}, "timeline": {"received": 1.0}}))
    assert body["event"] == "job.failed" and body["error"]["code"] == "InvalidPerson"
    assert attributes == {"event": "job.failed", "status": "FAILED", "model": "aitryon"}
    body, attributes = notification_for(JobRecord(job_id="j", status=JobStatus.TIMED_OUT))
    assert attributes == {"event": "job.timed_out", "status": "TIMED_OUT"}


def test_provider_messages_are_bounded_before_they_are_stored_or_sent():
    long = {"code": "InternalError", "message": "x" * 50_000, "pointer": "/a"}
    bounded = bounded_error(long)
    assert len(bounded["message"]) == MAX_ERROR_MESSAGE_CHARS and bounded["message"][-1] == "…"
    assert bounded["code"] == "InternalError" and bounded["pointer"] == "/a"
    short = {"code": "c", "message": "m"}
    assert bounded_error(short) is short and bounded_error(None) is None


def test_the_owner_of_a_notification_is_the_pipelines_word_not_the_manifests():
    posing = {"owner": "victim", "sku": "1", "event": "x"}
    job = JobRecord(job_id="j", status=JobStatus.SUCCEEDED, model="aitryon",
                    attributes=posing, owner="acme")
    body, attributes = notification_for(job)
    assert body["owner"] == "acme" and attributes["owner"] == "acme"
    assert attributes["event"] == "job.succeeded" and attributes["sku"] == "1"
    from_bucket = JobRecord(job_id="k", status=JobStatus.FAILED, attributes=posing)
    body, attributes = notification_for(from_bucket)
    assert body["owner"] is None and "owner" not in attributes
    assert body["attributes"] == posing  # the body keeps what the manifest said
    batch = {"batch_id": "b", "job_ids": ["j"], "owner": None, "attributes": posing}
    body, attributes = batch_summary(batch, [job])
    assert body["owner"] is None and "owner" not in attributes
    assert batch_summary({**batch, "owner": "acme"}, [job])[1]["owner"] == "acme"
