"""DynamoDB adapter: job and batch records, provider slots and the queue of
waiting jobs, the daily image budget, measured generation times, task ownership,
models refused as retired, and call pacing. One table; the partition key's prefix says what an
item is."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

JOB_SK = "JOB"
BATCH_SK = "BATCH"
RECORD_TTL_SECONDS = 90 * 24 * 3600
SLOTS_PK, SLOTS_SK = "SLOTS#", "SLOTS"
QUEUE_PK, QUEUE_INDEX = "QUEUE#", "queue"
OWNER_INDEX = "owner"  # an integration's jobs and batches (API requests), by time
DURATIONS_PK, DURATIONS_SK = "DURATIONS#", "DURATIONS"
DURATION_PLACES = 40
TASK_PK, TASK_SK = "TASK#", "TASK"
RATE_PK, RATE_SK = "RATE#", "RATE"
RETIRED_PK, RETIRED_SK = "RETIRED#", "RETIRED"
MESSAGE_ERROR_PK, MESSAGE_ERROR_SK = "MSGERR#", "MSGERR"
MESSAGE_ERROR_TTL_SECONDS = 15 * 24 * 3600  # past the dead-letter queue's 14 days
BUDGET_PK, BUDGET_SK = "BUDGET#", "BUDGET"
BUDGET_LIMIT_KEY = {"pk": f"{BUDGET_PK}LIMIT", "sk": BUDGET_SK}
BUDGET_TTL_SECONDS = 35 * 24 * 3600


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


def _applied(call: Any, **kwargs: Any) -> bool:
    """Run a conditional write; False (not an error) when its condition did not hold."""
    try:
        call(**kwargs)
    except ClientError as exc:
        if _is_condition_failure(exc):
            return False
        raise
    return True


class JobStore:
    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        self._dynamodb = dynamodb or boto3.resource("dynamodb")
        self._table = self._dynamodb.Table(table_name)
        self._ensured: set[str] = set()

    def create(self, job: dict[str, Any], now: float) -> bool:
        """Insert a new job; False if it already exists (a duplicate delivery)."""
        item = {
            "pk": f"JOB#{job['job_id']}",
            "sk": JOB_SK,
            "expires_at": int(now) + RECORD_TTL_SECONDS,
            **job,
        }
        return _applied(self._table.put_item, Item=to_dynamo(item),
                        ConditionExpression="attribute_not_exists(pk)")

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
        return _applied(self._table.update_item, **kwargs)

    # --- batches: the looks of one manifest or one drop-folder fan-out ----------

    def create_batch(self, batch: dict[str, Any], now: float) -> bool:
        """Insert a batch (ids of its jobs, source, attributes); False if it exists."""
        item = {"pk": f"BATCH#{batch['batch_id']}", "sk": BATCH_SK,
                "expires_at": int(now) + RECORD_TTL_SECONDS, **batch}
        return _applied(self._table.put_item, Item=to_dynamo(item),
                                 ConditionExpression="attribute_not_exists(pk)")

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"pk": f"BATCH#{batch_id}", "sk": BATCH_SK},
                                    ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

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
        return _applied(self._table.update_item, Key={"pk": f"BATCH#{batch_id}", "sk": BATCH_SK},
                UpdateExpression="SET notified_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(notified_at)",
                ExpressionAttributeValues={":now": to_dynamo(now)})

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

    def owned_jobs(self, owner: str, *, status: str | None, limit: int,
                   after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """An integration's jobs, newest first, from the sparse `owner` index: up to
        `limit` of them after the position `after` (an `owner_order`), and the
        position to go on from (None at the end)."""
        found: list[dict[str, Any]] = []
        start = ({"owner": owner, "owner_order": after, "pk": f"JOB#{after.rsplit('#', 1)[-1]}",
                  "sk": JOB_SK} if after else None)
        for _ in range(10):  # a status filter may leave pages empty: a bounded look
            page = self._table.query(
                IndexName=OWNER_INDEX, ScanIndexForward=False, Limit=limit - len(found),
                KeyConditionExpression="#owner = :owner",
                **({"FilterExpression": "#status = :status"} if status else {}),
                ExpressionAttributeNames={"#owner": "owner",
                                          **({"#status": "status"} if status else {})},
                ExpressionAttributeValues={":owner": owner,
                                           **({":status": status} if status else {})},
                **({"ExclusiveStartKey": start} if start else {}))
            found += [from_dynamo(item) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start or len(found) >= limit:
                break
        return found, (start["owner_order"] if start else None)

    # --- admission: provider slots per model, and the queue of waiting jobs -------
    #
    # One item per model holds the jobs that have a provider task in flight (or
    # about to), keyed by job id so that taking or giving back a slot twice is
    # harmless; each holder carries a lease the sweep checks. Waiting jobs carry
    # two attributes that put them in the sparse `queue` index, oldest first.

    def acquire_slot(self, model: str, job_id: str, lease_until: float, limit: int) -> bool:
        """Take one of `limit` slots for `job_id` (True if it holds one now)."""
        key = self._ensure({"pk": f"{SLOTS_PK}{model}", "sk": SLOTS_SK, "holders": {}})
        return _applied(self._table.update_item, Key=key,
                UpdateExpression="SET holders.#job = :lease",
                ConditionExpression="attribute_exists(holders.#job) OR size(holders) < :limit",
                ExpressionAttributeNames={"#job": job_id},
                ExpressionAttributeValues={":lease": to_dynamo(float(lease_until)),
                                           ":limit": limit})

    def renew_slot(self, model: str, job_id: str, lease_until: float) -> bool:
        """Extend a held slot's lease; False if the job holds none."""
        return _applied(self._table.update_item, Key={"pk": f"{SLOTS_PK}{model}", "sk": SLOTS_SK},
                UpdateExpression="SET holders.#job = :lease",
                ConditionExpression="attribute_exists(holders.#job)",
                ExpressionAttributeNames={"#job": job_id},
                ExpressionAttributeValues={":lease": to_dynamo(float(lease_until))})

    def release_slot(self, model: str, job_id: str) -> bool:
        """Give back the job's slot; True if it held one (a second release is a no-op)."""
        return _applied(self._table.update_item, Key={"pk": f"{SLOTS_PK}{model}", "sk": SLOTS_SK},
                UpdateExpression="REMOVE holders.#job",
                ConditionExpression="attribute_exists(holders.#job)",
                ExpressionAttributeNames={"#job": job_id})

    def slot_holders(self, model: str) -> dict[str, float]:
        """Job id -> lease end, for the jobs holding the model's slots."""
        item = self._table.get_item(Key={"pk": f"{SLOTS_PK}{model}", "sk": SLOTS_SK},
                                    ConsistentRead=True).get("Item") or {}
        return from_dynamo(item.get("holders", {}))

    @staticmethod
    def queue_entry(model: str, queued_at: float, job_id: str) -> dict[str, str]:
        """The attributes that put a job in the queue index (remove them to take it out)."""
        return {"queue": f"{QUEUE_PK}{model}", "queued_order": f"{queued_at:017.3f}#{job_id}"}

    def queued_jobs(self, model: str, limit: int) -> list[str]:
        """Ids of the oldest waiting jobs of a model (the index is eventually consistent:
        a job queued a moment ago may be missing, and one just admitted may still show)."""
        answer = self._table.query(
            IndexName=QUEUE_INDEX,
            KeyConditionExpression="#queue = :queue",
            ExpressionAttributeNames={"#queue": "queue"},
            ExpressionAttributeValues={":queue": f"{QUEUE_PK}{model}"},
            Limit=limit,
        )
        return [item["job_id"] for item in answer["Items"]]

    def count_queued(self, model: str) -> int:
        """How many jobs of a model wait in the queue index (eventually consistent,
        like `queued_jobs`): a COUNT query sends back no items, 1 MB of index a page."""
        query: dict[str, Any] = {
            "IndexName": QUEUE_INDEX, "Select": "COUNT",
            "KeyConditionExpression": "#queue = :queue",
            "ExpressionAttributeNames": {"#queue": "queue"},
            "ExpressionAttributeValues": {":queue": f"{QUEUE_PK}{model}"}}
        count = 0
        while True:
            answer = self._table.query(**query)
            count += answer["Count"]
            if "LastEvaluatedKey" not in answer:
                return count
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # --- measured generation times, for the poll plan -----------------------------

    def record_duration(self, model: str, task_id: str, seconds: float) -> None:
        """Keep a task's generation time among the model's recent ones (a fixed
        number of places, picked by task id, so the item stays small)."""
        place = int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % DURATION_PLACES
        self._table.update_item(
            Key=self._ensure({"pk": f"{DURATIONS_PK}{model}", "sk": DURATIONS_SK,
                              "samples": {}}),
            UpdateExpression="SET samples.#place = :seconds",
            ExpressionAttributeNames={"#place": str(place)},
            ExpressionAttributeValues={":seconds": to_dynamo(float(seconds))})

    def recent_durations(self, model: str) -> list[float]:
        item = self._table.get_item(Key={"pk": f"{DURATIONS_PK}{model}",
                                         "sk": DURATIONS_SK}).get("Item") or {}
        return [float(v) for v in item.get("samples", {}).values()]

    # --- provider tasks, so a task is never adopted by two jobs --------------------

    def claim_task(self, task_id: str, job_id: str, now: float) -> bool:
        """Record that `task_id` belongs to `job_id`; False if another job has it."""
        return _applied(
                self._table.put_item,
                Item=to_dynamo({"pk": f"{TASK_PK}{task_id}", "sk": TASK_SK, "job_id": job_id,
                                "expires_at": int(now) + RECORD_TTL_SECONDS}),
                ConditionExpression="attribute_not_exists(pk) OR job_id = :job",
                ExpressionAttributeValues={":job": job_id})

    def task_owner(self, task_id: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"{TASK_PK}{task_id}", "sk": TASK_SK},
                                    ConsistentRead=True).get("Item")
        return item["job_id"] if item else None

    # --- models the provider refused as missing or retired ---------------------------

    def remember_retired(self, model: str, until: float, answer: dict[str, str]) -> None:
        """Note that the provider refused `model` as missing, until `until`."""
        self._table.put_item(Item=to_dynamo({
            "pk": f"{RETIRED_PK}{model}", "sk": RETIRED_SK, "until": float(until),
            "answer": answer, "expires_at": int(until) + 3600}))

    def retired_until(self, model: str) -> float:
        """Until when `model` counts as refused (0: it does not)."""
        item = self._table.get_item(Key={"pk": f"{RETIRED_PK}{model}",
                                         "sk": RETIRED_SK}).get("Item") or {}
        return float(item.get("until", 0))

    # --- the last error of a queue message, for its dead-letter consumer ------------

    def remember_message_error(self, message_id: str, error: dict[str, str],
                               now: float) -> None:
        self._table.put_item(Item={"pk": f"{MESSAGE_ERROR_PK}{message_id}",
                                   "sk": MESSAGE_ERROR_SK, "error": error,
                                   "expires_at": int(now) + MESSAGE_ERROR_TTL_SECONDS})

    def message_error(self, message_id: str) -> dict[str, str] | None:
        item = self._table.get_item(Key={"pk": f"{MESSAGE_ERROR_PK}{message_id}",
                                         "sk": MESSAGE_ERROR_SK}).get("Item")
        return item["error"] if item else None

    # --- the daily image budget ---------------------------------------------------

    def charge_budget(self, job_id: str, day: str, limit: int, now: float) -> bool:
        """Count the job's image against the day's budget, once per job. True if the
        job has its image in a budget, now or from before; False if the day is spent.

        Two conditional writes, no transaction: the day's counter is raised first
        (while under the limit), then the job is marked; a job that was marked
        already gives the count back. A crash in between over-counts by one, the
        safe side for a spending limit."""
        budget_key = {"pk": f"{BUDGET_PK}{day}", "sk": BUDGET_SK}
        if limit <= 0:  # the condition below lets a day's first image through
            return "budget_day" in (self.get(job_id) or {})
        if not _applied(self._table.update_item, Key=budget_key,
                        UpdateExpression="ADD spent :one SET expires_at = :ttl",
                        ConditionExpression="attribute_not_exists(spent) OR spent < :limit",
                        ExpressionAttributeValues={":one": 1, ":limit": limit,
                                                   ":ttl": int(now) + BUDGET_TTL_SECONDS}):
            return "budget_day" in (self.get(job_id) or {})  # charged before: its place
        if _applied(self._table.update_item, Key={"pk": f"JOB#{job_id}", "sk": JOB_SK},
                    UpdateExpression="SET budget_day = :day",
                    ConditionExpression="attribute_exists(pk) AND "
                                        "attribute_not_exists(budget_day)",
                    ExpressionAttributeValues={":day": day}):
            return True
        self._table.update_item(Key=budget_key, UpdateExpression="ADD spent :minus",
                                ExpressionAttributeValues={":minus": -1})
        return "budget_day" in (self.get(job_id) or {})

    def refund_budget(self, job_id: str) -> None:
        """Give back the place a job took in its day's budget (a job canceled before
        its submit); once per job."""
        try:
            old = self._table.update_item(
                Key={"pk": f"JOB#{job_id}", "sk": JOB_SK}, UpdateExpression="REMOVE budget_day",
                ConditionExpression="attribute_exists(budget_day)",
                ReturnValues="ALL_OLD")["Attributes"]
        except ClientError as exc:
            if _is_condition_failure(exc):
                return
            raise
        self._table.update_item(Key={"pk": f"{BUDGET_PK}{old['budget_day']}", "sk": BUDGET_SK},
                                UpdateExpression="ADD spent :minus",
                                ExpressionAttributeValues={":minus": -1})

    def budget_spent(self, day: str) -> dict[str, Any]:
        """The day's counter: `spent` images, and `reached_at` once the budget ran out."""
        item = self._table.get_item(Key={"pk": f"{BUDGET_PK}{day}", "sk": BUDGET_SK},
                                    ConsistentRead=True).get("Item") or {}
        return {"spent": int(item.get("spent", 0)),
                "reached_at": from_dynamo(item.get("reached_at"))}

    def claim_budget_notice(self, day: str, now: float) -> bool:
        """True once a day: for the one caller that sends `budget.reached`."""
        return _applied(self._table.update_item,
                        Key={"pk": f"{BUDGET_PK}{day}", "sk": BUDGET_SK},
                        UpdateExpression="SET reached_at = :now",
                        ConditionExpression="attribute_not_exists(reached_at)",
                        ExpressionAttributeValues={":now": to_dynamo(float(now))})

    def release_budget_notice(self, day: str) -> None:
        self._table.update_item(Key={"pk": f"{BUDGET_PK}{day}", "sk": BUDGET_SK},
                                UpdateExpression="REMOVE reached_at")

    def budget_limit(self) -> int | None:
        """The operator's override of the stack's DailyImageBudget, if one is set."""
        item = self._table.get_item(Key=BUDGET_LIMIT_KEY, ConsistentRead=True).get("Item")
        return int(item["limit"]) if item else None

    def set_budget_limit(self, limit: int | None) -> None:
        """Raise or lower the daily budget without a deployment (None: the parameter's)."""
        if limit is None:
            self._table.delete_item(Key=BUDGET_LIMIT_KEY)
        else:
            self._table.put_item(Item={**BUDGET_LIMIT_KEY, "limit": int(limit)})

    # --- account-wide pacing of provider calls ---------------------------------------

    def claim_call_slot(self, operation: str, slot: int, now: float) -> bool:
        """Claim one time slot for a provider call; False if another caller has it."""
        return _applied(
                self._table.put_item,
                Item={"pk": f"{RATE_PK}{operation}#{slot}", "sk": RATE_SK,
                      "expires_at": int(now) + 3600},
                ConditionExpression="attribute_not_exists(pk)")

    def _ensure(self, item: dict[str, Any]) -> dict[str, str]:
        """Create a shared item (once per process) so that updates can set paths
        inside its maps; returns its key."""
        key = {"pk": item["pk"], "sk": item["sk"]}
        if item["pk"] not in self._ensured:
            try:
                self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
            except ClientError as exc:
                if not _is_condition_failure(exc):
                    raise
            self._ensured.add(item["pk"])
        return key
