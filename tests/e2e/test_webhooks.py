"""Webhooks end to end: a receiver on 127.0.0.1 (the local stack allows http to
loopback, and nothing else private), registered through the API, gets a look's
notification signed with Standard Webhooks, retried with the same webhook-id until
it answers 2xx; the deliveries list every attempt. A private target is refused."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from standardwebhooks import Webhook
from tryon_local.driver import SAMPLES


class Receiver:
    """An HTTP endpoint on 127.0.0.1 answering `statuses` in turn (then 204),
    keeping each request's headers and body."""

    def __init__(self, *statuses: int) -> None:
        self.statuses, self.requests = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                          body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.requests

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    started = []

    def start(*statuses):
        started.append(Receiver(*statuses))
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


def client(stack, name: str) -> httpx.Client:
    return httpx.Client(base_url=stack.api_url, timeout=60, headers={
        "Authorization": f"Bearer {stack.create_api_key(name)}"})


def uploaded(http: httpx.Client, *names: str) -> list[str]:
    files = [{"name": name, "content_type": "image/jpeg",
              "size": (SAMPLES / name).stat().st_size} for name in names]
    forms = http.post("/uploads", json={"files": files}).raise_for_status().json()["uploads"]
    for form, name in zip(forms, names, strict=True):
        httpx.post(form["url"], data=form["fields"], files={"file": (
            name, (SAMPLES / name).read_bytes(), "image/jpeg")}).raise_for_status()
    return [form["key"] for form in forms]


def test_a_look_is_delivered_signed_and_retried_with_one_webhook_id(stack, receivers):
    http = client(stack, f"hooks-{uuid.uuid4().hex[:6]}")
    flaky, named = receivers(500, 500, 204), receivers()
    registered = http.post("/webhooks", json={"url": flaky.url, "events": ["job.succeeded"]})
    assert registered.status_code == 201, registered.text
    endpoint = registered.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"]
    # A second endpoint for job.failed only, which the look names: it gets this look's
    # notifications whatever its filter.
    other = http.post("/webhooks", json={"url": named.url, "events": ["job.failed"]}).json()
    assert "secret" not in http.get(f"/webhooks/{endpoint['id']}").json()
    assert {e["id"] for e in http.get("/webhooks").json()["webhooks"]} == {
        endpoint["id"], other["id"]}

    person, top = uploaded(http, "person.jpg", "top.jpg")
    accepted = http.post("/looks", json={"version": 1, "webhook": other["id"], "looks": [
        {"id": "hooked", "person": person, "top": top}]})
    assert accepted.status_code == 202, accepted.text
    [job_id] = accepted.json()["job_ids"]

    attempts = flaky.wait_for(3)
    assert len(attempts) == 3, attempts
    ids = {headers["webhook-id"] for headers, _ in attempts}
    assert len(ids) == 1, ids
    [delivery_id] = ids
    for headers, body in attempts:
        verified = Webhook(endpoint["secret"]).verify(body, headers)
        assert verified["event"] == "job.succeeded" and verified["job_id"] == job_id
    assert len({headers["webhook-timestamp"] + headers["webhook-signature"]
                for headers, _ in attempts}) == 3  # each attempt signed afresh

    deliveries = http.get(f"/webhooks/{endpoint['id']}/deliveries").json()["deliveries"]
    assert [(d["delivery_id"], d["attempt"], d["status_code"]) for d in deliveries] == [
        (delivery_id, 3, 204), (delivery_id, 2, 500), (delivery_id, 1, 500)]
    assert deliveries[0]["error"] is None and "500" in deliveries[1]["error"]
    print(f"\nwebhook-id {delivery_id}: statuses "
          f"{[d['status_code'] for d in reversed(deliveries)]}, verified with the secret")

    events = {json.loads(body)["event"]: headers for headers, body in named.wait_for(2)}
    assert set(events) == {"job.succeeded", "batch.completed"}
    for headers, body in named.requests:
        Webhook(other["secret"]).verify(body, headers)

    # Replayed: the same webhook-id once more.
    replayed = http.post(f"/webhooks/{endpoint['id']}/deliveries/{delivery_id}/replay")
    assert replayed.status_code == 202, replayed.text
    assert flaky.wait_for(4)[3][0]["webhook-id"] == delivery_id

    # An integration sees only its own endpoints.
    stranger = client(stack, f"stranger-{uuid.uuid4().hex[:6]}")
    for answer in (stranger.get(f"/webhooks/{endpoint['id']}"),
                   stranger.get(f"/webhooks/{endpoint['id']}/deliveries"),
                   stranger.post(f"/webhooks/{endpoint['id']}/rotate")):
        assert answer.status_code == 404 and answer.json()["code"] == "NoSuchWebhook"
    assert stranger.get("/webhooks").json() == {"webhooks": []}


def test_a_private_target_is_refused_at_registration(stack):
    http = client(stack, f"hooks-{uuid.uuid4().hex[:6]}")
    refused = http.post("/webhooks", json={"url": "https://10.0.0.1/hook"})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "WebhookTargetForbidden"
    assert "10.0.0.1" in problem["detail"] and "public addresses" in problem["detail"]
    print(f"\nrefused: {problem['detail']}")
    assert http.get("/webhooks").json() == {"webhooks": []}
