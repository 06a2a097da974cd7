"""What the pipeline remembers of the provider: which job owns each task (so a
task is never adopted by two jobs), each model's recent generation times (for the
poll plan), the models it refused as missing or retired, the time slots of
account-wide call pacing, and what it learned of each model's limits."""

from __future__ import annotations

import hashlib
from typing import Any

from tryon.adapters.dynamo import RECORD_TTL_SECONDS, Table, applied, to_dynamo
from tryon.ports import Since

TASK_PK, TASK_SK = "TASK#", "TASK"
DURATIONS_PK, DURATIONS_SK = "DURATIONS#", "DURATIONS"
DURATION_PLACES = 40
RETIRED_PK, RETIRED_SK = "RETIRED#", "RETIRED"
RATE_PK, RATE_SK = "RATE#", "RATE"
CAPACITY_PK, CAPACITY_SK = "CAPACITY#", "CAPACITY"


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

    def record(self, model: str, task_id: str, seconds: float, *,
               since: Since = "start") -> None:
        """Keep a task's time to its end, from its start (its generation time) or from
        its submit (its wait in the provider's queue included), among the model's
        recent ones (a fixed number of places, picked by task id, so the item stays
        small)."""
        place = int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % DURATION_PLACES
        self._t.table.update_item(
            Key=self._t.ensure({**self._key(model, since), "samples": {}}),
            UpdateExpression="SET samples.#place = :seconds",
            ExpressionAttributeNames={"#place": str(place)},
            ExpressionAttributeValues={":seconds": to_dynamo(float(seconds))})

    def recent(self, model: str, *, since: Since = "start") -> list[float]:
        item = self._t.read(self._key(model, since), consistent=False) or {}
        return [float(v) for v in item.get("samples", {}).values()]

    @staticmethod
    def _key(model: str, since: Since) -> dict[str, str]:
        suffix = "" if since == "start" else "#FROM-SUBMIT"
        return {"pk": f"{DURATIONS_PK}{model}{suffix}", "sk": DURATIONS_SK}


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

    def call_slot_taken(self, operation: str, slot: int) -> bool:
        return self._t.read({"pk": f"{RATE_PK}{operation}#{slot}", "sk": RATE_SK}) is not None


class LimitNotes:
    """What the stack learned of each model's capacity, in one item (every function
    reads it in one GetItem): the limits the provider last answered and when, a
    failed read, and a slowdown or a cut lookahead in force. Attributes are named
    `<note>@<model>`, so a write sets one model's note alone."""

    NOTES = ("limits", "read_at", "read_error", "failed_at", "slowed_until", "ahead_cut_until")

    def __init__(self, table: Table) -> None:
        self._t = table

    def read(self) -> dict[str, dict[str, object]]:
        """model -> its notes (only the notes it has)."""
        item = self._t.read(self._key(), consistent=False) or {}
        notes: dict[str, dict[str, object]] = {}
        for name, value in item.items():
            note, at, model = name.partition("@")
            if at and note in self.NOTES:
                notes.setdefault(model, {})[note] = value
        return notes

    def record_read(self, model: str, limits: dict[str, int] | None, now: float) -> None:
        """The provider's answer (None: it lists no limits for the model, kept as an
        empty map); clears a failed read."""
        self._set(model, {"limits": limits or {}, "read_at": float(now)},
                  remove=("read_error", "failed_at"))

    def record_failure(self, model: str, error: dict[str, str], now: float) -> bool:
        """A read that failed; True when the last read had not failed (say it once)."""
        first = applied(self._t.table.update_item, **self._update(
            model, {"read_error": error, "failed_at": float(now)}),
            ConditionExpression="attribute_not_exists(#read_error)")
        if not first:
            self._set(model, {"failed_at": float(now)})
        return first

    def hold_until(self, model: str, note: str, until: float, now: float) -> bool:
        """Set a timed note (`slowed_until`, `ahead_cut_until`) unless one is in force;
        True if this set it."""
        update = self._update(model, {note: float(until)})
        update["ExpressionAttributeValues"][":now"] = to_dynamo(float(now))
        return applied(self._t.table.update_item, **update,
                       ConditionExpression=f"attribute_not_exists(#{note}) OR #{note} < :now")

    def _set(self, model: str, values: dict[str, object], remove: tuple[str, ...] = ()) -> None:
        self._t.table.update_item(**self._update(model, values, remove))

    def _update(self, model: str, values: dict[str, object],
                remove: tuple[str, ...] = ()) -> dict[str, Any]:
        names = {f"#{note}": f"{note}@{model}" for note in (*values, *remove)}
        update = "SET " + ", ".join(f"#{note} = :{note}" for note in values)
        if remove:
            update += " REMOVE " + ", ".join(f"#{note}" for note in remove)
        return {"Key": self._key(), "UpdateExpression": update,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {f":{note}": to_dynamo(value)
                                              for note, value in values.items()}}

    @staticmethod
    def _key() -> dict[str, str]:
        return {"pk": CAPACITY_PK, "sk": CAPACITY_SK}
