"""Batch records: the looks of one manifest, drop-folder fan-out or catalogue file
(`total`, and their ids when there are few enough to list), how many have ended and
how (counters, each job counted once), and the one claim on the batch's summary.

A job's end is counted in one transaction with its own `batch_counted` mark, so a
repeated end (a retried step) never counts twice and a crash never counts none:
a 10,000-look batch needs no set of 10,000 ids rewritten on every end."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tryon.adapters.dynamo import RECORD_TTL_SECONDS, Table, applied, from_dynamo, to_dynamo
from tryon.adapters.jobs import job_key
from tryon.jobs import ENDED_PREFIX

BATCH_PK, BATCH_SK = "BATCH#", "BATCH"
BATCH_KEPT = frozenset({"batch_id", "owner", "owner_order", "job_ids", "ended_jobs", "total",
                        "ended", "notified_at", "expires_at", "erased_at"})


def _key(batch_id: str) -> dict[str, str]:
    return {"pk": f"{BATCH_PK}{batch_id}", "sk": BATCH_SK}


class BatchRepository:
    def __init__(self, table: Table) -> None:
        self._t = table

    def create(self, batch: dict[str, Any], now: float) -> bool:
        """Insert a batch (ids of its jobs, source, attributes); False if it exists."""
        item = {**_key(batch["batch_id"]), "expires_at": int(now) + RECORD_TTL_SECONDS, **batch}
        return applied(self._t.table.put_item, Item=to_dynamo(item),
                       ConditionExpression="attribute_not_exists(pk)")

    def get(self, batch_id: str) -> dict[str, Any] | None:
        return self._t.read(_key(batch_id))

    def record_end(self, batch_id: str, job_id: str, status: str) -> dict[str, Any]:
        """Count one of the batch's jobs as ended with `status`, once per job; returns
        the batch as it is then."""
        if "total" not in (self.get(batch_id) or {}):
            return self._record_end_in_set(batch_id, job_id)
        counted = {"Update": {
            "TableName": self._t.table.name, "Key": job_key(job_id),
            "UpdateExpression": "SET batch_counted = :yes",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(batch_counted)",
            "ExpressionAttributeValues": {":yes": True}}}
        count = {"Update": {
            "TableName": self._t.table.name, "Key": _key(batch_id),
            "UpdateExpression": "ADD ended :one, #status :one",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#status": ENDED_PREFIX + status.lower()},
            "ExpressionAttributeValues": {":one": 1}}}
        try:  # the resource's client: it takes (and converts) Python values, as the table
            self._t.dynamodb.meta.client.transact_write_items(TransactItems=[counted, count])
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons != ["ConditionalCheckFailed", "None"]:
                raise  # not "counted before" (a repeated end, which changes nothing)
        return self.get(batch_id)

    def _record_end_in_set(self, batch_id: str, job_id: str) -> dict[str, Any]:
        """A batch recorded before the counters (no `total`): its set of ended jobs."""
        item = self._t.table.update_item(
            Key=_key(batch_id), UpdateExpression="ADD ended_jobs :job",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":job": {job_id}}, ReturnValues="ALL_NEW",
        )["Attributes"]
        return from_dynamo(item)

    def claim_notification(self, batch_id: str, now: float) -> bool:
        return applied(self._t.table.update_item, Key=_key(batch_id),
                       UpdateExpression="SET notified_at = :now",
                       ConditionExpression="attribute_exists(pk) AND "
                                           "attribute_not_exists(notified_at)",
                       ExpressionAttributeValues={":now": to_dynamo(now)})

    def erase(self, batch_id: str, now: float) -> dict[str, Any] | None:
        """Cut the batch's record to its ids, owner and the ended jobs, marked
        `erased_at`: its source and attributes go. None when there is no such batch."""
        item = self._t.read(_key(batch_id))
        if not item:
            return None
        kept = {k: v for k, v in item.items() if k in BATCH_KEPT}
        kept.setdefault("erased_at", now)
        self._t.table.put_item(Item=to_dynamo({**_key(batch_id), **kept}))
        return kept

    def release_notification(self, batch_id: str) -> None:
        self._t.table.update_item(Key=_key(batch_id), UpdateExpression="REMOVE notified_at")

