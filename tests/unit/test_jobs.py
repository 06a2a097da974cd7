import json

import pytest
from tryon.jobs import (
    JobStatus,
    ManifestError,
    Source,
    job_id_for,
    next_poll_delay,
    notification_for,
    parse_manifest,
    result_key_stem,
)


def manifest(doc) -> bytes:
    return json.dumps(doc).encode()


def test_a_single_look_manifest():
    [look] = parse_manifest(manifest({"person": "p.jpg", "top": "t.jpg"}), "aitryon")
    assert (look.look_id, look.person, look.top, look.bottom) == ("look-1", "p.jpg", "t.jpg", None)
    assert (look.model, look.resolution, look.restore_face) == ("aitryon", -1, True)
    assert look.inputs() == {"person": "p.jpg", "top": "t.jpg"}


def test_a_batch_with_defaults_and_overrides():
    looks = parse_manifest(manifest({
        "version": 1,
        "defaults": {"model": "aitryon", "resolution": 1280},
        "looks": [{"id": "a", "person": "p", "bottom": "b"},
                  {"id": "b", "person": "p", "top": "t", "resolution": 1024,
                   "restore_face": False}]}), "aitryon-plus")
    assert [(x.look_id, x.model, x.resolution, x.restore_face) for x in looks] == [
        ("a", "aitryon", 1280, True), ("b", "aitryon", 1024, False)]


@pytest.mark.parametrize(("doc", "pointer", "words"), [
    (b"{nope", "", "not valid JSON"),
    (manifest([1]), "", "JSON object"),
    (manifest({"person": "p"}), "", "top and/or a bottom"),
    (manifest({"top": "t"}), "/person", "person is required"),
    (manifest({"person": "p", "top": "t", "colour": "red"}), "/colour", "unknown field"),
    (manifest({"version": 2, "person": "p", "top": "t"}), "/version", "unsupported version"),
    (manifest({"looks": []}), "/looks", "non-empty"),
    (manifest({"looks": [{"person": "p", "top": "t", "resolution": 512}]}),
     "/looks/0/resolution", "resolution"),
    (manifest({"looks": [{"person": "p", "top": "t", "model": "dall-e"}]}),
     "/looks/0/model", "model"),
    (manifest({"looks": [{"person": "p", "top": "t", "restore_face": "yes"}]}),
     "/looks/0/restore_face", "true or false"),
    (manifest({"looks": [{"id": "../x", "person": "p", "top": "t"}]}), "/looks/0/id", "id"),
    (manifest({"looks": [{"id": "a", "person": "p", "top": "t"},
                         {"id": "a", "person": "p", "top": "t"}]}), "/looks/1/id", "twice"),
    (manifest({"looks": [{"person": "p", "top": "t"}] * 51}), "/looks", "at most 50"),
])
def test_bad_manifests_say_what_and_where(doc, pointer, words):
    with pytest.raises(ManifestError) as err:
        parse_manifest(doc, "aitryon-plus")
    assert err.value.pointer == pointer and words in str(err.value)


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
    key = result_key_stem(source, "look-1", "abc")
    assert key == "looks/Spring_campaign/look-1/abc" and ".." not in key


def test_notifications_carry_filterable_attributes():
    body, attributes = notification_for({
        "job_id": "j", "status": "FAILED", "model": "aitryon", "look_id": "a",
        "error": {"code": "InvalidPerson", "message": "m"}, "timeline": {"received": 1.0}})
    assert body["event"] == "job.failed" and body["error"]["code"] == "InvalidPerson"
    assert attributes == {"event": "job.failed", "status": "FAILED", "model": "aitryon"}
    body, attributes = notification_for({"job_id": "j", "status": JobStatus.TIMED_OUT})
    assert attributes == {"event": "job.timed_out", "status": "TIMED_OUT"}
