"""Webhooks, signed, per integration (README, "Webhooks"). An integration registers
https endpoints with an events filter; each of its notifications (the `owner`
attribute says whose) is POSTed to the endpoints that take its event, and to the
one its looks named, signed afresh on each attempt with Standard Webhooks
(`webhook-id` the same on every attempt of one delivery). A failed attempt is
tried again on RETRY_SECONDS (±10 % jitter); a 410, or the last retry failing,
disables the endpoint and tells the operator (`webhook.disabled`). Every attempt
is recorded. Hostile targets: the host is resolved and checked at registration
and at each attempt, and the request goes to the checked address.

Nothing here knows Lambda or HTTP frameworks: ports are passed in `Webhooks`, and
an API refusal is a `Problem`."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import math
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from tryon.jobs import NOTIFICATION_EVENTS
from tryon.stages.api_requests import Problem

EVENTS = (*NOTIFICATION_EVENTS.values(), "batch.completed")
RETRY_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 86400)  # after attempts 1, 2, ...
JITTER = 0.1
SECRET_OVERLAP_SECONDS = 24 * 3600  # a rotated-out secret keeps signing this long
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix Standard Webhooks secrets carry
ATTEMPT_TIMEOUT_SECONDS = 15.0
MAX_ENDPOINTS = 20  # per integration
MAX_URL_CHARS = 2000
MAX_ERROR_CHARS = 300

METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
TARGET_RULE = ("webhooks go only to https URLs whose host resolves to public addresses "
               "(not private, loopback, link-local, metadata, CGNAT, unspecified or "
               "multicast)")


@dataclass
class Webhooks:
    """What the webhook stages work with (tryon.wiring.webhook_context builds it)."""

    endpoints: Any  # tryon.adapters.webhooks.WebhookEndpoints
    deliveries: Any  # tryon.adapters.webhooks.WebhookDeliveries
    queue: Any  # tryon.adapters.webhooks.WebhookQueue: send(message, delay_seconds)
    sender: Any  # tryon.adapters.webhooks.WebhookSender: post(...) -> Answer
    notifier: Any  # ports.Notifications: the operator's webhook.disabled notice
    resolve: Callable[[str, int], list[str]] = field(default=lambda host, port: resolve(
        host, port))
    clock: Callable[[], float] = time.time
    allow_loopback: bool = False  # the local stack only: http on 127.0.0.1 is allowed
    retry_seconds: tuple[float, ...] = RETRY_SECONDS
    uniform: Callable[[float, float], float] = random.uniform
    count: Callable[[str], None] = field(default=lambda name: None)
    measure: Callable[[str, float], None] = field(default=lambda name, ms: None)
    log: Callable[[str, dict[str, Any]], None] = field(default=lambda message, extra: None)


# --- hostile targets -------------------------------------------------------------

class TargetForbidden(Exception):
    """A URL no attempt may go to: the address (or URL part) and the rule it breaks."""

    def __init__(self, what: str, rule: str) -> None:
        super().__init__(f"{what}: {rule}")
        self.what, self.rule = what, rule


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent
    address: str  # the checked IP the request connects to


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv6 scope ids dropped)."""
    return sorted({info[4][0].split("%", 1)[0] for info in
                   socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def address_refusal(address: str, allow_loopback: bool = False) -> str | None:
    """Why no webhook may go to `address` (None: it may). An IPv4-mapped IPv6 address
    is judged as the IPv4 address it maps."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in METADATA:
        return "the cloud metadata service"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    if ip in CGNAT:
        return "a shared (CGNAT, 100.64.0.0/10) address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "an address that is not globally routable"
    return None


def check_target(url: str, resolver: Callable[[str, int], list[str]],
                 allow_loopback: bool = False) -> Target:
    """Where an attempt to `url` may connect, or TargetForbidden: https only (http on
    loopback when the local stack allows it), and every address the host resolves
    to public."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - a malformed [IPv6] host raises here
    except ValueError:
        raise TargetForbidden(url[:100], "send an absolute https URL (" + TARGET_RULE + ")"
                              ) from None
    scheme = parts.scheme.lower()
    if len(url) > MAX_URL_CHARS or scheme not in ("https", "http") or not parts.hostname:
        raise TargetForbidden(url[:100], "send an absolute https URL (" + TARGET_RULE + ")")
    if parts.username is not None or parts.password is not None:
        raise TargetForbidden("the URL's user information",
                              "send the URL without user:password@ (the signature says "
                              "who sent a webhook)")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise TargetForbidden(parts.netloc, "the port is not a number from 0 to 65535") from None
    host = parts.hostname
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:  # IDNA refuses some names before any lookup
        reason = getattr(exc, "strerror", None) or exc
        raise TargetForbidden(host[:100], f"the host does not resolve ({reason}); register "
                              "a host with public DNS") from None
    if not addresses:
        raise TargetForbidden(host, "the host resolves to no address")
    for address in addresses:
        reason = address_refusal(address, allow_loopback)
        if reason:
            where = address if host == address else f"{host} resolves to {address}, which"
            raise TargetForbidden(f"{where} is {reason}", TARGET_RULE)
    if scheme == "http" and not (allow_loopback and all(
            ipaddress.ip_address(a).is_loopback for a in addresses)):
        raise TargetForbidden(f"{url[:100]} is plain http", TARGET_RULE)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, addresses[0])


# --- the API's side ----------------------------------------------------------------

def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def view(endpoint: dict[str, Any]) -> dict[str, Any]:
    """What its integration is shown of an endpoint: never a secret."""
    return {"id": endpoint["id"], "url": endpoint["url"], "events": endpoint.get("events"),
            "enabled": bool(endpoint.get("enabled")),
            "disabled_reason": endpoint.get("disabled_reason"),
            "created_at": endpoint.get("created_at"),
            "secret_rotated_at": endpoint.get("secret_rotated_at")}


def register(wh: Webhooks, integration: str, url: str, events: list[str] | None
             ) -> dict[str, Any]:
    """A new endpoint: its view and its secret, shown this once."""
    _checked(wh, url)
    if len(wh.endpoints.list(integration)) >= MAX_ENDPOINTS:
        raise Problem(409, "TooManyWebhooks", f"an integration has at most {MAX_ENDPOINTS} "
                      "webhook endpoints; delete one you no longer use (DELETE /v1/webhooks/"
                      "{id}) first")
    secret = new_secret()
    endpoint = {"id": "wh_" + secrets.token_hex(8), "url": url,
                "events": sorted(set(events)) if events else None, "enabled": True,
                "created_at": wh.clock(), "secrets": [{"secret": secret}]}
    wh.endpoints.put(integration, endpoint)
    return {**view(endpoint), "secret": secret}


def _checked(wh: Webhooks, url: str) -> Target:
    try:
        return check_target(url, wh.resolve, wh.allow_loopback)
    except TargetForbidden as exc:
        raise Problem(422, "WebhookTargetForbidden", f"{exc.what}: {exc.rule}") from None


def owned(wh: Webhooks, integration: str, endpoint_id: str) -> dict[str, Any]:
    endpoint = (wh.endpoints.get(integration, endpoint_id)
                if endpoint_id.replace("_", "").isalnum() else None)
    if endpoint is None:
        raise Problem(404, "NoSuchWebhook", f"no webhook endpoint {endpoint_id!r} of yours; "
                      "GET /v1/webhooks lists them")
    return endpoint


def list_endpoints(wh: Webhooks, integration: str) -> list[dict[str, Any]]:
    return [view(e) for e in sorted(wh.endpoints.list(integration),
                                    key=lambda e: e.get("created_at", 0))]


def delete(wh: Webhooks, integration: str, endpoint_id: str) -> dict[str, Any]:
    owned(wh, integration, endpoint_id)
    wh.endpoints.delete(integration, endpoint_id)
    return {"id": endpoint_id, "deleted": True}


def rotate(wh: Webhooks, integration: str, endpoint_id: str) -> dict[str, Any]:
    """A new secret, shown this once; the one it replaces keeps signing (every attempt
    carries both signatures) for SECRET_OVERLAP_SECONDS."""
    endpoint = owned(wh, integration, endpoint_id)
    now = wh.clock()
    until = now + SECRET_OVERLAP_SECONDS
    kept = [{**s, "until": s.get("until") or until} for s in live_secrets(endpoint, now)]
    secret = new_secret()
    updated = wh.endpoints.update(integration, endpoint_id, {
        "secrets": [*kept, {"secret": secret}], "secret_rotated_at": now})
    if updated is None:
        owned(wh, integration, endpoint_id)  # deleted meanwhile: 404
    return {**view(updated or endpoint), "secret": secret, "previous_secret_until": until}


def enable(wh: Webhooks, integration: str, endpoint_id: str) -> dict[str, Any]:
    endpoint = owned(wh, integration, endpoint_id)
    _checked(wh, endpoint["url"])
    updated = wh.endpoints.update(integration, endpoint_id, {
        "enabled": True, "disabled_reason": None, "disabled_at": None})
    return view(updated or endpoint)


def deliveries(wh: Webhooks, integration: str, endpoint_id: str, limit: int
               ) -> list[dict[str, Any]]:
    owned(wh, integration, endpoint_id)
    return [{k: attempt.get(k) for k in ("delivery_id", "event", "attempt", "status_code",
                                         "latency_ms", "error", "attempted_at")}
            for attempt in wh.deliveries.attempts(integration, endpoint_id, limit)]


def replay(wh: Webhooks, integration: str, endpoint_id: str, delivery_id: str
           ) -> dict[str, Any]:
    """The same message (the same webhook-id and body) queued again, from attempt 1."""
    endpoint = owned(wh, integration, endpoint_id)
    message = (wh.deliveries.message(integration, endpoint_id, delivery_id)
               if delivery_id.replace("_", "").isalnum() else None)
    if message is None:
        raise Problem(404, "NoSuchDelivery", f"no delivery {delivery_id!r} to this endpoint "
                      "in the last 30 days; GET its deliveries lists them")
    if not endpoint.get("enabled"):
        raise Problem(409, "WebhookDisabled", f"endpoint {endpoint_id} is disabled "
                      f"({endpoint.get('disabled_reason')}); enable it (POST /v1/webhooks/"
                      f"{endpoint_id}/enable) first")
    wh.queue.send(_attempt_message(integration, endpoint_id, delivery_id, message["event"], 1,
                                   wh.clock()))
    return {"delivery_id": delivery_id, "queued": True}


def named_endpoint(wh: Webhooks, integration: str, ref: str) -> str:
    """The id of the integration's endpoint a look's `webhook` names (its id or url)."""
    for endpoint in wh.endpoints.list(integration):
        if ref in (endpoint["id"], endpoint["url"]):
            return endpoint["id"]
    raise Problem(422, "NoSuchWebhook", f"the looks' webhook {ref[:100]!r} is not one of your "
                  "endpoints: register it first (POST /v1/webhooks) and name its id or url")


def with_named_webhook(wh: Webhooks, integration: str, manifest: dict[str, Any]
                       ) -> dict[str, Any]:
    """A look request's manifest with its `webhook` (an endpoint's id or url) taken out
    and carried as the `webhook` attribute (the endpoint's id) of its jobs and batch,
    whose notifications then go to that endpoint too."""
    if "webhook" not in manifest:
        return manifest
    manifest = dict(manifest)
    ref = manifest.pop("webhook")
    if not isinstance(ref, str):
        raise Problem(422, "InvalidRequest", "fix the request: webhook: name one of your "
                      "endpoints by its id or url (a string)")
    attributes = manifest.get("attributes")
    manifest["attributes"] = {**(attributes if isinstance(attributes, dict) else {}),
                              "webhook": named_endpoint(wh, integration, ref)}
    return manifest


# --- delivery ------------------------------------------------------------------------

def delivery_id_for(notification_id: str, endpoint_id: str) -> str:
    """The webhook-id: the same for every attempt (and SNS redelivery) of one message."""
    return "msg_" + hashlib.sha256(f"{notification_id}\n{endpoint_id}".encode()).hexdigest()[:26]


def takes(endpoint: dict[str, Any], event: str, named: str | None) -> bool:
    """Whether an endpoint gets a notification: enabled, and its events filter takes
    the event (all when it has none), or the look named it."""
    if not endpoint.get("enabled"):
        return False
    return endpoint["id"] == named or not endpoint.get("events") or event in endpoint["events"]


def fan_out(wh: Webhooks, notification_id: str, body: str, attributes: dict[str, str]
            ) -> list[str]:
    """A notification of `attributes["owner"]`: one delivery per endpoint that takes it,
    each recorded and queued for its first attempt. Returns the delivery ids."""
    owner = attributes.get("owner")
    event = attributes.get("event") or json.loads(body).get("event", "")
    if not owner or event not in EVENTS:
        return []
    now = wh.clock()
    queued = []
    for endpoint in wh.endpoints.list(owner):
        if not takes(endpoint, event, attributes.get("webhook")):
            continue
        delivery_id = delivery_id_for(notification_id, endpoint["id"])
        # Recorded, queued, then marked queued: a failure in between leaves it to
        # SNS's redelivery of the notification, which queues it then.
        if wh.deliveries.record_message(owner, endpoint["id"], delivery_id, event, body, now):
            wh.queue.send(_attempt_message(owner, endpoint["id"], delivery_id, event, 1, now))
            wh.deliveries.mark_queued(owner, endpoint["id"], delivery_id)
        queued.append(delivery_id)
    return queued


def _attempt_message(integration: str, endpoint_id: str, delivery_id: str, event: str,
                     attempt: int, not_before: float) -> dict[str, Any]:
    return {"webhook_attempt": {"integration": integration, "endpoint": endpoint_id,
                                "delivery_id": delivery_id, "event": event,
                                "attempt": attempt, "not_before": not_before}}


def retry_delay(attempt: int, schedule: tuple[float, ...],
                uniform: Callable[[float, float], float] = random.uniform) -> float | None:
    """Seconds before the attempt after `attempt` (1-based), jittered ±JITTER; None
    when `attempt` was the last."""
    if attempt > len(schedule):
        return None
    base = schedule[attempt - 1]
    return base * uniform(1 - JITTER, 1 + JITTER)


def live_secrets(endpoint: dict[str, Any], now: float) -> list[dict[str, Any]]:
    return [s for s in endpoint.get("secrets", []) if not s.get("until") or s["until"] > now]


def sign(endpoint: dict[str, Any], delivery_id: str, timestamp: int, body: str,
         now: float) -> str:
    """The webhook-signature header: one `v1,` signature per live secret."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(s["secret"]).sign(delivery_id, when, body)
                    for s in live_secrets(endpoint, now))


def attempt(wh: Webhooks, message: dict[str, Any]) -> str:
    """One attempt of a delivery (a `webhook_attempt` message): what became of it,
    "waiting", "skipped", "delivered", "retrying" or "disabled"."""
    integration, endpoint_id = message["integration"], message["endpoint"]
    delivery_id, number = message["delivery_id"], int(message["attempt"])
    now = wh.clock()
    if message["not_before"] - now > 1:  # past SQS's 15 min delay: wait on
        wh.queue.send({"webhook_attempt": message}, math.ceil(message["not_before"] - now))
        return "waiting"
    endpoint = wh.endpoints.get(integration, endpoint_id)
    recorded = wh.deliveries.message(integration, endpoint_id, delivery_id)
    if endpoint is None or not endpoint.get("enabled") or recorded is None:
        wh.log("webhook attempt skipped", {"integration": integration, "webhook": endpoint_id,
                                           "delivery_id": delivery_id,
                                           "reason": "endpoint deleted or disabled"
                                           if recorded else "message expired"})
        return "skipped"
    body = recorded["body"]
    timestamp = int(now)
    headers = {"content-type": "application/json", "user-agent": "tryon-webhooks/1",
               "webhook-id": delivery_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(endpoint, delivery_id, timestamp, body, now)}
    try:
        target = check_target(endpoint["url"], wh.resolve, wh.allow_loopback)
    except TargetForbidden as exc:
        status, latency, error = None, 0.0, f"refused: {exc.what}"
    else:
        answer = wh.sender.post(target.scheme, target.host, target.address, target.port,
                                target.path, headers, body.encode())
        status, latency, error = answer.status, answer.latency_ms, answer.error
        if error is None and not 200 <= answer.status < 300:
            error = f"answered {answer.status}" + (
                " (redirects are not followed)" if 300 <= answer.status < 400 else "")
    wh.deliveries.record_attempt(integration, endpoint_id, {
        "delivery_id": delivery_id, "event": message["event"], "attempt": number,
        "status_code": status, "latency_ms": latency,
        "error": error[:MAX_ERROR_CHARS] if error else None, "attempted_at": now})
    wh.count("WebhookAttempts")
    wh.measure("WebhookLatency", latency)
    wh.log("webhook attempt", {"integration": integration, "webhook": endpoint_id,
                               "delivery_id": delivery_id, "attempt": number,
                               "status_code": status, "latency_ms": latency, "error": error})
    if error is None:
        wh.count("WebhooksDelivered")
        return "delivered"
    wh.count("WebhookFailures")
    if status == 410:
        disable(wh, integration, endpoint, "the endpoint answered 410 Gone")
        return "disabled"
    delay = retry_delay(number, wh.retry_seconds, wh.uniform)
    if delay is None:
        disable(wh, integration, endpoint, f"{number} attempts of delivery {delivery_id} "
                f"failed over {sum(wh.retry_seconds):g} s (the last: {error[:100]})")
        return "disabled"
    wh.queue.send(_attempt_message(integration, endpoint_id, delivery_id, message["event"],
                                   number + 1, now + delay), math.ceil(delay))
    return "retrying"


def disable(wh: Webhooks, integration: str, endpoint: dict[str, Any], reason: str) -> None:
    """Off until its integration enables it again; the operator is told (without an
    `owner` attribute, so the notice never comes back to the webhooks)."""
    now = wh.clock()
    wh.endpoints.update(integration, endpoint["id"], {
        "enabled": False, "disabled_reason": reason, "disabled_at": now})
    wh.count("WebhooksDisabled")
    parts = urlsplit(endpoint["url"])  # no query: it may carry the receiver's own token
    wh.notifier.publish({
        "schema": "tryon.notification/1", "event": "webhook.disabled",
        "integration": integration, "webhook_id": endpoint["id"],
        "url": f"{parts.scheme}://{parts.netloc}{parts.path}", "reason": reason,
        "disabled_at": now,
        "message": f"webhook endpoint {endpoint['id']} of integration {integration!r} is "
                   f"disabled: {reason}. Its integration re-enables it with POST "
                   f"/v1/webhooks/{endpoint['id']}/enable"}, {"event": "webhook.disabled"})
