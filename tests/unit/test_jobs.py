
from tryon.jobs import (
    JobStatus,
    Source,
    job_id_for,
    manifest_result_stem,
    next_poll_delay,
    notification_for,
)


def test_job_ids_are_stable_per_upload_and_look():
    source = Source("inbox", "jobs/a.json", "etag1")
    assert job_id_for(source, "x") == job_id_for(Source("inbox", "jobs/a.json", "etag1"), "x")
    assert job_id_for(source, "x") != job_id_for(source, "y")
    assert job_id_for(source, "x") != job_id_for(Source("inbox", "jobs/a.json", "etag2"), "x")
    versioned = Source("inbox", "jobs/a.json", "etag1", version_id="v2")
    assert job_id_for(versioned, "x") != job_id_for(source, "x")


def test_polls_follow_the_recommended_pace_but_stop_at_the_deadline():
    assert next_poll_delay(now=100.0, deadline=1000.0) == 3
    assert next_poll_delay(now=999.0, deadline=1000.0) == 1
    assert next_poll_delay(now=1001.0, deadline=1000.0) == 0


def test_result_keys_are_safe_whatever_the_manifest_is_called():
    source = Source("inbox", "jobs/../../etc/Spring campaign ☀.json", "e")
    key = manifest_result_stem(source, "look-1")
    assert key == "looks/Spring_campaign/look-1" and ".." not in key


def test_notifications_carry_filterable_attributes():
    body, attributes = notification_for({
        "job_id": "j", "status": "FAILED", "model": "aitryon", "look_id": "a",
        "error": {"code": "InvalidPerson", "message": "m"}, "timeline": {"received": 1.0}})
    assert body["event"] == "job.failed" and body["error"]["code"] == "InvalidPerson"
    assert attributes == {"event": "job.failed", "status": "FAILED", "model": "aitryon"}
    body, attributes = notification_for({"job_id": "j", "status": JobStatus.TIMED_OUT})
    assert attributes == {"event": "job.timed_out", "status": "TIMED_OUT"}
