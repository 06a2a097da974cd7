"""DynamoDB adapter for job records (one item per job, `pk = JOB#<id>`)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

JOB_SK = "JOB"
BATCH_SK = "BATCH"
RECORD_TTL_SECONDS = 90 * 24 * 3600


def to_dynamo(value: Any) -> Any:
    """DynamoDB takes Decimal, not float; keep millisecond precision."""
    if isinstance(value, float):
        return Decimal(str(round(value, 3)))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class JobStore:
    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self._dynamodb = dynamodb or boto3.resource("dynamodb")
        self._table = self._dynamodb.Table(table_name)

    def create(self, job: dict[str, Any], now: float) -> bool:
        """Insert a new job; False if it already exists (a duplicate delivery)."""
        item = {
            "pk": f"JOB#{job['job_id']}",
            "sk": JOB_SK,
            "expires_at": int(now) + RECORD_TTL_SECONDS,
            **job,
        }
        try:
            self._table.put_item(
                Item=to_dynamo(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def get(self, job_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(
            Key={"pk": f"JOB#{job_id}", "sk": JOB_SK}, ConsistentRead=True
        ).get("Item")
        return from_dynamo(item) if item else None

    def update(
        self,
        job_id: str,
        *,
        fields: dict[str, Any] | None = None,
        timeline: dict[str, float] | None = None,
        increment: dict[str, int] | None = None,
        remove: Iterable[str] = (),
        only_if_status: Iterable[str] | None = None,
        only_if_absent: str | None = None,
    ) -> bool:
        """Apply one atomic update; False when its condition did not hold."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []

        def name(attr: str) -> str:
            names[f"#{attr}"] = attr
            return f"#{attr}"

        for i, (attr, value) in enumerate((fields or {}).items()):
            if value is None:
                continue
            values[f":f{i}"] = to_dynamo(value)
            sets.append(f"{name(attr)} = :f{i}")
        for i, (event, at) in enumerate((timeline or {}).items()):
            values[f":t{i}"] = to_dynamo(float(at))
            sets.append(f"{name('timeline')}.{name(event)} = :t{i}")
        for i, (attr, by) in enumerate((increment or {}).items()):
            values[f":i{i}"] = by
            values[":zero"] = 0
            sets.append(f"{name(attr)} = if_not_exists({name(attr)}, :zero) + :i{i}")
        expression = "SET " + ", ".join(sets) if sets else ""
        removed = [name(attr) for attr in remove]
        if removed:
            expression += " REMOVE " + ", ".join(removed)

        conditions = ["attribute_exists(pk)"]
        if only_if_status is not None:
            statuses = list(only_if_status)
            keys = [f":s{i}" for i in range(len(statuses))]
            values.update(zip(keys, statuses, strict=True))
            conditions.append(f"{name('status')} IN ({', '.join(keys)})")
        if only_if_absent:
            conditions.append(f"attribute_not_exists({name(only_if_absent)})")

        kwargs: dict[str, Any] = {
            "Key": {"pk": f"JOB#{job_id}", "sk": JOB_SK},
            "UpdateExpression": expression.strip(),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._table.update_item(**kwargs)
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    # --- batches: the looks of one manifest or one drop-folder fan-out ----------

    def create_batch(self, batch: dict[str, Any], now: float) -> bool:
        """Insert a batch (ids of its jobs, source, attributes); False if it exists."""
        item = {"pk": f"BATCH#{batch['batch_id']}", "sk": BATCH_SK,
                "expires_at": int(now) + RECORD_TTL_SECONDS, **batch}
        try:
            self._table.put_item(Item=to_dynamo(item),
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def record_batch_end(self, batch_id: str, job_id: str) -> dict[str, Any]:
        """Note that one of the batch's jobs ended (idempotent: a set); returns the batch."""
        item = self._table.update_item(
            Key={"pk": f"BATCH#{batch_id}", "sk": BATCH_SK},
            UpdateExpression="ADD ended_jobs :job",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":job": {job_id}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return from_dynamo(item)

    def claim_batch_notification(self, batch_id: str, now: float) -> bool:
        try:
            self._table.update_item(
                Key={"pk": f"BATCH#{batch_id}", "sk": BATCH_SK},
                UpdateExpression="SET notified_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(notified_at)",
                ExpressionAttributeValues={":now": to_dynamo(now)},
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def release_batch_notification(self, batch_id: str) -> None:
        self._table.update_item(Key={"pk": f"BATCH#{batch_id}", "sk": BATCH_SK},
                                UpdateExpression="REMOVE notified_at")

    def get_jobs(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """The job records, in the order asked (BatchGetItem, 100 at a time)."""
        found: dict[str, dict] = {}
        for start in range(0, len(job_ids), 100):
            keys = [{"pk": f"JOB#{j}", "sk": JOB_SK} for j in job_ids[start:start + 100]]
            request = {self._table.name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._dynamodb.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self._table.name, []):
                    found[item["job_id"]] = from_dynamo(item)
                request = answer.get("UnprocessedKeys") or None
        return [found[j] for j in job_ids if j in found]
