"""Webhooks over in-memory fakes (tryon.stages.webhooks): hostile targets refused at
registration and at each attempt, Standard Webhooks signatures (both secrets while a
rotation overlaps), the retry schedule and its jitter, disabling on 410 and after
the last retry, the events filter, and no secret in what is recorded or logged. The
HTTP sender (tryon.adapters.webhooks) on httpx's mock transport: the checked
address, no redirects, a bounded answer."""

import ipaddress
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks import Webhook
from tryon.adapters.webhooks import MAX_ANSWER_BYTES, Answer, WebhookSender
from tryon.stages import webhooks
from tryon.stages.api_requests import Problem
from tryon.stages.webhooks import (
    RETRY_SECONDS,
    SECRET_OVERLAP_SECONDS,
    TargetForbidden,
    Webhooks,
    address_refusal,
    check_target,
    retry_delay,
)

PUBLIC = "93.184.215.14"


class FakeEndpoints:
    def __init__(self):
        self.items = {}

    def put(self, integration, endpoint):
        self.items[(integration, endpoint["id"])] = json.loads(json.dumps(endpoint))

    def get(self, integration, endpoint_id):
        item = self.items.get((integration, endpoint_id))
        return json.loads(json.dumps(item)) if item else None

    def list(self, integration):
        return [self.get(i, e) for (i, e) in list(self.items) if i == integration]

    def update(self, integration, endpoint_id, fields):
        item = self.items.get((integration, endpoint_id))
        if item is None:
            return None
        for key, value in fields.items():
            if value is None:
                item.pop(key, None)
            else:
                item[key] = json.loads(json.dumps(value))
        return self.get(integration, endpoint_id)

    def delete(self, integration, endpoint_id):
        return self.items.pop((integration, endpoint_id), None) is not None


class FakeDeliveries:
    def __init__(self):
        self.messages, self.attempt_items = {}, []

    def record_message(self, integration, endpoint_id, delivery_id, event, body, now):
        key = (integration, endpoint_id, delivery_id)
        if self.messages.get(key, {}).get("queued"):
            return False
        self.messages[key] = {"delivery_id": delivery_id, "event": event, "body": body}
        return True

    def mark_queued(self, integration, endpoint_id, delivery_id):
        self.messages[(integration, endpoint_id, delivery_id)]["queued"] = True

    def message(self, integration, endpoint_id, delivery_id):
        return self.messages.get((integration, endpoint_id, delivery_id))

    def record_attempt(self, integration, endpoint_id, attempt):
        self.attempt_items.append({"integration": integration, "endpoint": endpoint_id,
                                   **attempt})

    def attempts(self, integration, endpoint_id, limit):
        mine = [a for a in self.attempt_items
                if (a["integration"], a["endpoint"]) == (integration, endpoint_id)]
        return sorted(mine, key=lambda a: a["attempted_at"], reverse=True)[:limit]


class FakeQueue:
    def __init__(self):
        self.sent = []

    def send(self, message, delay_seconds=0):
        self.sent.append((message, delay_seconds))

    def take(self):
        message, _ = self.sent.pop(0)
        return message["webhook_attempt"]


class FakeSender:
    """Answers with `statuses` in turn, keeping what each request was."""

    def __init__(self, *statuses):
        self.statuses, self.requests = list(statuses), []

    def post(self, scheme, host, address, port, path, headers, body):
        self.requests.append({"scheme": scheme, "host": host, "address": address,
                              "port": port, "path": path, "headers": headers, "body": body})
        return Answer(self.statuses.pop(0) if self.statuses else 204, 12.5)


class FakeNotifier:
    def __init__(self):
        self.published = []

    def publish(self, body, attributes):
        self.published.append((body, attributes))
        return "id"


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


def resolver(table):
    def resolve(host, port):
        try:  # an address resolves to itself, as with getaddrinfo
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]
    return resolve


@pytest.fixture
def wh():
    logs = []
    hooks = Webhooks(endpoints=FakeEndpoints(), deliveries=FakeDeliveries(), queue=FakeQueue(),
                     sender=FakeSender(), notifier=FakeNotifier(),
                     resolve=resolver({"hooks.example.com": [PUBLIC],
                                       "inside.example.com": ["10.1.2.3"]}),
                     clock=Clock(), uniform=lambda low, high: 1.0,
                     log=lambda message, extra: logs.append((message, extra)))
    hooks.logs = logs
    return hooks


def notify(wh, event="job.succeeded", owner="acme", sns_id="sns-1", **attributes):
    body = json.dumps({"schema": "tryon.notification/1", "event": event, "owner": owner})
    return webhooks.fan_out(wh, sns_id, body, {"event": event, "owner": owner, **attributes})


def run_queue(wh):
    """Take every queued attempt (as the delivery function would), in turn."""
    outcomes = []
    while wh.queue.sent:
        message = wh.queue.take()
        wh.clock.now = max(wh.clock.now, message["not_before"])
        outcomes.append(webhooks.attempt(wh, message))
    return outcomes


# --- hostile targets ---------------------------------------------------------------

@pytest.mark.parametrize("address, reason", [
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"), ("169.254.10.1", "link-local"), ("fe80::1", "link-local"),
    ("100.64.0.1", "CGNAT"), ("100.127.255.254", "CGNAT"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("fc00::1", "private"), ("::ffff:10.0.0.1", "private"), ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
])
def test_addresses_no_webhook_may_go_to(address, reason):
    assert reason in address_refusal(address)


@pytest.mark.parametrize("address", [PUBLIC, "2606:4700::6810:84e5", "::ffff:93.184.215.14"])
def test_public_addresses_are_allowed(address):
    assert address_refusal(address) is None


def test_loopback_only_when_the_local_stack_allows_it_and_nothing_else_with_it():
    assert address_refusal("127.0.0.1", allow_loopback=True) is None
    assert "private" in address_refusal("10.0.0.1", allow_loopback=True)
    local = resolver({"127.0.0.1": ["127.0.0.1"], "hooks.example.com": [PUBLIC]})
    assert check_target("http://127.0.0.1:8080/hook", local, True).address == "127.0.0.1"
    with pytest.raises(TargetForbidden, match="loopback"):
        check_target("http://127.0.0.1:8080/hook", local, False)
    with pytest.raises(TargetForbidden, match="plain http"):  # http to a public host: never
        check_target("http://hooks.example.com/hook", local, True)


def test_a_target_is_refused_if_any_address_its_host_resolves_to_is():
    both = resolver({"rebind.example.com": [PUBLIC, "10.0.0.7"]})
    with pytest.raises(TargetForbidden, match=r"to 10\.0\.0\.7, which is a private address"):
        check_target("https://rebind.example.com/x", both)


@pytest.mark.parametrize("url, match", [
    ("ftp://hooks.example.com/x", "https"), ("hooks.example.com/x", "https"),
    ("https://user:pw@hooks.example.com/x", "user"), ("https://nowhere.example/x", "resolve"),
    ("https://hooks.example.com:99999/x", "port"),
])
def test_malformed_or_unresolvable_urls_are_refused(url, match):
    with pytest.raises(TargetForbidden, match=match):
        check_target(url, resolver({"hooks.example.com": [PUBLIC]}))


@pytest.mark.parametrize("url", ["https://[::1/x", "https://" + "a" * 70 + ".example.com/",
                                 "https://xn--/x", "https://.."])
def test_urls_the_real_resolver_cannot_take_are_refused_not_failed(url):
    with pytest.raises(TargetForbidden):
        check_target(url, webhooks.resolve)


def test_the_checked_target_keeps_the_host_for_host_header_and_sni():
    target = check_target("https://hooks.example.com:8443/in?x=1",
                          resolver({"hooks.example.com": [PUBLIC]}))
    assert (target.host, target.address, target.port, target.path) == (
        "hooks.example.com", PUBLIC, 8443, "/in?x=1")


def test_registration_refuses_a_private_target_naming_address_and_rule(wh):
    with pytest.raises(Problem) as refused:
        webhooks.register(wh, "acme", "https://inside.example.com/hook", None)
    assert (refused.value.status, refused.value.code) == (422, "WebhookTargetForbidden")
    assert "10.1.2.3" in refused.value.message and "public addresses" in refused.value.message
    with pytest.raises(Problem, match=r"^10\.0\.0\.1 is a private address"):
        webhooks.register(wh, "acme", "https://10.0.0.1/hook", None)
    assert wh.endpoints.items == {}


def test_an_attempt_checks_the_target_again_and_records_the_refusal(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    wh.resolve = resolver({"hooks.example.com": ["169.254.169.254"]})  # DNS changed since
    notify(wh)
    assert webhooks.attempt(wh, wh.queue.take()) == "retrying"
    assert wh.sender.requests == []
    [item] = wh.deliveries.attempts("acme", created["id"], 10)
    assert item["status_code"] is None and "metadata" in item["error"]


# --- signing, filtering, retries ----------------------------------------------------

def test_a_delivery_is_signed_with_standard_webhooks_and_keeps_its_id(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    assert created["secret"].startswith("whsec_")
    wh.sender = FakeSender(500, 503, 204)
    [delivery_id] = notify(wh)
    assert run_queue(wh) == ["retrying", "retrying", "delivered"]
    ids = {r["headers"]["webhook-id"] for r in wh.sender.requests}
    assert ids == {delivery_id} and delivery_id.startswith("msg_")
    for request in wh.sender.requests:
        assert request["address"] == PUBLIC and request["host"] == "hooks.example.com"
        when = int(request["headers"]["webhook-timestamp"])
        expected = Webhook(created["secret"]).sign(delivery_id, datetime.fromtimestamp(
            when, tz=UTC), request["body"].decode())
        assert request["headers"]["webhook-signature"] == expected
    # Each attempt signed afresh: its own timestamp.
    assert len({r["headers"]["webhook-timestamp"] for r in wh.sender.requests}) == 3
    listed = webhooks.deliveries(wh, "acme", created["id"], 10)
    assert [d["status_code"] for d in listed] == [204, 503, 500]  # newest first
    assert [d["attempt"] for d in listed] == [3, 2, 1]


def test_the_same_notification_delivered_twice_by_sns_is_sent_once(wh):
    webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    first, again = notify(wh, sns_id="same"), notify(wh, sns_id="same")
    assert first == again and len(wh.queue.sent) == 1


def test_a_fan_out_that_failed_before_queueing_is_queued_when_sns_delivers_again(wh):
    webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    queue = wh.queue

    class Unreachable:
        def send(self, message, delay_seconds=0):
            raise ConnectionError("sqs unreachable")

    wh.queue = Unreachable()
    with pytest.raises(ConnectionError):
        notify(wh, sns_id="retried")
    wh.queue = queue
    [delivery_id] = notify(wh, sns_id="retried")
    assert [m["webhook_attempt"]["delivery_id"] for m, _ in queue.sent] == [delivery_id]


def test_the_events_filter_and_the_looks_named_endpoint(wh):
    only_failed = webhooks.register(wh, "acme", "https://hooks.example.com/a", ["job.failed"])
    every = webhooks.register(wh, "acme", "https://hooks.example.com/b", None)
    named = webhooks.register(wh, "acme", "https://hooks.example.com/c", ["batch.completed"])
    webhooks.register(wh, "other", "https://hooks.example.com/d", None)

    def endpoints_of(ids):
        return {m["webhook_attempt"]["endpoint"] for m, _ in wh.queue.sent[-len(ids):]}

    assert endpoints_of(notify(wh, "job.failed", sns_id="1")) == {only_failed["id"],
                                                                   every["id"]}
    assert endpoints_of(notify(wh, "job.succeeded", sns_id="2")) == {every["id"]}
    assert endpoints_of(notify(wh, "job.succeeded", sns_id="3", webhook=named["id"])) == {
        every["id"], named["id"]}
    assert notify(wh, "budget.reached", sns_id="4") == []  # not an integration's event
    assert notify(wh, owner="", sns_id="5") == []


def test_a_look_names_an_endpoint_by_id_or_url_and_only_its_own(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    for ref in (created["id"], created["url"]):
        manifest = webhooks.with_named_webhook(wh, "acme", {"version": 1, "looks": [],
                                                            "webhook": ref})
        assert manifest == {"version": 1, "looks": [], "attributes": {"webhook": created["id"]}}
    with pytest.raises(Problem) as refused:
        webhooks.with_named_webhook(wh, "other", {"version": 1, "webhook": created["id"]})
    assert (refused.value.status, refused.value.code) == (422, "NoSuchWebhook")


def test_the_retry_schedule_lasts_over_a_day_with_bounded_jitter():
    assert RETRY_SECONDS == (5, 300, 1800, 7200, 18000, 36000, 86400)
    assert sum(RETRY_SECONDS) > 86400
    for attempt, base in enumerate(RETRY_SECONDS, start=1):
        assert retry_delay(attempt, RETRY_SECONDS, lambda lo, hi: lo) == pytest.approx(base * 0.9)
        assert retry_delay(attempt, RETRY_SECONDS, lambda lo, hi: hi) == pytest.approx(base * 1.1)
        delay = retry_delay(attempt, RETRY_SECONDS)  # the real random source
        assert base * 0.9 <= delay <= base * 1.1
    assert retry_delay(len(RETRY_SECONDS) + 1, RETRY_SECONDS) is None


def test_a_long_wait_is_resent_past_sqs_limits_until_its_time(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    message = {"integration": "acme", "endpoint": created["id"], "delivery_id": "msg_x",
               "event": "job.succeeded", "attempt": 4, "not_before": wh.clock.now + 7200}
    assert webhooks.attempt(wh, message) == "waiting"
    [(resent, delay)] = wh.queue.sent
    assert resent == {"webhook_attempt": message} and delay == 7200  # the queue caps at 900
    assert wh.sender.requests == []


def test_a_410_disables_the_endpoint_at_once_and_tells_the_operator(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    wh.sender = FakeSender(410)
    notify(wh)
    assert run_queue(wh) == ["disabled"]
    endpoint = wh.endpoints.get("acme", created["id"])
    assert endpoint["enabled"] is False and "410" in endpoint["disabled_reason"]
    [(notice, attributes)] = wh.notifier.published
    assert notice["event"] == "webhook.disabled" and notice["webhook_id"] == created["id"]
    assert attributes == {"event": "webhook.disabled"}  # no owner: never a webhook itself
    # Disabled: a later notification is not sent, until its integration enables it.
    assert notify(wh, sns_id="later") == []
    webhooks.enable(wh, "acme", created["id"])
    assert len(notify(wh, sns_id="after")) == 1


def test_the_last_retry_failing_disables_the_endpoint(wh):
    wh.retry_seconds = (5, 300)
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    wh.sender = FakeSender(500, 500, 500)
    notify(wh)
    assert run_queue(wh) == ["retrying", "retrying", "disabled"]
    assert [d for _, d in wh.queue.sent] == []
    assert wh.endpoints.get("acme", created["id"])["enabled"] is False
    [(notice, attributes)] = wh.notifier.published
    assert "3 attempts" in notice["reason"] and "owner" not in attributes


def test_rotation_signs_with_both_secrets_for_a_day(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    rotated = webhooks.rotate(wh, "acme", created["id"])
    assert rotated["secret"] != created["secret"]
    assert rotated["previous_secret_until"] == wh.clock.now + SECRET_OVERLAP_SECONDS

    def deliver(sns_id):
        wh.sender = FakeSender(204)
        notify(wh, sns_id=sns_id)
        run_queue(wh)
        [request] = wh.sender.requests
        return request["body"].decode(), request["headers"]

    body, headers = deliver("during")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (created["secret"], rotated["secret"]):  # the clock is real time here
        assert Webhook(secret).verify(body, headers)["event"] == "job.succeeded"
    wh.clock.now += SECRET_OVERLAP_SECONDS + 1
    body, headers = deliver("after")
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert _signed_by(rotated["secret"], body, headers)
    assert not _signed_by(created["secret"], body, headers)


def _signed_by(secret, body, headers):
    """Whether one of the signatures is `secret`'s (standardwebhooks' verify would
    also check the timestamp against the real clock, a day behind this one)."""
    when = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    return Webhook(secret).sign(headers["webhook-id"], when, body) in (
        headers["webhook-signature"].split(" "))


def test_secrets_are_shown_once_and_never_recorded_or_logged(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    rotated = webhooks.rotate(wh, "acme", created["id"])
    wh.sender = FakeSender(500, 204)
    notify(wh)
    run_queue(wh)
    webhooks.replay(wh, "acme", created["id"], wh.deliveries.attempt_items[0]["delivery_id"])
    run_queue(wh)
    shown = json.dumps([webhooks.list_endpoints(wh, "acme"),
                        webhooks.view(wh.endpoints.get("acme", created["id"])),
                        webhooks.deliveries(wh, "acme", created["id"], 50),
                        wh.deliveries.attempt_items, list(wh.deliveries.messages.values()),
                        wh.logs, [m for m, _ in wh.queue.sent]])
    for secret in (created["secret"], rotated["secret"]):
        assert secret not in shown and secret.removeprefix("whsec_") not in shown
    assert len(wh.deliveries.attempt_items) == 3 and wh.logs


def test_an_integration_sees_only_its_own_endpoints(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    for call in (webhooks.owned, webhooks.delete, webhooks.rotate, webhooks.enable):
        with pytest.raises(Problem) as refused:
            call(wh, "other", created["id"])
        assert refused.value.status == 404
    with pytest.raises(Problem, match="no webhook endpoint"):
        webhooks.deliveries(wh, "other", created["id"], 10)
    assert webhooks.list_endpoints(wh, "other") == []
    assert webhooks.delete(wh, "acme", created["id"]) == {"id": created["id"], "deleted": True}
    assert webhooks.list_endpoints(wh, "acme") == []


def test_a_replay_queues_the_same_webhook_id_and_refuses_a_disabled_endpoint(wh):
    created = webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    [delivery_id] = notify(wh)
    run_queue(wh)
    assert webhooks.replay(wh, "acme", created["id"], delivery_id)["queued"]
    run_queue(wh)
    assert [r["headers"]["webhook-id"] for r in wh.sender.requests] == [delivery_id] * 2
    with pytest.raises(Problem) as refused:
        webhooks.replay(wh, "acme", created["id"], "msg_unknown")
    assert refused.value.status == 404
    wh.endpoints.update("acme", created["id"], {"enabled": False, "disabled_reason": "x"})
    with pytest.raises(Problem) as refused:
        webhooks.replay(wh, "acme", created["id"], delivery_id)
    assert (refused.value.status, refused.value.code) == (409, "WebhookDisabled")


# --- the HTTP sender ------------------------------------------------------------------

def test_the_sender_connects_to_the_checked_address_with_host_and_sni():
    seen = []

    def answer(request):
        seen.append(request)
        return httpx.Response(204)

    sender = WebhookSender(transport=httpx.MockTransport(answer))
    result = sender.post("https", "hooks.example.com", "2606:4700::1", 443, "/in?x=1",
                         {"webhook-id": "msg_1"}, b"{}")
    [request] = seen
    assert str(request.url) == "https://[2606:4700::1]/in?x=1"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert result.status == 204 and result.error is None and result.latency_ms >= 0
    sender.post("http", "localhost", "127.0.0.1", 8080, "/", {}, b"{}")
    assert seen[1].headers["host"] == "localhost:8080" and "sni_hostname" not in seen[1].extensions


def test_the_sender_follows_no_redirect_and_reads_a_bounded_answer():
    seen = []

    def answer(request):
        seen.append(request.url.path)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/"})
        return httpx.Response(500, content=b"x" * (MAX_ANSWER_BYTES * 10))

    sender = WebhookSender(transport=httpx.MockTransport(answer))
    moved = sender.post("https", "h.example.com", PUBLIC, 443, "/moved", {}, b"{}")
    assert moved.status == 302 and seen == ["/moved"]  # the location never asked
    big = sender.post("https", "h.example.com", PUBLIC, 443, "/big", {}, b"{}")
    assert big.status == 500 and len(big.body) == MAX_ANSWER_BYTES


def test_a_redirect_is_a_failed_attempt(wh):
    webhooks.register(wh, "acme", "https://hooks.example.com/hook", None)
    wh.sender = FakeSender(301)
    notify(wh)
    assert run_queue(wh)[0] == "retrying"
    assert "redirects are not followed" in wh.deliveries.attempt_items[0]["error"]


def test_the_sender_stops_reading_a_slow_answer_at_its_timeout():
    def dripping():
        for _ in range(100):
            time.sleep(0.02)
            yield b"x"

    sender = WebhookSender(timeout=0.1, transport=httpx.MockTransport(
        lambda request: httpx.Response(200, content=dripping())))
    started = time.monotonic()
    answer = sender.post("https", "h.example.com", PUBLIC, 443, "/", {}, b"{}")
    assert answer.status == 200 and len(answer.body) < 20
    assert time.monotonic() - started < 1


def test_the_sender_reports_a_timeout_or_a_refused_connection_as_no_answer():
    def timeout(request):
        raise httpx.ReadTimeout("slow", request=request)

    answer = WebhookSender(timeout=15, transport=httpx.MockTransport(timeout)).post(
        "https", "h.example.com", PUBLIC, 443, "/", {}, b"{}")
    assert answer.status is None and answer.error == "no answer within 15 s"

    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    answer = WebhookSender(transport=httpx.MockTransport(refused)).post(
        "https", "h.example.com", PUBLIC, 443, "/", {}, b"{}")
    assert answer.status is None and answer.error.startswith("ConnectError")


# --- the stores: the DynamoDB adapters and the fakes above, held to one behaviour ------

@pytest.fixture(params=["dynamodb", "fake"])
def stores(request):
    if request.param == "fake":
        return FakeEndpoints(), FakeDeliveries()
    import boto3
    from tryon.adapters.webhooks import WebhookDeliveries, WebhookEndpoints

    request.getfixturevalue("moto_stages")
    dynamodb = boto3.resource("dynamodb")
    return WebhookEndpoints("credentials", dynamodb), WebhookDeliveries("jobs", dynamodb)


def test_endpoints_are_kept_per_integration_and_updated_in_place(stores):
    endpoints, _ = stores
    endpoint = {"id": "wh_1", "url": "https://h.example.com/", "events": ["job.failed"],
                "enabled": True, "created_at": 1.5, "secrets": [{"secret": "whsec_a"}]}
    endpoints.put("acme", endpoint)
    endpoints.put("acme", {**endpoint, "id": "wh_2", "events": None})
    endpoints.put("other", {**endpoint, "id": "wh_3"})
    assert endpoints.get("acme", "wh_1") == endpoint
    assert endpoints.get("other", "wh_1") is None
    assert sorted(e["id"] for e in endpoints.list("acme")) == ["wh_1", "wh_2"]
    assert endpoints.get("acme", "wh_2").get("events") is None
    updated = endpoints.update("acme", "wh_1", {"enabled": False, "disabled_reason": "gone",
                                                "events": None})
    assert updated["enabled"] is False and updated["disabled_reason"] == "gone"
    assert "events" not in updated and updated["secrets"] == [{"secret": "whsec_a"}]
    assert endpoints.update("acme", "wh_9", {"enabled": True}) is None
    assert endpoints.get("acme", "wh_9") is None  # an update never creates one
    assert endpoints.delete("acme", "wh_1") and not endpoints.delete("acme", "wh_1")
    assert [e["id"] for e in endpoints.list("acme")] == ["wh_2"]


def test_deliveries_record_a_message_once_queued_and_list_attempts_newest_first(stores):
    _, deliveries = stores
    assert deliveries.record_message("acme", "wh_1", "msg_a", "job.succeeded", '{"x": 1}', 10.0)
    assert deliveries.record_message("acme", "wh_1", "msg_a", "job.succeeded", '{"x": 1}', 10.0)
    deliveries.mark_queued("acme", "wh_1", "msg_a")
    assert not deliveries.record_message("acme", "wh_1", "msg_a", "job.succeeded", "{}", 11.0)
    message = deliveries.message("acme", "wh_1", "msg_a")
    assert message["body"] == '{"x": 1}' and message["event"] == "job.succeeded"
    assert deliveries.message("acme", "wh_2", "msg_a") is None
    for number, (status, at) in enumerate([(500, 20.0), (503, 25.5), (204, 31.25)], start=1):
        deliveries.record_attempt("acme", "wh_1", {
            "delivery_id": "msg_a", "event": "job.succeeded", "attempt": number,
            "status_code": status, "latency_ms": 3.5, "error": None if status == 204 else
            f"answered {status}", "attempted_at": at})
    listed = deliveries.attempts("acme", "wh_1", 2)
    assert [(a["attempt"], a["status_code"]) for a in listed] == [(3, 204), (2, 503)]
    assert listed[0].get("error") is None and listed[0]["latency_ms"] == 3.5
    assert deliveries.attempts("acme", "wh_2", 10) == []
