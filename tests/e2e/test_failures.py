"""Every way a job can end badly ends with a record and exactly one notification,
and nothing is paid for that should not be."""

import json
import time

from tryon_local.driver import SAMPLES, LookRequest, run_looks


def upload_manifest(stack, key: str, body: bytes) -> None:
    stack.client("s3").put_object(Bucket=stack.outputs["InboxBucketName"], Key=key, Body=body)


def test_an_unusable_manifest_fails_once_without_a_provider_call(stack, driver, emulator):
    before = emulator.stats()["submit_requests"]
    upload_manifest(stack, "jobs/broken.json", b'{"version": 1, "person": "p.jpg", "top": ')
    upload_manifest(stack, "jobs/typo.json", json.dumps(
        {"version": 1, "person": "p.jpg", "top": "t.jpg", "colour": "red"}).encode())
    upload_manifest(stack, "jobs/huge.json", b'{"version": 1}' + b" " * (2 * 1024 * 1024))
    jobs, notes = driver.follow(["jobs/broken.json", "jobs/typo.json", "jobs/huge.json"],
                                timeout=60)
    assert [j["status"] for j in jobs] == ["FAILED", "FAILED", "FAILED"]
    broken, huge, typo = (n["message"]["error"] for n in sorted(
        notes, key=lambda n: n["message"]["source"]["key"]))
    assert broken["code"] == "InvalidManifest" and "not valid JSON" in broken["message"]
    assert "jobs/broken.json" in broken["message"]
    assert typo["pointer"] == "/colour" and "unknown field 'colour'" in typo["message"]
    assert huge["code"] == "ManifestTooLarge" and "512 KB" in huge["message"]
    assert len(notes) == 3
    assert emulator.stats()["submit_requests"] == before


def test_a_missing_image_rejects_the_manifest_before_any_provider_call(stack, driver,
                                                                          emulator):
    before = emulator.stats()["submit_requests"]
    person = driver.upload_image(SAMPLES / "person.jpg")
    upload_manifest(stack, "jobs/missing.json", json.dumps({"version": 1, "looks": [
        {"id": "fine", "person": person, "top": driver.upload_image(SAMPLES / "top.jpg")},
        {"id": "missing", "person": person, "dress": "catalog/none.jpg"}]}).encode())
    [job], [note] = driver.follow(["jobs/missing.json"], timeout=60)
    assert job["status"] == "FAILED" and job["error"]["code"] == "MissingInput"
    assert job["error"]["pointer"] == "/looks/1/dress"
    assert "catalog/none.jpg does not exist" in job["error"]["message"]
    assert note["attributes"] == {"event": "job.failed", "status": "FAILED"}
    assert emulator.stats()["submit_requests"] == before


def test_a_throttled_query_is_retried_by_the_state_machine(stack, emulator, out_dir):
    before = emulator.stats()["injected"]["query"]
    emulator.fault(target="query", status=429, code="Throttling.RateQuota",
                   message="Requests rate limit exceeded, please try again later.", count=1)
    report = run_looks(stack, [LookRequest("slow-query", SAMPLES / "person.jpg",
                                           top=SAMPLES / "top.jpg")],
                       out_dir, timeout=120, progress=lambda s: None)
    [job] = report["jobs"]
    assert job["status"] == "SUCCEEDED" and len(report["notifications"]) == 1
    assert emulator.stats()["injected"]["query"] == before + 1


def results_stored(stack) -> list[str]:
    answer = stack.client("s3").list_objects_v2(Bucket=stack.outputs["ResultsBucketName"])
    return [o["Key"] for o in answer.get("Contents", [])]


def test_a_result_that_is_not_a_sane_image_is_refused_and_never_stored(stack, emulator,
                                                                        out_dir):
    """The provider's result URL serving 64 MB of filler behind a JPEG signature, or
    redirecting to another host: the job fails InvalidResult, nothing is stored."""
    emulator.fault(target="result", mode="oversized", size=64 * 1000 * 1000, count=1)
    emulator.fault(target="result", mode="redirect", count=1)
    looks = [LookRequest("filler-result", SAMPLES / "person.jpg", top=SAMPLES / "top.jpg"),
             LookRequest("redirected-result", SAMPLES / "person.jpg",
                         bottom=SAMPLES / "bottom.jpg")]
    report = run_looks(stack, looks, out_dir, timeout=120, progress=lambda s: None)
    errors = " | ".join(job["error"]["message"] for job in report["jobs"])
    assert [job["status"] for job in report["jobs"]] == ["FAILED", "FAILED"]
    assert {job["error"]["code"] for job in report["jobs"]} == {"InvalidResult"}
    assert "over 20000000 bytes" in errors and "redirects to another host" in errors
    stored = results_stored(stack)
    assert not [key for key in stored if "filler-result" in key or "redirected-result" in key]
    for job in report["jobs"]:
        assert "Signature" not in json.dumps(job)  # the signed URL never leaks


def test_an_upload_whose_message_reaches_the_dead_letter_queue_ends_failed_once(
        stack, driver, emulator):
    """An intake message that fails on every delivery is redriven to the dead-letter
    queue; its consumer ends the upload FAILED with the last error, one record and
    one notification (here the queue gives up after 2 receives, not 5 x 18 min)."""
    sqs, inbox = stack.client("sqs"), stack.outputs["InboxBucketName"]
    queue_url = sqs.get_queue_url(QueueName="tryon-local-intakequeue")["QueueUrl"]
    # (moto forgets the queue's Policy on any attribute change: restore it too.)
    saved = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "VisibilityTimeout", "RedrivePolicy", "Policy"])["Attributes"]
    redrive = json.loads(saved["RedrivePolicy"])
    before = emulator.stats()["submit_requests"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={
        **saved, "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({**redrive, "maxReceiveCount": 2})})
    time.sleep(2)  # receives already waiting took the old visibility timeout
    try:
        # Every delivery fails: the object it names is gone (NoSuchKey).
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": inbox},
                   "object": {"key": "jobs/ghost.json", "size": 10, "eTag": "e1"}}}]}))
        [job], notes = driver.follow(["jobs/ghost.json"], timeout=60)
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=saved)
    assert job["status"] == "FAILED" and job["error"]["code"] == "IntakeFailed"
    message = job["error"]["message"]
    assert message.startswith(f"s3://{inbox}/jobs/ghost.json: the intake function "
                              "failed at every delivery")
    assert "NoSuchKey: An error occurred (NoSuchKey)" in message  # the last error
    assert [n["message"]["event"] for n in notes] == ["job.failed"]
    assert emulator.stats()["submit_requests"] == before
