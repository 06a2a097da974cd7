"""The HTTP API end to end: the template's routes served on 127.0.0.1 by the local
gateway, through the real handler in its Lambda worker, against the whole local
stack (moto + the provider emulator). What an integrator does with curl."""

import io
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image
from tryon_local.driver import SAMPLES
from tryon_local.runtime import notifications_from

ENDED = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED"}


class Integration:
    """An integration's view of the API: its key, its uploads, its looks."""

    def __init__(self, stack, name: str, quota: int | None = None) -> None:
        self.name = name
        self.http = httpx.Client(base_url=stack.api_url, timeout=60, headers={
            "Authorization": f"Bearer {stack.create_api_key(name, quota)}"})

    def upload(self, *names: str) -> list[str]:
        files = [{"name": name, "content_type": "image/jpeg",
                  "size": (SAMPLES / name).stat().st_size} for name in names]
        answer = self.http.post("/uploads", json={"files": files})
        assert answer.status_code == 200, answer.text
        keys = []
        for form, name in zip(answer.json()["uploads"], names, strict=True):
            posted = httpx.post(form["url"], data=form["fields"],
                                files={"file": (name, (SAMPLES / name).read_bytes(),
                                                "image/jpeg")})
            assert posted.status_code in (200, 201, 204), posted.text
            keys.append(form["key"])
        return keys

    def look(self, **looks) -> dict:
        """{look id: {person, top, ...}} as one request."""
        return {"version": 1, "looks": [{"id": look_id, **fields}
                                        for look_id, fields in looks.items()]}

    def wait(self, job_id: str, until=ENDED, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.http.get(f"/jobs/{job_id}")
            if answer.status_code == 200 and answer.json()["status"] in until:
                return answer.json()
            time.sleep(0.3)
        raise TimeoutError(f"{job_id}: {answer.status_code} {answer.text[:200]}")


@pytest.fixture(scope="module")
def acme(stack) -> Integration:
    return Integration(stack, f"acme-{uuid.uuid4().hex[:6]}")


def problem(answer: httpx.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == code and body["request_id"] and len(body["detail"]) > 20
    return body


def manifests(stack, name: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.outputs["InboxBucketName"],
                                                Prefix=f"jobs/api/{name}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_an_integration_uploads_makes_a_look_and_fetches_its_result(stack, acme, emulator):
    person, top = acme.upload("person.jpg", "top.jpg")
    assert person.startswith(f"uploads/{acme.name}/")
    looks = acme.look(first={"person": person, "top": top})
    submits = emulator.stats()["submits"]
    first = acme.http.post("/looks", json=looks, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 202, first.text
    # A retried request (a lost answer) gets the first answer and makes nothing twice.
    again = acme.http.post("/looks", json=looks, headers={"Idempotency-Key": "order-1"})
    assert again.status_code == 202 and again.json() == first.json()
    reused = acme.http.post("/looks", json=acme.look(other={"person": person, "top": top}),
                            headers={"Idempotency-Key": "order-1"})
    problem(reused, 422, "IdempotencyKeyReused")
    accepted = first.json()
    [job_id] = accepted["job_ids"]
    assert accepted["looks"][0]["status_url"] == f"{stack.api_url}/jobs/{job_id}"

    job = acme.wait(job_id)
    assert job["status"] == "SUCCEEDED" and job["look_id"] == "first"
    assert emulator.stats()["submits"] == submits + 1
    assert len(manifests(stack, acme.name)) == 1

    result = acme.http.get(f"/jobs/{job_id}/result").json()
    image = httpx.get(result["image"]["url"])
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size[0] > 0
    sidecar = httpx.get(result["sidecar"]["url"]).json()
    assert sidecar["job_id"] == job_id

    batch = acme.http.get(f"/batches/{accepted['batch_id']}").json()
    assert batch["status"] == "SUCCEEDED" and batch["counts"]["succeeded"] == 1
    listed = acme.http.get("/jobs", params={"status": "SUCCEEDED"}).json()
    assert job_id in [j["job_id"] for j in listed["jobs"]]
    review = acme.http.get(f"/batches/{accepted['batch_id']}/review")
    assert review.status_code == 200 and review.headers["content-type"].startswith("text/html")
    assert "first" in review.text


def test_jobs_are_listed_newest_first_a_page_at_a_time(acme):
    person, top, bottom = acme.upload("person.jpg", "top.jpg", "bottom.jpg")
    accepted = acme.http.post("/looks", json=acme.look(
        one={"person": person, "top": top}, two={"person": person, "bottom": bottom},
        three={"person": person, "top": top, "bottom": bottom})).json()
    for job_id in accepted["job_ids"]:
        acme.wait(job_id, until=ENDED | {"QUEUED", "SUBMITTED", "ADMITTED", "SUBMITTING"})
    seen, after = [], None
    while True:
        page = acme.http.get("/jobs", params={"limit": 2, **({"after": after} if after
                                                                  else {})}).json()
        assert len(page["jobs"]) <= 2
        seen += [j["job_id"] for j in page["jobs"]]
        after = page["next"]
        if not after:
            break
    assert set(accepted["job_ids"]) <= set(seen) and len(seen) == len(set(seen))
    assert seen[:3] == sorted(seen[:3], key=seen.index)  # one order, no repeats
    by_batch = acme.http.get("/jobs", params={"batch": accepted["batch_id"]}).json()
    assert {j["job_id"] for j in by_batch["jobs"]} == set(accepted["job_ids"])
    for job_id in accepted["job_ids"]:
        acme.wait(job_id)


def test_bad_requests_get_a_problem_that_says_what_to_fix_and_create_nothing(stack, acme):
    person, top = acme.upload("person.jpg", "top.jpg")
    before = manifests(stack, acme.name)
    problem(httpx.get(f"{stack.api_url}/jobs"), 401, "Unauthorized")
    problem(httpx.get(f"{stack.api_url}/jobs", headers={"Authorization": "Bearer tryon_x"}),
            401, "Unauthorized")
    foreign = problem(acme.http.post("/looks", json=acme.look(
        a={"person": "uploads/someone-else/x/person.jpg", "top": top})), 422, "ForeignInput")
    assert "POST /v1/uploads" in foreign["detail"]
    problem(acme.http.post("/looks", json=acme.look(
        a={"person": f"uploads/{acme.name}/nothing/here.jpg", "top": top})), 422,
        "MissingInput")
    invalid = problem(acme.http.post("/looks", json=acme.look(
        a={"person": person, "top": top, "keep": "top"})), 422, "InvalidManifest")
    assert "/looks/0/keep" in invalid["detail"]
    problem(acme.http.post("/looks", json={"version": 2}), 422, "InvalidManifest")
    problem(acme.http.post("/looks", content=b"{not json",
                           headers={"content-type": "application/json"}), 422,
            "InvalidRequest")
    wrong_type = problem(acme.http.post("/uploads", json={"files": [
        {"name": "a.exe", "content_type": "application/x-msdownload", "size": 10}]}), 422,
        "InvalidRequest")
    assert "content_type" in wrong_type["detail"] and "image/jpeg" in wrong_type["detail"]
    problem(acme.http.post("/uploads", json={"files": []}), 422, "InvalidRequest")
    problem(acme.http.get("/jobs/0123456789abcdef0123456789abcdef"), 404, "NoSuchJob")
    problem(acme.http.get("/nowhere"), 404, "NoSuchRoute")
    assert manifests(stack, acme.name) == before


def test_an_integration_sees_only_its_own_jobs_and_its_own_quota(stack, acme):
    person, top = acme.upload("person.jpg", "top.jpg")
    accepted = acme.http.post("/looks", json=acme.look(
        mine={"person": person, "top": top})).json()
    other = Integration(stack, f"other-{uuid.uuid4().hex[:6]}", quota=1)
    [job_id] = accepted["job_ids"]
    acme.wait(job_id)
    problem(other.http.get(f"/jobs/{job_id}"), 404, "NoSuchJob")
    problem(other.http.get(f"/batches/{accepted['batch_id']}"), 404, "NoSuchBatch")
    problem(other.http.post(f"/jobs/{job_id}/cancel"), 404, "NoSuchJob")
    assert other.http.get("/jobs").json() == {"jobs": [], "next": None}
    # Its quota of one image a day: two looks are refused whole, one is taken.
    o_person, o_top, o_bottom = other.upload("person.jpg", "top.jpg", "bottom.jpg")
    two = other.look(a={"person": o_person, "top": o_top}, b={"person": o_person,
                                                              "bottom": o_bottom})
    problem(other.http.post("/looks", json=two), 429, "QuotaExceeded")
    assert other.http.post("/looks", json=other.look(
        a={"person": o_person, "top": o_top})).status_code == 202
    problem(other.http.post("/looks", json=other.look(
        b={"person": o_person, "bottom": o_bottom})), 429, "QuotaExceeded")


def test_a_queued_job_is_canceled_at_no_cost_and_a_running_one_is_not(
        stack, acme, emulator, budget_spent, stores):
    queue = stack.subscribe_queue(f"cancel-{uuid.uuid4().hex[:6]}")
    person, top = acme.upload("person.jpg", "top.jpg")
    budget_spent()  # the next look waits QUEUED for the budget
    [job_id] = acme.http.post("/looks", json=acme.look(
        waiting={"person": person, "top": top})).json()["job_ids"]
    assert acme.wait(job_id, until={"QUEUED"})["status"] == "QUEUED"
    canceled = acme.http.post(f"/jobs/{job_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "CANCELED"
    assert canceled.json()["error"]["code"] == "Canceled"
    assert acme.http.post(f"/jobs/{job_id}/cancel").json()["status"] == "CANCELED"
    stores.budget.set_override(None)
    time.sleep(1)
    events = [n["message"] for n in notifications_from(stack.client("sqs"), queue)
              if n["message"].get("job_id") == job_id]
    assert [e["event"] for e in events] == ["job.canceled"]
    # Never sent to the provider (by its own record: another test's look may be
    # submitted meanwhile, so the emulator's count of submits proves nothing).
    canceled_job = stores.jobs.get(job_id)
    assert canceled_job.provider_task_id is None and not canceled_job.submit_attempts

    emulator.fault(target="hold", count=1)  # the next task stays RUNNING until released
    [running] = acme.http.post("/looks", json=acme.look(
        held={"person": person, "top": top})).json()["job_ids"]
    acme.wait(running, until={"SUBMITTED"})
    problem(acme.http.post(f"/jobs/{running}/cancel"), 409, "AlreadyRunning")
    task_id = stores.jobs.get(running).provider_task_id
    emulator.hold(task_id, False)
    assert acme.wait(running)["status"] == "SUCCEEDED"
    problem(acme.http.post(f"/jobs/{running}/cancel"), 409, "AlreadyEnded")


def test_the_openapi_document_describes_every_route(stack):
    document = httpx.get(f"{stack.api_url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "/v1"}]  # the stage: paths are under it
    assert set(document["paths"]) == {
        "/uploads", "/looks", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result",
        "/jobs/{job_id}/cancel", "/batches/{batch_id}", "/batches/{batch_id}/review",
        "/batches", "/batches/{batch_id}/cancel", "/batches/{batch_id}/retry", "/webhooks",
        "/webhooks/{webhook_id}", "/webhooks/{webhook_id}/rotate",
        "/webhooks/{webhook_id}/enable", "/webhooks/{webhook_id}/deliveries",
        "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
        "/uploads/{integration}/{upload_id}/{name}"}
    assert {method for path in ("/jobs/{job_id}", "/batches/{batch_id}")
            for method in document["paths"][path]} == {"get", "delete"}
    looks = document["paths"]["/looks"]["post"]
    assert "idempotency-key" in {p["name"].lower() for p in looks["parameters"]}
    docs = httpx.get(f"{stack.api_url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_schemathesis_finds_no_answer_the_openapi_document_does_not_promise(stack, tmp_path):
    """Property-based checks from the generated OpenAPI document (bounded examples):
    no server error, every status and content type documented, bad input refused,
    undeclared methods and media types answered 405 and 415. Schema-valid requests
    may still be refused (422): a manifest has rules its schema states poorly, and
    the uploads it names must exist, so that one check is left out."""
    key = stack.create_api_key(f"fuzz-{uuid.uuid4().hex[:6]}")
    run = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "run", f"{stack.api_url}/openapi.json",
         "--header", f"Authorization: Bearer {key}", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--max-examples", "5",
         "--seed", "11", "--generation-deterministic", "--workers", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    summary = run.stdout[run.stdout.rfind("SUMMARY"):]
    assert run.returncode == 0, run.stdout[-4000:]
    assert "Tested: 22" in summary and " passed" in summary, summary


