"""Adapters of the webhooks: an integration's endpoints and their signing secrets
(items of the credentials table, next to its keys), the record of every delivery
attempt (items of the jobs table, kept 30 days), the queue attempts wait in, and
the one HTTP POST an attempt makes (to an address checked beforehand)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from tryon.adapters.dynamo import from_dynamo, is_condition_failure, to_dynamo

ENDPOINT_PK = "WHSECRET#"  # + integration; sk: the endpoint's id (one Query lists them)
DELIVERY_PK = "WHDELIVERY#"  # + integration#endpoint; sk: MSG#<id> or ATTEMPT#<time>#<id>
MESSAGE_SK, ATTEMPT_SK = "MSG#", "ATTEMPT#"
DELIVERY_TTL_SECONDS = 30 * 24 * 3600
MAX_ANSWER_BYTES = 4096  # of an endpoint's answer body, the rest never read


class WebhookEndpoints:
    """pk WHSECRET#<integration>, sk <endpoint id>: url, events, enabled, secrets."""

    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self._table = (dynamodb or boto3.resource("dynamodb")).Table(table_name)

    def put(self, integration: str, endpoint: dict[str, Any]) -> None:
        self._table.put_item(Item=to_dynamo({"pk": ENDPOINT_PK + integration,
                                             "sk": endpoint["id"], **endpoint}))

    def get(self, integration: str, endpoint_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"pk": ENDPOINT_PK + integration, "sk": endpoint_id},
                                    ConsistentRead=True).get("Item")
        return _endpoint(item) if item else None

    def list(self, integration: str) -> list[dict[str, Any]]:
        items, start = [], None
        while True:
            page = self._table.query(
                KeyConditionExpression=Key("pk").eq(ENDPOINT_PK + integration),
                ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return [_endpoint(item) for item in items]

    def update(self, integration: str, endpoint_id: str, fields: dict[str, Any]
               ) -> dict[str, Any] | None:
        """Set `fields` (None removes one) on an endpoint that exists; its new state,
        or None when there is no such endpoint."""
        sets = {k: v for k, v in fields.items() if v is not None}
        removes = [k for k, v in fields.items() if v is None]
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        by_name = {k: n for n, k in names.items()}
        expression = ("SET " + ", ".join(f"{by_name[k]} = :v{i}" for i, k in enumerate(sets))
                      if sets else "")
        if removes:
            expression += " REMOVE " + ", ".join(by_name[k] for k in removes)
        try:
            answer = self._table.update_item(
                Key={"pk": ENDPOINT_PK + integration, "sk": endpoint_id},
                UpdateExpression=expression.strip(), ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                **({"ExpressionAttributeValues": {f":v{i}": to_dynamo(v) for i, v in
                                                  enumerate(sets.values())}} if sets else {}),
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return _endpoint(answer["Attributes"])

    def forget(self, integration: str) -> int:
        """Delete every endpoint of the integration, secrets and all (erasure with its
        keys). Returns how many."""
        endpoints = self.list(integration)
        for endpoint in endpoints:
            self.delete(integration, endpoint["id"])
        return len(endpoints)

    def delete(self, integration: str, endpoint_id: str) -> bool:
        old = self._table.delete_item(Key={"pk": ENDPOINT_PK + integration, "sk": endpoint_id},
                                      ReturnValues="ALL_OLD").get("Attributes")
        return old is not None


def _endpoint(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in from_dynamo(item).items() if k not in ("pk", "sk")}


class WebhookDeliveries:
    """pk WHDELIVERY#<integration>#<endpoint>: one MSG#<delivery id> item per message
    (its event and the exact body every attempt signs), one ATTEMPT# item per attempt
    (newest last in the sort key). Never a secret or a header."""

    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self._table = (dynamodb or boto3.resource("dynamodb")).Table(table_name)

    @staticmethod
    def _pk(integration: str, endpoint_id: str) -> str:
        return f"{DELIVERY_PK}{integration}#{endpoint_id}"

    def record_message(self, integration: str, endpoint_id: str, delivery_id: str,
                       event: str, body: str, now: float) -> bool:
        """Record a message to deliver; False when it was recorded and its first attempt
        queued already (a notification delivered twice)."""
        try:
            self._table.put_item(Item=to_dynamo({
                "pk": self._pk(integration, endpoint_id), "sk": MESSAGE_SK + delivery_id,
                "delivery_id": delivery_id, "event": event, "body": body, "created_at": now,
                "expires_at": int(now) + DELIVERY_TTL_SECONDS}),
                ConditionExpression="attribute_not_exists(pk) OR attribute_not_exists(queued)")
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def mark_queued(self, integration: str, endpoint_id: str, delivery_id: str) -> None:
        """Its first attempt is queued: a second copy of the notification queues none."""
        self._table.update_item(Key={"pk": self._pk(integration, endpoint_id),
                                     "sk": MESSAGE_SK + delivery_id},
                                UpdateExpression="SET queued = :yes",
                                ExpressionAttributeValues={":yes": True})

    def message(self, integration: str, endpoint_id: str, delivery_id: str
                ) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"pk": self._pk(integration, endpoint_id),
                                         "sk": MESSAGE_SK + delivery_id},
                                    ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def record_attempt(self, integration: str, endpoint_id: str, attempt: dict[str, Any]
                       ) -> None:
        at = attempt["attempted_at"]
        sk = f"{ATTEMPT_SK}{at:017.3f}#{attempt['delivery_id']}#{attempt['attempt']:03d}"
        self._table.put_item(Item=to_dynamo({
            "pk": self._pk(integration, endpoint_id), "sk": sk, **attempt,
            "expires_at": int(at) + DELIVERY_TTL_SECONDS}))

    def attempts(self, integration: str, endpoint_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` attempts, newest first."""
        page = self._table.query(
            KeyConditionExpression=Key("pk").eq(self._pk(integration, endpoint_id))
            & Key("sk").begins_with(ATTEMPT_SK),
            ScanIndexForward=False, Limit=limit, ConsistentRead=True)
        return [{k: v for k, v in from_dynamo(item).items()
                 if k not in ("pk", "sk", "expires_at")} for item in page["Items"]]


    def forget(self, integration: str, endpoint_id: str) -> int:
        """Delete every message (the notifications' bodies) and attempt recorded for the
        endpoint (an integration's erasure). Returns how many items."""
        deleted, query = 0, {"KeyConditionExpression": Key("pk").eq(
            self._pk(integration, endpoint_id)), "ProjectionExpression": "pk, sk"}
        with self._table.batch_writer() as batch:
            while True:
                page = self._table.query(**query)
                for item in page["Items"]:
                    batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
                deleted += len(page["Items"])
                if "LastEvaluatedKey" not in page:
                    return deleted
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class WebhookQueue:
    """Attempts waiting their turn: SQS, each message a reference to a recorded one."""

    MAX_DELAY_SECONDS = 900  # SQS's

    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self._queue_url = queue_url
        self._sqs = sqs or boto3.client("sqs")

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(message),
                               DelaySeconds=max(0, min(self.MAX_DELAY_SECONDS, delay_seconds)))


@dataclass(frozen=True)
class Answer:
    """What an attempt got: the status (None: no answer), the time it took, why it
    failed (None: it was answered), and at most MAX_ANSWER_BYTES of the body."""

    status: int | None
    latency_ms: float
    error: str | None = None
    body: bytes = b""


class WebhookSender:
    """One POST to an address already checked: the URL names the IP, the Host header
    and TLS SNI (and so the certificate check) the host, so a second DNS answer
    cannot move the request; redirects are not followed."""

    def __init__(self, timeout: float = 15.0, transport: httpx.BaseTransport | None = None
                 ) -> None:
        # Each phase within `timeout` (connecting within a third of it); the answer's
        # body is read only until `timeout` has passed since the attempt started.
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=timeout / 3),
                                    follow_redirects=False, transport=transport,
                                    trust_env=False)
        self._timeout = timeout

    def post(self, scheme: str, host: str, address: str, port: int, path: str,
             headers: dict[str, str], body: bytes) -> Answer:
        literal = f"[{address}]" if ":" in address else address
        default = {"https": 443, "http": 80}[scheme]
        url = f"{scheme}://{literal}:{port}{path}"
        host_header = host if port == default else f"{host}:{port}"
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        started = time.monotonic()
        try:
            request = self._client.build_request("POST", url, content=body, extensions=extensions,
                                                 headers={**headers, "Host": host_header,
                                                          # No compressed answer to inflate.
                                                          "Accept-Encoding": "identity"})
            response = self._client.send(request, stream=True)
            try:
                read = b""
                for chunk in response.iter_bytes():
                    read += chunk
                    if (len(read) >= MAX_ANSWER_BYTES
                            or time.monotonic() - started > self._timeout):
                        break
            finally:
                response.close()
            return Answer(response.status_code, _since(started), None, read[:MAX_ANSWER_BYTES])
        except httpx.TimeoutException:
            return Answer(None, _since(started), f"no answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return Answer(None, _since(started), f"{type(exc).__name__}: {str(exc)[:300]}")


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
