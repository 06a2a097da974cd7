"""Catalogue batches through the HTTP API and the operator's commands on the real local
stack (issue 21): POST /v1/batches answers a batch id at once, with a form to upload
the file or reading an uploaded one; the batch is expanded on the batch state machine;
POST /v1/batches/{id}/retry makes its failed looks again as a linked batch, and
/cancel cancels what the provider has not started, saying what was saved."""

import time
import uuid

import httpx
from test_api import Integration, problem
from test_operator_cli import state_file, tryon  # noqa: F401 (fixtures)
from tryon.jobs import price_of
from tryon_local.runtime import notifications_from

MODEL = "aitryon-plus"


def batch_when(acme: Integration, batch_id: str, done, timeout: float = 90) -> dict:
    """GET /v1/batches/{id} until `done(view)` (404 while intake has not recorded it)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = acme.http.get(f"/batches/{batch_id}")
        if answer.status_code == 200 and done(answer.json()):
            return answer.json()
        assert time.monotonic() < deadline, answer.text[:300]
        time.sleep(0.3)


def ended(view: dict) -> bool:
    return view["status"] != "OPEN"


def test_a_batch_uploaded_through_its_form_runs_and_its_failed_look_is_retried(
        stack, emulator):
    acme = Integration(stack, f"acme-{uuid.uuid4().hex[:6]}")
    person, top = acme.upload("person.jpg", "top.jpg")
    body = (f"id,person,top,attr.sku\nfails,{person},{top},A-1\nok,{person},{top},B-2\n"
            f"gone,{person},uploads/{acme.name}/nothing/here.jpg,C-3\n").encode()
    # Refused at no cost: both ways at once, and a file over the size bound.
    problem(acme.http.post("/batches", json={"key": "x.csv", "file": {
        "name": "s.csv", "content_type": "text/csv", "size": 10}}), 422, "InvalidRequest")
    problem(acme.http.post("/batches", json={"file": {
        "name": "s.csv", "content_type": "text/csv", "size": 64 * 1024 * 1024}}),
        413, "BatchTooLarge")

    answer = acme.http.post("/batches", json={"file": {
        "name": "ss27.csv", "content_type": "text/csv", "size": len(body)}})
    assert answer.status_code == 202, answer.text
    made = answer.json()
    batch_id, form = made["batch_id"], made["upload"]
    assert made["batch_url"].endswith(f"/batches/{batch_id}")
    assert form["key"] == f"jobs/api/{acme.name}/batches/{batch_id}.csv"
    problem(acme.http.get(f"/batches/{batch_id}"), 404, "NoSuchBatch")  # not uploaded yet
    emulator.fault(target="task", code="InvalidPerson", count=1)  # the first task fails
    posted = httpx.post(form["url"], data=form["fields"],
                        files={"file": ("ss27.csv", body, "text/csv")})
    assert posted.status_code in (200, 201, 204), posted.text

    view = batch_when(acme, batch_id, ended)
    outcomes = {job["look_id"]: job["status"] for job in view["jobs"]}
    assert sorted(outcomes.values()) == ["FAILED", "FAILED", "SUCCEEDED"], outcomes
    assert outcomes["gone"] == "FAILED"
    [gone] = [job for job in view["jobs"] if job["look_id"] == "gone"]
    assert gone["error"]["code"] == "MissingInput" and "row 4" in gone["error"]["message"]

    retried = acme.http.post(f"/batches/{batch_id}/retry")
    assert retried.status_code == 202, retried.text
    retry = retried.json()
    # The row that never had a look is left out, and said so.
    assert retry["looks"] == 1 and retry["retry_of"] == batch_id and len(retry["left_out"]) == 1
    asked_again = acme.http.post(f"/batches/{batch_id}/retry")  # a lost answer: the same batch
    assert (asked_again.status_code, asked_again.json()["batch_id"]) == (202, retry["batch_id"])
    new = batch_when(acme, retry["batch_id"], ended)
    assert new["retry_of"] == batch_id and new["status"] == "SUCCEEDED"
    [again] = new["jobs"]
    assert again["attributes"]["retry_of"] in {job["job_id"] for job in view["jobs"]}
    assert acme.http.get(f"/batches/{batch_id}").json()["retries"] == [retry["batch_id"]]


def test_an_uploaded_catalogue_is_a_batch_at_once_and_a_cancel_saves_its_queued_looks(
        stack, budget_spent, stores, tryon):  # noqa: F811 (the fixture)
    acme = Integration(stack, f"acme-{uuid.uuid4().hex[:6]}")
    queue = stack.subscribe_queue(f"batch-cancel-{uuid.uuid4().hex[:6]}")
    person, top = acme.upload("person.jpg", "top.jpg")
    body = ("id,person,top\n" + "".join(f"look-{i},{person},{top}\n" for i in range(3))
            ).encode()
    answer = acme.http.post("/uploads", json={"files": [{
        "name": "season.csv", "content_type": "text/csv", "size": len(body)}]})
    assert answer.status_code == 200, answer.text
    [form] = answer.json()["uploads"]
    posted = httpx.post(form["url"], data=form["fields"],
                        files={"file": ("season.csv", body, "text/csv")})
    assert posted.status_code in (200, 201, 204), posted.text

    budget_spent()  # its looks wait QUEUED for the budget
    answer = acme.http.post("/batches", json={"key": form["key"]})
    assert answer.status_code == 202, answer.text
    batch_id = answer.json()["batch_id"]
    assert answer.json()["rows"] == 3 and answer.json()["upload"] is None
    batch_when(acme, batch_id, lambda view: view["counts"]["queued"] == 3)

    canceled = acme.http.post(f"/batches/{batch_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    price = price_of(MODEL)
    assert canceled.json() | {"requested_at": None} == {
        "batch_id": batch_id, "canceled": 3, "not_canceled_running": 0, "done": True,
        "saved": {price["currency"]: round(3 * price["per_image"], 6)},
        "requested_at": None, "by": f"integration {acme.name!r}"}
    view = batch_when(acme, batch_id, ended)
    assert view["counts"]["canceled"] == 3 and view["cancel"]["done"]
    stores.budget.set_override(None)
    time.sleep(1)
    events = [n["message"] for n in notifications_from(stack.client("sqs"), queue)
              if n["message"].get("batch_id") == batch_id]
    assert sorted(e["event"] for e in events) == ["batch.completed"] + ["job.canceled"] * 3

    # The operator's commands: the same cancel (done: as it was), and a retry of its
    # canceled looks refused (only failed and timed-out looks are made again).
    code, out, _ = tryon("jobs", "cancel-batch", batch_id)
    assert code == 0 and out.startswith(f"batch {batch_id}: 3 looks canceled (") and "USD" in out
    code, _, err = tryon("jobs", "retry-batch", batch_id)
    assert code != 0 and "no failed or timed-out look" in err
