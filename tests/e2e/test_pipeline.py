"""End to end: S3 upload -> SQS -> submit -> Step Functions wait loop -> poll ->
finalize / record failure -> results bucket + SNS, all on real components."""

import io
import json
import time
from pathlib import Path

import httpx
from PIL import Image
from tryon.jobs import Source, job_id_for
from tryon_local.driver import SAMPLES, LookRequest, demo_looks, run_looks
from tryon_local.runtime import EMULATOR_API_KEY, notifications_from


def provider_result(stack, task_id: str) -> bytes:
    """What the emulator itself produced for a task (to compare with what we stored)."""
    task = httpx.get(f"{stack.emulator.base_url}/tasks/{task_id}",
                     headers={"Authorization": f"Bearer {EMULATOR_API_KEY}"}).json()
    return httpx.get(task["output"]["image_url"]).raise_for_status().content


def notifications_for(report, job_id):
    return [n for n in report["notifications"] if n["job_id"] == job_id]


def test_the_four_looks_succeed_with_the_emulators_composite(stack, out_dir):
    report = run_looks(stack, demo_looks()[:4], out_dir, timeout=120, progress=lambda s: None)
    person = Image.open(SAMPLES / "person.jpg")
    assert [job["look_id"] for job in report["jobs"]] == [
        "top-only", "bottom-only", "top-and-bottom", "dress"]
    for job in report["jobs"]:
        assert job["status"] == "SUCCEEDED", job
        assert job["error"] is None and job["polls"] >= 1
        stored = Path(job["result"]).read_bytes()
        assert stored == provider_result(stack, job["provider_task_id"])
        image = Image.open(io.BytesIO(stored))
        assert image.format == "JPEG" and image.size == person.size  # resolution -1
        t = job["timings"]
        assert t["received"] <= t["submitted"] <= t["finalized"]
        assert t["provider_start"] < t["provider_end"]
        [note] = notifications_for(report, job["job_id"])
        assert note["event"] == "job.succeeded" and note["status"] == "SUCCEEDED"
        assert note["result"]["uri"].startswith(f"s3://{stack.outputs['ResultsBucketName']}/")
        assert set(note["inputs"]) == {"person"} | {
            "top-only": {"top"}, "bottom-only": {"bottom"}, "dress": {"top"},
            "top-and-bottom": {"top", "bottom"}}[job["look_id"]]
    saved = json.loads((out_dir / "notifications.json").read_text())
    assert {n["message_attributes"]["event"] for n in saved} == {"job.succeeded"}
    assert {n["message_attributes"]["status"] for n in saved} == {"SUCCEEDED"}


def test_stored_results_carry_the_job_id(stack, out_dir):
    report = run_looks(stack, [LookRequest("meta", SAMPLES / "person.jpg",
                                           bottom=SAMPLES / "bottom.jpg", resolution=1024)],
                       out_dir, timeout=120, progress=lambda s: None)
    [job] = report["jobs"]
    [note] = report["notifications"]
    head = stack.client("s3").head_object(Bucket=note["result"]["bucket"],
                                          Key=note["result"]["key"])
    assert head["Metadata"]["job-id"] == job["job_id"]
    assert head["ContentType"] == "image/jpeg"
    assert Image.open(job["result"]).size == (576, 1024)


def test_a_provider_failure_ends_in_one_failure_notification(stack, emulator, out_dir):
    emulator.fault(target="task", code="InvalidPerson",
                   message="The input image has no human body or multi human bodies.", count=1)
    report = run_looks(stack, [LookRequest("no-person", SAMPLES / "top.jpg",
                                           top=SAMPLES / "top.jpg")],
                       out_dir, timeout=120, progress=lambda s: None)
    [job] = report["jobs"]
    assert job["status"] == "FAILED" and job["result"] is None
    assert job["error"]["code"] == "InvalidPerson"
    [note] = notifications_for(report, job["job_id"])
    assert note["event"] == "job.failed" and note["error"]["code"] == "InvalidPerson"
    record = stack.resource("dynamodb").Table(stack.outputs["JobsTableName"]).get_item(
        Key={"pk": f"JOB#{job['job_id']}", "sk": "JOB"})["Item"]
    assert record["provider_status"] == "FAILED" and record["status"] == "FAILED"


def test_the_same_s3_event_three_times_submits_once(stack, driver, emulator):
    """At-least-once delivery: the bucket's own event, a copy at the same moment, and
    a late copy after the job has ended, all yield one provider task."""
    s3, inbox = stack.client("s3"), stack.outputs["InboxBucketName"]
    person, top = driver.upload_image(SAMPLES / "person.jpg"), driver.upload_image(
        SAMPLES / "top.jpg")
    sqs = stack.client("sqs")
    queue_url = sqs.get_queue_url(QueueName="tryon-local-intakequeue")["QueueUrl"]
    before = emulator.stats()
    key = "jobs/dup.json"
    s3.put_object(Bucket=inbox, Key=key, Body=json.dumps(
        {"version": 1, "id": "dup", "person": person, "top": top}).encode())
    head = s3.head_object(Bucket=inbox, Key=key)
    etag = head["ETag"].strip('"')
    # The copies are shaped like the bucket's own event for this version.
    version = head["VersionId"]
    event = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": inbox, "arn": f"arn:aws:s3:::{inbox}"},
               "object": {"key": key, "size": head["ContentLength"], "eTag": etag,
                          "versionId": version, "sequencer": ""}}}]}
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
    job_id = job_id_for(Source(inbox, key, etag, version), "dup")
    [job], notes = driver.follow([key], timeout=120)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))  # a late third copy
    wait_until_drained(sqs, queue_url)
    late = [n for n in notifications_from(sqs, driver.subscriber)
            if n["message"].get("job_id") == job_id]
    assert job["job_id"] == job_id and job["status"] == "SUCCEEDED"
    assert emulator.stats()["submits"] - before["submits"] == 1
    executions = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.outputs["JobStateMachineArn"])["executions"]
    assert [e["name"] for e in executions].count(job_id) == 1
    assert len(notes) == 1 and late == []


def wait_until_drained(sqs, queue_url, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        if all(value == "0" for value in attributes.values()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"intake queue not drained: {attributes}")


def test_the_api_key_never_leaves_the_secret(stack, out_dir):
    """Job records, notifications and function logs never contain the key (or a signed URL)."""
    report = run_looks(stack, [LookRequest("secret", SAMPLES / "person.jpg",
                                           top=SAMPLES / "dress.jpg")],
                       out_dir, timeout=120, progress=lambda s: None)
    assert EMULATOR_API_KEY not in json.dumps(report)
    table = stack.resource("dynamodb").Table(stack.outputs["JobsTableName"])
    items = json.dumps(table.scan()["Items"], default=str)
    assert items and EMULATOR_API_KEY not in items
    # The provider's signed result URL is a credential too: it stays in the execution.
    assert "Signature=" not in items
    for log in stack.lambdas.log_dir.glob("*.log"):
        assert EMULATOR_API_KEY not in log.read_text(), log.name
        assert "Signature=" not in log.read_text(), log.name


def test_every_notification_is_also_an_event_on_the_stacks_bus(stack, out_dir):
    """An integrator's rule on the bus gets each notification: detail-type = its
    event, detail = the SNS message."""
    events, sqs = stack.client("events"), stack.client("sqs")
    bus = stack.outputs["NotificationBusName"]
    queue = sqs.create_queue(QueueName="bus-watcher")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.put_rule(Name="watch", EventBusName=bus,
                    EventPattern=json.dumps({"source": ["tryon"]}))
    events.put_targets(Rule="watch", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    try:
        report = run_looks(stack, [LookRequest("evented", SAMPLES / "person.jpg",
                                               top=SAMPLES / "top.jpg")],
                           out_dir, timeout=120, progress=lambda s: None)
        [job] = report["jobs"]
        [note] = notifications_for(report, job["job_id"])
        received = [json.loads(m["Body"]) for m in sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])]
        mine = [e for e in received if e["detail"].get("job_id") == job["job_id"]]
        assert [(e["source"], e["detail-type"]) for e in mine] == [("tryon", "job.succeeded")]
        assert mine[0]["detail"] == note
    finally:
        events.remove_targets(Rule="watch", EventBusName=bus, Ids=["q"])
        events.delete_rule(Name="watch", EventBusName=bus)
        sqs.delete_queue(QueueUrl=queue)
