"""Admission's items: provider slots per model, and the queue of waiting jobs.

One item per model holds the jobs that have a provider task in flight (or about
to), keyed by job id so that taking or giving back a slot twice is harmless; each
holder carries a lease the sweep checks. Waiting jobs carry two attributes that
put them in the sparse `queue` index, in their turn.

Turns are start-time fair queuing: interactive looks come before batch looks, and
within a priority each tenant (an integration; bucket uploads are one tenant of their
own) takes turns. A job queued gets the start tag max(the priority's clock, where its
tenant's previous job ended), and ends 1/share later; the clock is the start tag of
the job last admitted. So a tenant that queues 100 looks and one that queues 10
after it interleave, a tenant coming back from idle gets no credit for the time it
was away, and order within one tenant stays oldest first."""

from __future__ import annotations

from typing import Any

from tryon.adapters.dynamo import Table, applied, to_dynamo

SLOTS_PK, SLOTS_SK = "SLOTS#", "SLOTS"
QUEUE_PK, QUEUE_INDEX = "QUEUE#", "queue"
QUEUE_ATTRIBUTES = ("queue", "queued_order", "waiting_for")
# An admitted job keeps its queued_order: a submit sent back to wait takes its old turn.
ADMITTED_REMOVES = ("queue", "waiting_for")
PRIORITIES = ("interactive", "batch")  # admitted in this order
BUCKET_TENANT = "#uploads"  # manifests and drops in the bucket (no integration name has '#')
TURNS_PK, TURNS_SK = "TURNS#", "TURNS"
UNKNOWN_TENANT = "#unknown"  # an order queued before tenants rode along in it


def _key(model: str) -> dict[str, str]:
    return {"pk": f"{SLOTS_PK}{model}", "sk": SLOTS_SK}


class SlotRepository:
    def __init__(self, table: Table) -> None:
        self._t = table

    def acquire(self, model: str, job_id: str, lease_until: float, limit: int,
                tenant: str | None = None) -> bool:
        """Take one of `limit` slots for `job_id` (True if it holds one now), noting
        whose job it is (`in_flight`)."""
        key = self._t.ensure({**_key(model), "holders": {}})
        return applied(self._t.table.update_item, Key=key,
                       UpdateExpression="SET holders.#job = :lease"
                                        + (", #tenant = :tenant" if tenant else ""),
                       ConditionExpression="attribute_exists(holders.#job) OR "
                                           "size(holders) < :limit",
                       ExpressionAttributeNames={"#job": job_id,
                                                 **({"#tenant": _tenant_of_holder(job_id)}
                                                    if tenant else {})},
                       ExpressionAttributeValues={":lease": to_dynamo(float(lease_until)),
                                                  ":limit": limit,
                                                  **({":tenant": tenant} if tenant else {})})

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
                       UpdateExpression="REMOVE holders.#job, #tenant",
                       ConditionExpression="attribute_exists(holders.#job)",
                       ExpressionAttributeNames={"#job": job_id,
                                                 "#tenant": _tenant_of_holder(job_id)})

    def holders(self, model: str) -> dict[str, float]:
        """Job id -> lease end, for the jobs holding the model's slots."""
        return (self._t.read(_key(model)) or {}).get("holders", {})

    def in_flight(self, model: str, tenant: str) -> int:
        """How many of the model's slots the tenant's jobs hold."""
        item = self._t.read(_key(model)) or {}
        return sum(1 for job_id in item.get("holders", {})
                   if item.get(_tenant_of_holder(job_id)) == tenant)


def _tenant_of_holder(job_id: str) -> str:
    """The SLOTS item's attribute naming whose job holds a slot (beside `holders`, so
    that items written before it need no new map)."""
    return f"tenant#{job_id}"


def queue_entry(model: str, queued_at: float, job_id: str, priority: str = "batch",
                start: float = 0.0, tenant: str = BUCKET_TENANT) -> dict[str, str]:
    """The job fields that put it in the queue index (QUEUE_ATTRIBUTES take it out):
    its priority's rank, then its start tag, then its age; its tenant rides along
    (last: it orders nothing), so that the index alone tells who waits (the gauges)."""
    return {"queue": f"{QUEUE_PK}{model}",
            "queued_order": f"{PRIORITIES.index(priority)}#{start:018.6f}#{queued_at:017.3f}"
                            f"#{job_id}#{tenant}"}


def parse_order(order: str) -> tuple[str, float, str | None]:
    """The priority, start tag and tenant a queued_order carries (tenant None: an
    order written before tenants rode along)."""
    rank, start, _, _, *tenant = order.split("#", 4)  # the job id has no '#'
    return PRIORITIES[int(rank)], float(start), tenant[0] if tenant else None


def tenant_of(owner: str | None) -> str:
    return owner or BUCKET_TENANT


def turn_clock(priority: str) -> str:
    """The TURNS item's attribute with the priority's clock."""
    return f"clock#{priority}"


def turn_end(priority: str, tenant: str) -> str:
    """The TURNS item's attribute with where the tenant's last job of the priority ends."""
    return f"end#{priority}#{tenant}"


def tenants_of(turns: dict[str, Any]) -> set[str]:
    """The tenants a TURNS item has a turn for (its `end#<priority>#<tenant>` attributes)."""
    return {name.split("#", 2)[2] for name in turns if name.startswith("end#")}


def _turns_key(model: str) -> dict[str, str]:
    return {"pk": f"{TURNS_PK}{model}", "sk": TURNS_SK}


class QueueIndex:
    """The waiting jobs of each model, oldest first. The index is eventually
    consistent: a job queued a moment ago may be missing, one just admitted may show."""

    def __init__(self, table: Table) -> None:
        self._t = table

    def next_up(self, model: str, limit: int) -> list[tuple[str, str]]:
        """The first `limit` waiting jobs in their turn: (job id, queued_order)."""
        answer = self._t.table.query(**self._query(model), Limit=limit)
        return [(item["job_id"], item["queued_order"]) for item in answer["Items"]]

    def entry(self, model: str, priority: str, tenant: str, share: float, queued_at: float,
              job_id: str) -> dict[str, str]:
        """Take the job's turn (the tenant's next start tag) and return the fields that
        queue it. Optimistic: a writer that lost a race reads again."""
        key, end = _turns_key(model), turn_end(priority, tenant)
        for _ in range(20):
            item = self._t.read(key) or {}
            last = item.get(end)
            start = max(float(item.get(turn_clock(priority), 0)), float(last or 0))
            if applied(self._t.table.update_item, Key=key, UpdateExpression="SET #end = :end",
                       ConditionExpression="attribute_not_exists(#end)" if last is None
                       else "#end = :last",
                       ExpressionAttributeNames={"#end": end},
                       ExpressionAttributeValues={":end": to_dynamo(start + 1 / share),
                                                  **({} if last is None else {
                                                      ":last": to_dynamo(last)})}):
                return queue_entry(model, queued_at, job_id, priority, start, tenant)
        raise RuntimeError(f"no turn taken for {job_id} on {model}: too many writers at once")

    def served(self, model: str, order: str) -> None:
        """A job of this turn was admitted: its priority's clock moves up to its start."""
        priority, start, _ = parse_order(order)
        applied(self._t.table.update_item, Key=_turns_key(model),
                UpdateExpression="SET #clock = :start",
                ConditionExpression="attribute_not_exists(#clock) OR #clock < :start",
                ExpressionAttributeNames={"#clock": turn_clock(priority)},
                ExpressionAttributeValues={":start": to_dynamo(start)})

    def waiting(self, model: str) -> dict[str, int]:
        """Tenant -> its jobs waiting for the model, from the index's keys alone (1 MB
        of index a page); every tenant that ever queued for it is there, 0 if none wait."""
        waiting = dict.fromkeys(tenants_of(self._t.read(_turns_key(model)) or {}), 0)
        query: dict[str, Any] = {**self._query(model), "ProjectionExpression": "queued_order"}
        while True:
            answer = self._t.table.query(**query)
            for item in answer["Items"]:
                tenant = parse_order(item["queued_order"])[2] or UNKNOWN_TENANT
                waiting[tenant] = waiting.get(tenant, 0) + 1
            if "LastEvaluatedKey" not in answer:
                return waiting
            query["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    @staticmethod
    def _query(model: str) -> dict[str, Any]:
        return {"IndexName": QUEUE_INDEX, "KeyConditionExpression": "#queue = :queue",
                "ExpressionAttributeNames": {"#queue": "queue"},
                "ExpressionAttributeValues": {":queue": f"{QUEUE_PK}{model}"}}
