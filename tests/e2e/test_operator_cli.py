"""The operator's commands (`tryon jobs|keys|budget --local`) against the running
local stack, through the state file a served stack writes; and `tryon local serve`
itself, in its own process."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from tryon.job_record import JobRecord, JobStatus
from tryon_local.cli import main
from tryon_local.driver import SAMPLES
from tryon_local.runtime import notifications_from

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def state_file(stack, tmp_path_factory) -> Path:
    return stack.write_state(tmp_path_factory.mktemp("operator") / "stack.json")


@pytest.fixture
def tryon(capsys, state_file):
    """Run `tryon ARGS --local STATE` in this process: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--local", str(state_file)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def as_json(result: tuple[int, str, str]):
    code, out, err = result
    assert code == 0, err
    return json.loads(out)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_for(what, timeout: float = 30, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (found := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)
    return found


def test_a_key_created_works_on_the_api_until_revoked(stack, tryon):
    name = unique("ops")
    code, out, _ = tryon("keys", "create", name, "--quota", "3")
    assert code == 0
    key = out.splitlines()[1]
    assert key.startswith("tryon_") and "Authorization: Bearer" in out
    assert f"{stack.api_url}/jobs" in out  # how to use it, on this stack
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{stack.api_url}/jobs", headers=bearer).status_code == 200

    code, listing, _ = tryon("keys", "list", "--json")
    [mine] = [item for item in json.loads(listing) if item["name"] == name]
    assert mine["daily_quota"] == 3 and mine["used_today"] == 0 and not mine["revoked_at"]
    [listed_key] = mine["keys"]
    assert set(listed_key) == {"key_id", "created_at", "revoked_at"}
    code, text, _ = tryon("keys", "list")
    assert name in text
    for shown in (listing, text):  # neither the key nor its hash is ever shown again
        assert "tryon_" not in shown and "APIKEY#" not in shown

    code, _, err = tryon("keys", "revoke", name, "--key-id", "nokey")
    assert code == 2 and "has no key 'nokey'" in err
    assert tryon("keys", "revoke", name, "--key-id", listed_key["key_id"])[0] == 0
    # Revoked, it works until the authorizer's answer cached for it expires (30 s).
    assert httpx.get(f"{stack.api_url}/jobs", headers=bearer).status_code == 200
    stack.gateway.advance(31)
    assert httpx.get(f"{stack.api_url}/jobs", headers=bearer).status_code == 401


def test_budget_show_and_set_an_override_and_back(tryon):
    before = as_json(tryon("budget", "show", "--json"))
    assert before["source"] == "DailyImageBudget" and before["limit"] == before["stack_budget"]
    try:
        raised = as_json(tryon("budget", "set", str(before["spent"] + 7), "--json"))
        assert raised["limit"] == before["spent"] + 7 and raised["source"] == "override"
        code, text, _ = tryon("budget", "show")
        assert code == 0 and f"of {before['spent'] + 7} images" in text and "override" in text
    finally:
        restored = as_json(tryon("budget", "set", "--default", "--json"))
    assert restored["source"] == "DailyImageBudget" and restored["limit"] == before["limit"]
    with pytest.raises(SystemExit) as refused:  # a number or --default: argparse says so
        tryon("budget", "set")
    assert refused.value.code == 2


def test_a_look_waiting_for_the_budget_is_canceled_and_never_submitted(
        stack, driver, emulator, tryon, budget_spent):
    person, top = (driver.upload_image(SAMPLES / f"{name}.jpg") for name in ("person", "top"))
    submits = emulator.stats()["submit_requests"]
    budget_spent()
    assert "override" in tryon("budget", "show")[1]  # every new look waits
    key = driver.put_manifest(unique("ops-cancel"), {
        "version": 1, "id": "waits", "person": person, "top": top})
    [job] = wait_for(lambda: [j for j in driver.jobs_of({key})
                              if j["status"] == JobStatus.QUEUED])
    assert job["waiting_for"] == "budget"
    code, out, _ = tryon("jobs", "cancel", job["job_id"])
    assert code == 0 and "CANCELED" in out and "the operator" in out
    [ended], notes = driver.follow([key], timeout=30)
    as_json(tryon("budget", "set", "--default", "--json"))
    assert ended["status"] == "CANCELED" and ended["error"]["code"] == "Canceled"
    assert [n["message"]["event"] for n in notes] == ["job.canceled"]
    assert tryon("jobs", "cancel", job["job_id"])[0] == 0  # again: a no-op
    time.sleep(61 / stack.options.speedup)  # a sweep with the budget back admits nothing
    assert driver.jobs_of({key})[0]["status"] == "CANCELED"
    assert emulator.stats()["submit_requests"] == submits
    assert not [n for n in notifications_from(driver.sqs, driver.subscriber)  # sent once
                if n["message"].get("job_id") == job["job_id"]]


def test_a_failed_look_is_retried_as_a_new_job_linked_to_it(stack, driver, emulator, tryon):
    person, top = (driver.upload_image(SAMPLES / f"{name}.jpg") for name in ("person", "top"))
    emulator.fault(target="task", code="InvalidPerson", count=1)
    key = driver.put_manifest(unique("ops-retry"), {
        "version": 1, "id": "second-chance", "person": person, "top": top, "resolution": 1280,
        "attributes": {"campaign": "spring"}})
    [failed], _ = driver.follow([key], timeout=60)
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "InvalidPerson"

    retried = as_json(tryon("jobs", "retry", failed["job_id"], "--json"))
    assert retried["retry_of"] == failed["job_id"]
    bucket, _, retry_key = retried["manifest"].removeprefix("s3://").partition("/")
    assert bucket == stack.outputs["InboxBucketName"]
    assert retry_key.startswith(f"jobs/retries/{failed['job_id']}-")
    [new], [note] = driver.follow([retry_key], timeout=60)
    assert new["job_id"] == retried["job_id"] and new["status"] == "SUCCEEDED"
    assert new["attributes"] == {"campaign": "spring", "retry_of": failed["job_id"]}
    assert note["message"]["attributes"]["retry_of"] == failed["job_id"]
    assert (new["inputs"], new["parameters"], new["look_id"]) == (
        failed["inputs"], failed["parameters"], failed["look_id"])

    code, shown, _ = tryon("jobs", "show", new["job_id"])
    assert code == 0 and "SUCCEEDED" in shown and f"retry_of={failed['job_id']}" in shown
    assert "finalized" in shown and new["result"]["uri"] in shown
    code, _, err = tryon("jobs", "retry", new["job_id"])
    assert code == 2 and "SUCCEEDED: nothing to retry" in err
    code, _, err = tryon("jobs", "cancel", new["job_id"])
    assert code == 2 and "already ended SUCCEEDED" in err
    code, _, err = tryon("jobs", "show", "0" * 32)
    assert code == 2 and "no job" in err


def test_a_retried_api_job_stays_its_integrations(stack, driver, tryon, stores):
    """An integration's ended job (recorded here as the API's intake would) is retried
    under its API prefix: the new job is the integration's, and its key sees it."""
    name = unique("ops")
    key = as_json(tryon("keys", "create", name, "--json"))["key"]
    person, top = (driver.upload_image(SAMPLES / f"{image}.jpg", f"uploads/{name}/{image}.jpg")
                   for image in ("person", "top"))
    inbox, now = stack.outputs["InboxBucketName"], time.time()
    old = f"canceled{uuid.uuid4().hex[:24]}"
    stores.jobs.create(JobRecord.from_item({
        "job_id": old, "status": JobStatus.CANCELED, "look_id": "shirt", "model": "aitryon",
        "requested_model": "aitryon", "owner": name, "owner_order": f"{now:017.3f}#{old}",
        "inputs": {"person": f"s3://{inbox}/{person}", "top": f"s3://{inbox}/{top}"},
        "parameters": {"resolution": -1, "restore_face": True},
        "source": {"bucket": inbox, "key": f"jobs/api/{name}/order.json", "etag": "e"},
        "error": {"code": "Canceled", "message": "canceled"}, "timeline": {"received": now}}),
        now)
    retried = as_json(tryon("jobs", "retry", old, "--json"))
    assert retried["owner"] == name
    assert retried["manifest"].startswith(f"s3://{inbox}/jobs/api/{name}/retry-{old}-")
    http = httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"})
    job = wait_for(lambda: (answer := http.get(f"/jobs/{retried['job_id']}")).status_code == 200
                   and answer.json()["status"] in ("SUCCEEDED", "FAILED") and answer.json(),
                   timeout=60)
    assert job["status"] == "SUCCEEDED" and job["attributes"] == {"retry_of": old}
    listed = as_json(tryon("jobs", "list", "--owner", name, "--json"))
    assert [j["job_id"] for j in listed] == [retried["job_id"], old]


def test_watch_shows_a_batch_to_its_end_and_list_finds_its_jobs(
        stack, driver, tryon, monkeypatch, capsys):
    person, top, bottom = (driver.upload_image(SAMPLES / f"{name}.jpg")
                           for name in ("person", "top", "bottom"))
    key = driver.put_manifest(unique("ops-watch"), {"version": 1, "looks": [
        {"id": "top", "person": person, "top": top},
        {"id": "bottom", "person": person, "bottom": bottom}]})
    [batch_id] = wait_for(lambda: {j["batch_id"] for j in driver.jobs_of({key})})

    code, live, _ = tryon("jobs", "watch", batch_id, "--interval", "0.2", "--timeout", "60")
    assert code == 0, live
    lines = live.splitlines()
    # One line per change; the last with the images made and their price.
    assert lines[-2].startswith(f"[{'#' * 30}] 2/2 ended: 2 succeeded; 2 images, "), lines
    assert lines[-1] == f"batch {batch_id} SUCCEEDED"

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # on a terminal: drawn in place
    code, drawn, _ = tryon("jobs", "watch", batch_id)
    assert code == 0 and drawn.startswith("\r\x1b[2K[###") and "2 succeeded; 2 images" in drawn
    monkeypatch.undo()
    view = as_json(tryon("jobs", "watch", batch_id, "--json"))
    assert view["status"] == "SUCCEEDED" and view["counts"]["succeeded"] == 2
    assert view["progress"]["images_made"] == 2 and view["progress"]["eta_seconds"] is None

    listed = as_json(tryon("jobs", "list", "--batch", batch_id, "--json"))
    jobs = driver.jobs_of({key})
    assert sorted(j["job_id"] for j in listed) == sorted(j["job_id"] for j in jobs)
    assert {j["status"] for j in listed} == {"SUCCEEDED"}
    code, table, _ = tryon("jobs", "list", "--batch", batch_id, "--status", "SUCCEEDED")
    assert code == 0 and all(j["job_id"] in table for j in jobs)
    # Without --batch or --owner: a Scan, newest first.
    [newest] = as_json(tryon("jobs", "list", "--status", "SUCCEEDED", "--limit", "1",
                             "--json"))
    assert newest["status"] == "SUCCEEDED"
    code, _, err = tryon("jobs", "watch", "nosuchbatch")
    assert code == 2 and "no batch 'nosuchbatch'" in err


def test_local_serve_prints_its_api_a_key_and_its_s3_and_stops_on_interrupt(tmp_path,
                                                                              capsys):
    log = (tmp_path / "serve.err").open("w")  # a file: a full pipe would block the server
    serve = subprocess.Popen(
        [sys.executable, "-m", "tryon_local.cli", "local", "serve", "--port", "0",
         "--speedup", "10", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=log, text=True, cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watchdog = threading.Timer(60, serve.kill)  # a stack that never comes up fails the test
    watchdog.start()
    try:
        api = serve.stdout.readline().strip()
        key = serve.stdout.readline().strip()
        assert api.startswith("API: http://127.0.0.1:") and api.endswith("/v1"), api
        assert key.startswith("KEY: tryon_"), (key, (tmp_path / "serve.err").read_text())
        answer = httpx.get(f"{api.removeprefix('API: ')}/jobs",
                           headers={"Authorization": f"Bearer {key.removeprefix('KEY: ')}"})
        assert answer.status_code == 200 and answer.json() == {"jobs": [], "next": None}
        state = tmp_path / "local-stack" / "stack.json"
        assert json.loads(state.read_text())["api_url"] == api.removeprefix("API: ")
        # Any S3 client, with what it printed, drops into the inbox: a roster photo, then
        # a garment, made into a look (the drop folder).
        s3_line, inbox_line = serve.stdout.readline().strip(), serve.stdout.readline().strip()
        endpoint, region, access, secret = re.fullmatch(
            r"S3: (\S+) \(region (\S+), access key (\S+), secret (\S+)\)", s3_line).groups()
        inbox = inbox_line.removeprefix("INBOX: s3://")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region,
                          aws_access_key_id=access, aws_secret_access_key=secret)
        s3.put_object(Bucket=inbox, Key="models/alex.jpg",
                      Body=(SAMPLES / "person.jpg").read_bytes())
        s3.put_object(Bucket=inbox, Key="garments/top/sku-1.jpg",
                      Body=(SAMPLES / "top.jpg").read_bytes())
        deadline = time.monotonic() + 45
        while True:
            code = main(["jobs", "list", "--json", "--local", str(state)])
            jobs = [j for j in json.loads(capsys.readouterr().out) if j["look_id"] == "alex"]
            if jobs and jobs[0]["status"] == "SUCCEEDED":
                break
            assert code == 0 and time.monotonic() < deadline, jobs
            time.sleep(1)
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
        assert not state.exists()
    finally:
        watchdog.cancel()
        if serve.poll() is None:
            serve.kill()
        serve.communicate()
        log.close()


def test_keys_set_limits_the_priorities_an_integration_may_ask_for(stack, driver, tryon,
                                                                   stores):
    name = unique("ops")
    key = as_json(tryon("keys", "create", name, "--json"))["key"]
    changed = as_json(tryon("keys", "set", name, "--priorities", "batch", "--share", "2",
                            "--max-in-flight", "3", "--json"))
    assert changed == {"name": name, "priorities": ["batch"], "share": 2.0, "max_in_flight": 3}
    assert "share 2; priorities batch; at most 3 slots of a model" in tryon("keys", "list")[1]
    person, top = (driver.upload_image(SAMPLES / f"{image}.jpg", f"uploads/{name}/{image}.jpg")
                   for image in ("person", "top"))
    http = httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"})
    look = {"version": 1, "id": "a", "person": person, "top": top}
    refused = http.post("/looks", json={**look, "priority": "interactive"})
    assert refused.status_code == 422 and refused.json()["code"] == "PriorityNotAllowed"
    accepted = http.post("/looks", json=look)
    assert accepted.status_code == 202
    [job_id] = accepted.json()["job_ids"]
    # One look alone would be interactive; this integration's are batch.
    job = wait_for(lambda: stores.jobs.get(job_id), timeout=30)
    assert (job.owner, job.priority) == (name, "batch")
