"""Admission's items: provider slots per model, and the queue of waiting jobs.

One item per model holds the jobs that have a provider task in flight (or about
to), keyed by job id so that taking or giving back a slot twice is harmless; each
holder carries a lease the sweep checks. Waiting jobs carry two attributes that
put them in the sparse `queue` index, oldest first."""

from __future__ import annotations

from typing import Any

from tryon.adapters.dynamo import Table, applied, to_dynamo

SLOTS_PK, SLOTS_SK = "SLOTS#", "SLOTS"
QUEUE_PK, QUEUE_INDEX = "QUEUE#", "queue"
QUEUE_ATTRIBUTES = ("queue", "queued_order", "waiting_for")


def _key(model: str) -> dict[str, str]:
    return {"pk": f"{SLOTS_PK}{model}", "sk": SLOTS_SK}


class SlotRepository:
    def __init__(self, table: Table) -> None:
        self._t = table

    def acquire(self, model: str, job_id: str, lease_until: float, limit: int) -> bool:
        """Take one of `limit` slots for `job_id` (True if it holds one now)."""
        key = self._t.ensure({**_key(model), "holders": {}})
        return applied(self._t.table.update_item, Key=key,
                       UpdateExpression="SET holders.#job = :lease",
                       ConditionExpression="attribute_exists(holders.#job) OR "
                                           "size(holders) < :limit",
                       ExpressionAttributeNames={"#job": job_id},
                       ExpressionAttributeValues={":lease": to_dynamo(float(lease_until)),
                                                  ":limit": limit})

    def renew(self, model: str, job_id: str, lease_until: float) -> bool:
        """Extend a held slot's lease; False if the job holds none."""
        return applied(self._t.table.update_item, Key=_key(model),
                       UpdateExpression="SET holders.#job = :lease",
                       ConditionExpression="attribute_exists(holders.#job)",
                       ExpressionAttributeNames={"#job": job_id},
                       ExpressionAttributeValues={":lease": to_dynamo(float(lease_until))})

    def release(self, model: str, job_id: str) -> bool:
        """Give back the job's slot; True if it held one (a second release is a no-op)."""
        return applied(self._t.table.update_item, Key=_key(model),
                       UpdateExpression="REMOVE holders.#job",
                       ConditionExpression="attribute_exists(holders.#job)",
                       ExpressionAttributeNames={"#job": job_id})

    def holders(self, model: str) -> dict[str, float]:
        """Job id -> lease end, for the jobs holding the model's slots."""
        return (self._t.read(_key(model)) or {}).get("holders", {})


def queue_entry(model: str, queued_at: float, job_id: str) -> dict[str, str]:
    """The job fields that put it in the queue index (QUEUE_ATTRIBUTES take it out)."""
    return {"queue": f"{QUEUE_PK}{model}", "queued_order": f"{queued_at:017.3f}#{job_id}"}


class QueueIndex:
    """The waiting jobs of each model, oldest first. The index is eventually
    consistent: a job queued a moment ago may be missing, one just admitted may show."""

    def __init__(self, table: Table) -> None:
        self._t = table

    def oldest(self, model: str, limit: int) -> list[str]:
        answer = self._t.table.query(**self._query(model), Limit=limit)
        return [item["job_id"] for item in answer["Items"]]

    def count(self, model: str) -> int:
        """A COUNT query sends back no items, 1 MB of index a page."""
        query: dict[str, Any] = {**self._query(model), "Select": "COUNT"}
        count = 0
        while True:
            answer = self._t.table.query(**query)
            count += answer["Count"]
            if "LastEvaluatedKey" not in answer:
                return count
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    @staticmethod
    def _query(model: str) -> dict[str, Any]:
        return {"IndexName": QUEUE_INDEX, "KeyConditionExpression": "#queue = :queue",
                "ExpressionAttributeNames": {"#queue": "queue"},
                "ExpressionAttributeValues": {":queue": f"{QUEUE_PK}{model}"}}
