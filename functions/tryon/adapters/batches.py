"""Batch records: the looks of one manifest or one drop-folder fan-out, which of
them have ended, and the one claim on the batch's summary."""

from __future__ import annotations

from typing import Any

from tryon.adapters.dynamo import RECORD_TTL_SECONDS, Table, applied, from_dynamo, to_dynamo

BATCH_PK, BATCH_SK = "BATCH#", "BATCH"
BATCH_KEPT = frozenset({"batch_id", "owner", "owner_order", "job_ids", "ended_jobs",
                        "notified_at", "expires_at", "erased_at"})


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

    def record_end(self, batch_id: str, job_id: str) -> dict[str, Any]:
        """Note that one of the batch's jobs ended (idempotent: a set); returns the batch."""
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
