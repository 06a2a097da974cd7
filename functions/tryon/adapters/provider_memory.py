"""What the pipeline remembers of the provider: which job owns each task (so a
task is never adopted by two jobs), each model's recent generation times (for the
poll plan), the models it refused as missing or retired, and the time slots of
account-wide call pacing."""

from __future__ import annotations

import hashlib

from tryon.adapters.dynamo import RECORD_TTL_SECONDS, Table, applied, to_dynamo

TASK_PK, TASK_SK = "TASK#", "TASK"
DURATIONS_PK, DURATIONS_SK = "DURATIONS#", "DURATIONS"
DURATION_PLACES = 40
RETIRED_PK, RETIRED_SK = "RETIRED#", "RETIRED"
RATE_PK, RATE_SK = "RATE#", "RATE"


class TaskOwners:
    def __init__(self, table: Table) -> None:
        self._t = table

    def claim(self, task_id: str, job_id: str, now: float) -> bool:
        """Record that `task_id` belongs to `job_id`; False if another job has it."""
        return applied(
            self._t.table.put_item,
            Item={"pk": f"{TASK_PK}{task_id}", "sk": TASK_SK, "job_id": job_id,
                  "expires_at": int(now) + RECORD_TTL_SECONDS},
            ConditionExpression="attribute_not_exists(pk) OR job_id = :job",
            ExpressionAttributeValues={":job": job_id})

    def owner(self, task_id: str) -> str | None:
        item = self._t.read({"pk": f"{TASK_PK}{task_id}", "sk": TASK_SK})
        return item["job_id"] if item else None


class Durations:
    def __init__(self, table: Table) -> None:
        self._t = table

    def record(self, model: str, task_id: str, seconds: float) -> None:
        """Keep a task's generation time among the model's recent ones (a fixed
        number of places, picked by task id, so the item stays small)."""
        place = int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % DURATION_PLACES
        self._t.table.update_item(
            Key=self._t.ensure({**self._key(model), "samples": {}}),
            UpdateExpression="SET samples.#place = :seconds",
            ExpressionAttributeNames={"#place": str(place)},
            ExpressionAttributeValues={":seconds": to_dynamo(float(seconds))})

    def recent(self, model: str) -> list[float]:
        item = self._t.read(self._key(model), consistent=False) or {}
        return [float(v) for v in item.get("samples", {}).values()]

    @staticmethod
    def _key(model: str) -> dict[str, str]:
        return {"pk": f"{DURATIONS_PK}{model}", "sk": DURATIONS_SK}


class RetiredModels:
    def __init__(self, table: Table) -> None:
        self._t = table

    def remember(self, model: str, until: float, answer: dict[str, str]) -> None:
        """Note that the provider refused `model` as missing, until `until`."""
        self._t.table.put_item(Item=to_dynamo({
            **self._key(model), "until": float(until), "answer": answer,
            "expires_at": int(until) + 3600}))

    def until(self, model: str) -> float:
        """Until when `model` counts as refused (0: it does not)."""
        item = self._t.read(self._key(model), consistent=False) or {}
        return float(item.get("until", 0))

    @staticmethod
    def _key(model: str) -> dict[str, str]:
        return {"pk": f"{RETIRED_PK}{model}", "sk": RETIRED_SK}


class PacingLedger:
    """One item per claimed time slot of a provider operation (see tryon.pacing)."""

    def __init__(self, table: Table) -> None:
        self._t = table

    def claim_call_slot(self, operation: str, slot: int, now: float) -> bool:
        """Claim one time slot for a provider call; False if another caller has it."""
        return applied(self._t.table.put_item,
                       Item={"pk": f"{RATE_PK}{operation}#{slot}", "sk": RATE_SK,
                             "expires_at": int(now) + 3600},
                       ConditionExpression="attribute_not_exists(pk)")
