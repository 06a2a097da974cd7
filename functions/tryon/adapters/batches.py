"""Batch records: the looks of one manifest, drop-folder fan-out or catalogue file
(`total`, and their ids when there are few enough to list), which of them have
ended and how, and the one claim on the batch's summary.

Ends are kept in shards of SHARD_LOOKS jobs (by each job's place in the batch): a
job's end sets its own attribute in its shard's item (`end#<job id>`: idempotent,
so a repeated end changes nothing), and the end that fills a shard adds the shard
to the batch's `shards_done` set (idempotent too). The batch is complete when every
shard is done. No transaction, no set of 10,000 ids rewritten on every end; the
counts are tallied from the shards (one BatchGetItem per 100 shards) when read."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tryon.adapters.dynamo import RECORD_TTL_SECONDS, Table, applied, from_dynamo, to_dynamo
from tryon.jobs import ENDED_PREFIX, MADE_PREFIX, shard_of

BATCH_PK, BATCH_SK = "BATCH#", "BATCH"
ENDS_PK = "BATCHENDS#"  # + batch id # shard
END_PREFIX = "end#"  # + job id: its status, and "#<model>" for an image made
CANCELING_KEY = {"pk": "BATCHCANCELS", "sk": BATCH_SK}  # the batches the sweep cancels on
BATCH_KEPT = frozenset({"batch_id", "owner", "owner_order", "job_ids", "ended_jobs", "total",
                        "shards", "shards_done", "notified_at", "expires_at", "erased_at",
                        "cancel", "retries", "retry_of"})


def _key(batch_id: str) -> dict[str, str]:
    return {"pk": f"{BATCH_PK}{batch_id}", "sk": BATCH_SK}


def _ends_key(batch_id: str, shard: str) -> dict[str, str]:
    return {"pk": f"{ENDS_PK}{batch_id}#{shard}", "sk": BATCH_SK}


class BatchRepository:
    def __init__(self, table: Table) -> None:
        self._t = table

    def create(self, batch: dict[str, Any], now: float) -> bool:
        """Insert a batch (ids of its jobs, source, attributes); False if it exists."""
        item = {**_key(batch["batch_id"]), "expires_at": int(now) + RECORD_TTL_SECONDS, **batch}
        return applied(self._t.table.put_item, Item=to_dynamo(item),
                       ConditionExpression="attribute_not_exists(pk)")

    def get(self, batch_id: str) -> dict[str, Any] | None:
        """The batch, with its ends tallied (`ended`, ENDED_PREFIX + status, MADE_PREFIX
        + model) from its shards."""
        batch = self._t.read(_key(batch_id))
        if batch is None or "shards" not in batch:
            return batch
        keys = [_ends_key(batch_id, shard) for shard in batch["shards"]]
        outcomes: list[str] = []
        for start in range(0, len(keys), 100):
            answer = self._t.dynamodb.batch_get_item(RequestItems={
                self._t.table.name: {"Keys": keys[start:start + 100], "ConsistentRead": True}})
            for item in answer["Responses"].get(self._t.table.name, []):
                outcomes += [v for k, v in item.items() if k.startswith(END_PREFIX)]
        return {**batch, **tally(outcomes)}

    def record(self, batch_id: str) -> dict[str, Any] | None:
        """The batch's own record, its ends not tallied (one read)."""
        return self._t.read(_key(batch_id))

    # --- a cancel (tryon.stages.batch_steering) ---------------------------------------

    def start_cancel(self, batch_id: str, by: str, now: float) -> dict[str, Any]:
        """Mark the batch canceled (once: a second cancel keeps the first's mark) and
        list it among the batches the sweep goes on canceling; returns its record."""
        applied(self._t.table.update_item, Key=_key(batch_id),
                UpdateExpression="SET #cancel = :cancel",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#cancel)",
                ExpressionAttributeNames={"#cancel": "cancel"},
                ExpressionAttributeValues={":cancel": to_dynamo(
                    {"at": now, "by": by, "canceled": {}, "running": 0})})
        batch = self.record(batch_id)
        if batch is None:
            raise KeyError(batch_id)
        if not batch["cancel"].get("done_at"):
            self._t.table.update_item(Key=CANCELING_KEY, UpdateExpression="ADD batch_ids :id",
                                      ExpressionAttributeValues={":id": {batch_id}})
        return batch

    def note_cancel(self, batch_id: str, *, after: str | None, seen: int,
                    canceled: dict[str, int], running: int, done: bool, now: float
                    ) -> dict[str, Any]:
        """A page of the batch's jobs canceled (model -> how many): where the next page
        starts, how many jobs the pass has seen and found the provider making (`running`)
        so far, and whether the cancel is done (then the sweep stops going on with it).
        Returns its record."""
        names, values, sets = self._canceled_counts(canceled)
        names |= {"#after": "after", "#running": "running", "#seen": "seen"}
        values |= {":running": running, ":seen": seen}
        sets += ["#cancel.#running = :running", "#cancel.#seen = :seen"]
        if after is not None:
            values[":after"] = after
            sets.append("#cancel.#after = :after")
        if done:
            names["#done"], values[":now"] = "done_at", now
            sets.append("#cancel.#done = :now")
        batch = from_dynamo(self._t.table.update_item(
            Key=_key(batch_id), UpdateExpression="SET " + ", ".join(sets)
            + ("" if after is not None else " REMOVE #cancel.#after"),
            ExpressionAttributeNames=names, ExpressionAttributeValues=to_dynamo(values),
            ReturnValues="ALL_NEW")["Attributes"])
        if done:
            self._t.table.update_item(Key=CANCELING_KEY,
                                      UpdateExpression="DELETE batch_ids :id",
                                      ExpressionAttributeValues={":id": {batch_id}})
        return batch

    def add_canceled(self, batch_id: str, canceled: dict[str, int]) -> None:
        """Looks of a canceled batch that its expansion reached after the cancel, ended
        CANCELED there (model -> how many)."""
        if canceled:
            names, values, sets = self._canceled_counts(canceled)
            self._t.table.update_item(Key=_key(batch_id), UpdateExpression="SET "
                                      + ", ".join(sets), ExpressionAttributeNames=names,
                                      ExpressionAttributeValues=values)

    @staticmethod
    def _canceled_counts(canceled: dict[str, int]
                         ) -> tuple[dict[str, str], dict[str, Any], list[str]]:
        names = {"#cancel": "cancel", "#canceled": "canceled"}
        values: dict[str, Any] = {":zero": 0}
        sets = []
        for n, (model, looks) in enumerate(sorted(canceled.items())):
            names[f"#m{n}"], values[f":n{n}"] = model, looks
            sets.append(f"#cancel.#canceled.#m{n} = "
                        f"if_not_exists(#cancel.#canceled.#m{n}, :zero) + :n{n}")
        return names, values, sets

    def canceling(self) -> list[str]:
        """The batches whose cancel is not done yet."""
        item = self._t.read(CANCELING_KEY) or {}
        return sorted(item.get("batch_ids") or ())

    def add_retry(self, batch_id: str, retry_id: str) -> None:
        """Link the batch to the new batch that makes its failed looks again (once: a
        retry asked again names the same one)."""
        applied(self._t.table.update_item,
                Key=_key(batch_id),
                UpdateExpression="SET retries = list_append(if_not_exists(retries, :none), :id)",
                ConditionExpression="attribute_exists(pk) AND NOT contains(retries, :retry)",
                ExpressionAttributeValues={":none": [], ":id": [retry_id], ":retry": retry_id})

    def record_end(self, batch_id: str, job_id: str, status: str, model: str | None = None,
                   order: str | None = None) -> dict[str, Any]:
        """Note that one of the batch's jobs (at place `order`) ended with `status` (an
        image made by `model`, when it succeeded), once per job; returns the batch's
        record (`shards_done`: `batch_complete` says whether every job has ended)."""
        batch = self._t.read(_key(batch_id))
        if batch is None:
            raise KeyError(batch_id)
        if "shards" not in batch:
            return self._record_end_in_set(batch_id, job_id)
        shard = str(shard_of(order))
        outcome = status + (f"#{model}" if status == "SUCCEEDED" and model else "")
        ends = self._t.table.update_item(
            Key=_ends_key(batch_id, shard), UpdateExpression="SET #job = :end, expires_at = :ttl",
            ExpressionAttributeNames={"#job": END_PREFIX + job_id},
            ExpressionAttributeValues={":end": outcome, ":ttl": batch["expires_at"]},
            ReturnValues="ALL_NEW")["Attributes"]
        if sum(1 for name in ends if name.startswith(END_PREFIX)) >= batch["shards"][shard]:
            batch = from_dynamo(self._t.table.update_item(
                Key=_key(batch_id), UpdateExpression="ADD shards_done :shard",
                ExpressionAttributeValues={":shard": {shard}}, ReturnValues="ALL_NEW",
            )["Attributes"])
        return batch

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


def tally(outcomes: list[str]) -> dict[str, int]:
    """Ended jobs' outcomes (`STATUS` or `SUCCEEDED#<model>`) as the batch's counters."""
    statuses = Counter(outcome.split("#", 1)[0] for outcome in outcomes)
    made = Counter(outcome.split("#", 1)[1] for outcome in outcomes if "#" in outcome)
    return {"ended": len(outcomes),
            **{ENDED_PREFIX + status.lower(): n for status, n in statuses.items()},
            **{MADE_PREFIX + model: n for model, n in made.items()}}
