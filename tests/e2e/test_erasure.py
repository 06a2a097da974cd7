"""Erasure and upload quotas end to end, on the local stack (moto over its real API,
the provider emulator over HTTP): an integration erases its job, uploads and batches
for good (every S3 version and delete marker), is refused while work is open, meets
its upload quota, and the operator erases a whole integration with `tryon data erase`."""

import time
import uuid

import httpx
import pytest
from boto3.dynamodb.conditions import Key
from test_api import Integration, problem
from tryon.jobs import price_of
from tryon_local.cli import main
from tryon_local.driver import SAMPLES

PERSON, TOP = (SAMPLES / "person.jpg").read_bytes(), (SAMPLES / "top.jpg").read_bytes()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def forms(client: Integration, **files: bytes) -> dict[str, dict]:
    answer = client.http.post("/uploads", json={"files": [
        {"name": name, "content_type": "image/jpeg", "size": len(data)}
        for name, data in files.items()]})
    assert answer.status_code == 200, answer.text
    return dict(zip(files, answer.json()["uploads"], strict=True))


def post(form: dict, data: bytes) -> httpx.Response:
    return httpx.post(form["url"], data=form["fields"],
                      files={"file": ("f.jpg", data, "image/jpeg")})


def versions(s3, bucket: str, key: str) -> list[dict]:
    """Every version and delete marker of exactly `key`."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [{"bucket": bucket, "key": v["Key"], "version": v["VersionId"], "marker": marker}
            for kind, marker in (("Versions", False), ("DeleteMarkers", True))
            for v in listed.get(kind, []) if v["Key"] == key]


def tag_of(s3, bucket: str, key: str) -> str | None:
    found = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t["Value"] for t in found}.get("tryon-referenced")


@pytest.fixture
def tryon(capsys, stack, tmp_path):
    state = stack.write_state(tmp_path / "stack.json")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--local", str(state)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_a_job_and_its_uploads_are_erased_with_every_version(stack, stores):
    s3 = stack.client("s3")
    inbox, results = stack.outputs["InboxBucketName"], stack.outputs["ResultsBucketName"]
    acme = Integration(stack, unique("erase"))
    made = forms(acme, person=PERSON, top=TOP, spare=TOP)
    for name, data in (("person", PERSON), ("person", PERSON), ("top", TOP), ("spare", TOP)):
        assert post(made[name], data).status_code in (200, 201, 204)  # person: 2 versions
    person, top, spare = (made[name]["key"] for name in ("person", "top", "spare"))
    s3.delete_object(Bucket=inbox, Key=spare)  # spare: a version, a delete marker, a version
    post(made["spare"], TOP)
    assert tag_of(s3, inbox, person) == "false"  # expires unless looks name it
    accepted = acme.http.post("/looks", json=acme.look(first={"person": person, "top": top}))
    assert accepted.status_code == 202, accepted.text
    assert (tag_of(s3, inbox, person), tag_of(s3, inbox, spare)) == ("true", "false")
    [job_id] = accepted.json()["job_ids"]
    assert acme.wait(job_id)["status"] == "SUCCEEDED"
    link = acme.http.get(f"/jobs/{job_id}/result").json()["image"]["url"]
    assert httpx.get(link).status_code == 200

    job = stores.jobs.get(job_id)
    keys = {(inbox, person), (inbox, top), (inbox, spare), (inbox, job.source["key"]),
            (results, job.result["key"]),
            (results, job.result["sidecar"].removeprefix(f"s3://{results}/")),
            *((ready["bucket"], ready["key"]) for ready in job.submit_inputs.values())}
    before = [v for bucket, key in sorted(keys) for v in versions(s3, bucket, key)]
    for version in before:
        print("before", version)
    assert len(versions(s3, inbox, person)) == 2 and len(before) >= 9
    assert [v["marker"] for v in versions(s3, inbox, spare)].count(True) == 1

    assert acme.http.delete(f"/jobs/{job_id}").status_code == 204
    assert acme.http.delete(f"/{spare}").status_code == 204
    problem(acme.http.delete(f"/{person}"), 404, "NoSuchUpload")  # went with its job
    left = [v for bucket, key in sorted(keys) for v in versions(s3, bucket, key)]
    print("versions_left", len(left))
    assert left == []
    old_link = httpx.get(link)
    print("old result link", old_link.status_code)
    assert old_link.status_code in (403, 404)
    problem(acme.http.get(f"/jobs/{job_id}/result"), 410, "JobErased")
    record = stores.jobs.get(job_id)
    assert (record.status.value, record.owner, record.model) == ("SUCCEEDED", acme.name,
                                                                 job.model)
    assert record.usage == job.usage and record.timeline == job.timeline and record.erased_at
    assert record.inputs is None and record.result is None and record.look_id is None
    assert acme.http.get(f"/jobs/{job_id}").json()["price"] == price_of(job.model)


def test_open_work_is_refused_then_a_whole_batch_goes_once_it_ended(stack, emulator, stores):
    s3 = stack.client("s3")
    inbox = stack.outputs["InboxBucketName"]
    acme = Integration(stack, unique("erase"))
    made = forms(acme, person=PERSON, top=TOP)
    for name, data in (("person", PERSON), ("top", TOP)):
        post(made[name], data)
    person, top = made["person"]["key"], made["top"]["key"]
    emulator.fault(target="hold", count=1)  # the look's task stays RUNNING until released
    accepted = acme.http.post("/looks", json=acme.look(
        held={"person": person, "top": top}, plain={"person": person, "top": top,
                                                    "resolution": 1280})).json()
    held = accepted["job_ids"][0]
    acme.wait(held, until={"SUBMITTED"})
    problem(acme.http.delete(f"/jobs/{held}"), 409, "JobNotEnded")
    problem(acme.http.delete(f"/{person}"), 409, "UploadInUse")
    problem(acme.http.delete(f"/batches/{accepted['batch_id']}"), 409, "BatchNotEnded")
    other = Integration(stack, unique("other"))
    problem(other.http.delete(f"/jobs/{held}"), 404, "NoSuchJob")
    problem(other.http.delete(f"/batches/{accepted['batch_id']}"), 404, "NoSuchBatch")
    problem(other.http.delete(f"/{person}"), 404, "NoSuchUpload")
    emulator.hold(stores.jobs.get(held).provider_task_id, False)
    for job_id in accepted["job_ids"]:
        acme.wait(job_id)
    manifest = stores.jobs.get(held).source["key"]
    assert versions(s3, inbox, manifest)

    assert acme.http.delete(f"/batches/{accepted['batch_id']}").status_code == 204
    assert versions(s3, inbox, manifest) == [] and versions(s3, inbox, person) == []
    for job_id in accepted["job_ids"]:
        problem(acme.http.get(f"/jobs/{job_id}/result"), 410, "JobErased")
    batch = acme.http.get(f"/batches/{accepted['batch_id']}").json()
    assert batch["counts"]["succeeded"] == 2 and batch["attributes"] == {}


def test_upload_forms_meet_their_quota_and_their_declared_size(stack, tryon):
    acme = Integration(stack, unique("quota"))
    code, out, err = tryon("keys", "set", acme.name, "--upload-forms", "3")
    assert code == 0 and "3 forms" in out, err
    made = forms(acme, person=PERSON, small=TOP[:100])
    assert post(made["small"], TOP).status_code == 400  # more than it declared: S3 refuses
    assert post(made["person"], PERSON).status_code in (200, 201, 204)
    refused = problem(acme.http.post("/uploads", json={"files": [
        {"name": n, "content_type": "image/jpeg", "size": 10} for n in ("a", "b")]}),
        429, "UploadQuotaReached")
    assert "UploadFormsPerDay of 3" in refused["detail"] and "2 used" in refused["detail"]
    assert "resets at" in refused["detail"]
    forms(acme, last=TOP)  # the third form still fits
    problem(acme.http.post("/uploads", json={"files": [
        {"name": "huge", "content_type": "image/jpeg", "size": 51 * 1024 * 1024}]}),
        422, "InvalidRequest")


def test_the_operator_erases_a_whole_integration_and_its_keys(stack, tryon):
    s3 = stack.client("s3")
    inbox, results = stack.outputs["InboxBucketName"], stack.outputs["ResultsBucketName"]
    gone = Integration(stack, unique("gone"))
    made = forms(gone, person=PERSON, top=TOP, never=TOP)
    for name, data in (("person", PERSON), ("top", TOP), ("never", TOP)):
        post(made[name], data)
    # A webhook endpoint nobody answers on: its deliveries hold the notifications' bodies.
    hook = gone.http.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"}).json()["id"]
    [job_id] = gone.http.post("/looks", json=gone.look(a={
        "person": made["person"]["key"], "top": made["top"]["key"]})).json()["job_ids"]
    gone.wait(job_id)
    jobs = stack.resource("dynamodb").Table(stack.outputs["JobsTableName"])
    credentials = stack.resource("dynamodb").Table(stack.outputs["CredentialsTableName"])

    def items(table, pk: str) -> list[dict]:
        return table.query(KeyConditionExpression=Key("pk").eq(pk))["Items"]

    deliveries = f"WHDELIVERY#{gone.name}#{hook}"
    deadline = time.monotonic() + 30
    while not items(jobs, deliveries):
        assert time.monotonic() < deadline, "no webhook delivery recorded"
        time.sleep(0.5)

    code, out, err = tryon("data", "erase", "--integration", gone.name, "--and-keys")
    assert code == 0, err
    print(out)
    assert f"erased integration {gone.name}:" in out and "1 job records" in out
    assert "1 batches" in out and "credential records" in out
    for bucket, prefix in ((inbox, f"uploads/{gone.name}/"), (inbox, f"jobs/api/{gone.name}/"),
                           (results, f"looks/api/{gone.name}/")):
        listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        assert not listed.get("Versions") and not listed.get("DeleteMarkers"), prefix
    assert "webhook records (endpoints and deliveries)" in out
    assert items(jobs, deliveries) == [] and items(credentials, f"WHSECRET#{gone.name}") == []
    code, listing, _ = tryon("keys", "list")
    assert gone.name not in listing
    stack.gateway.advance(31)  # the authorizer's cached answer expires
    assert gone.http.get("/jobs").status_code == 401
    code, _, err = tryon("data", "erase", "--job", "0" * 32)
    assert code == 2 and "no such job" in err
