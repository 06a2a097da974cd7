"""Job records on the jobs table: the only place a record is built from an item or
written. A status changes only through `transition`, which names the statuses it
may leave (a conditional write) and is checked against `job_record.TRANSITIONS`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tryon.adapters.dynamo import RECORD_TTL_SECONDS, Table, applied, from_dynamo, to_dynamo
from tryon.job_record import (
    BILLING_FIELDS,
    JOB_FIELDS,
    PROVIDER_CALLS,
    TERMINAL_STATUSES,
    TRANSITIONS,
    JobRecord,
    JobStatus,
)

JOB_PK, JOB_SK = "JOB#", "JOB"
BATCH_INDEX = "batch"
OWNER_INDEX = "owner"  # an integration's jobs (API requests), by time


def job_key(job_id: str) -> dict[str, str]:
    return {"pk": f"{JOB_PK}{job_id}", "sk": JOB_SK}


class TransitionRefused(ValueError):
    """A status change `job_record.TRANSITIONS` does not allow: a bug, not a race."""


def check_transition(expect: Iterable[JobStatus], to: JobStatus) -> list[JobStatus]:
    expected = [JobStatus(status) for status in expect]
    refused = [status for status in expected if to not in TRANSITIONS[status]]
    if not expected or refused:
        raise TransitionRefused(f"no transition from {refused or expected} to {to}")
    return expected


def check_fields(fields: Iterable[str]) -> None:
    """Only a JobRecord's fields may be written, and its status only by a transition."""
    refused = (set(fields) - JOB_FIELDS) | ({"status"} & set(fields))
    if refused:
        raise ValueError(f"not job fields to set: {sorted(refused)}")


class JobRepository:
    def __init__(self, table: Table) -> None:
        self._t = table

    def create(self, job: JobRecord, now: float) -> bool:
        """Insert a new job; False if it already exists (a duplicate delivery)."""
        item = {**job_key(job.job_id), "expires_at": int(now) + RECORD_TTL_SECONDS,
                **job.to_item()}
        return applied(self._t.table.put_item, Item=to_dynamo(item),
                       ConditionExpression="attribute_not_exists(pk)")

    def get(self, job_id: str) -> JobRecord | None:
        item = self._t.read(job_key(job_id))
        return JobRecord.from_item(item) if item else None

    def get_many(self, job_ids: list[str]) -> list[JobRecord]:
        """The job records, in the order asked (BatchGetItem, 100 at a time)."""
        found: dict[str, JobRecord] = {}
        name = self._t.table.name
        for start in range(0, len(job_ids), 100):
            keys = [job_key(j) for j in job_ids[start:start + 100]]
            request = {name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self._t.dynamodb.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(name, []):
                    found[item["job_id"]] = JobRecord.from_item(from_dynamo(item))
                request = answer.get("UnprocessedKeys") or None
        return [found[j] for j in job_ids if j in found]

    def transition(self, job_id: str, *, expect: Iterable[JobStatus], to: JobStatus,
                   timeline: dict[str, float] | None = None,
                   increment: dict[str, int] | None = None, remove: Iterable[str] = (),
                   **fields: Any) -> bool:
        """Move the job to `to` (with `fields` set) if it is in one of `expect`; False
        when it is not (another writer moved it first)."""
        return self._write(job_id, fields, timeline=timeline, increment=increment,
                           remove=remove, status=to, expect=check_transition(expect, to))

    def update(self, job_id: str, *, timeline: dict[str, float] | None = None,
               increment: dict[str, int] | None = None, remove: Iterable[str] = (),
               only_if_absent: str | None = None, **fields: Any) -> bool:
        """Set fields of an existing job, whatever its status; False when
        `only_if_absent` names a field it already has."""
        return self._write(job_id, fields, timeline=timeline, increment=increment,
                           remove=remove, only_if_absent=only_if_absent)

    def record_request_id(self, job_id: str, call: str, request_id: str | None) -> None:
        """The provider's request id of the job's last `call` (one of PROVIDER_CALLS)."""
        if request_id and call in PROVIDER_CALLS:
            self.update(job_id, **{f"last_{call}_request_id": request_id})

    def erase(self, job_id: str, now: float) -> JobRecord | None:
        """Cut an ended job's record to BILLING_FIELDS, marked `erased_at` (its first
        erasure's time); None when there is no such ended job (nothing changed)."""
        item = self._t.read(job_key(job_id))
        if not item or JobStatus(item["status"]) not in TERMINAL_STATUSES:
            return None
        kept = {k: v for k, v in item.items() if k in BILLING_FIELDS | {"expires_at"}}
        kept.setdefault("erased_at", now)
        terminal = {f":s{i}": s.value for i, s in enumerate(sorted(TERMINAL_STATUSES))}
        if not applied(self._t.table.put_item, Item=to_dynamo({**job_key(job_id), **kept}),
                       ConditionExpression=f"#status IN ({', '.join(terminal)})",
                       ExpressionAttributeNames={"#status": "status"},
                       ExpressionAttributeValues=terminal):
            return None
        return JobRecord.from_item({k: v for k, v in kept.items() if k != "expires_at"})

    def of_batch(self, batch_id: str, *, limit: int, after: str | None
                 ) -> tuple[list[JobRecord], str | None]:
        """A batch's jobs in its order, from the sparse `batch` index: up to `limit`
        after the position `after` (`<batch_order>#<job id>`), and the position to go
        on from (None at the end)."""
        start = None
        if after:
            order, job_id = after.rsplit("#", 1)
            start = {"batch_id": batch_id, "batch_order": order, **job_key(job_id)}
        page = self._t.table.query(
            IndexName=BATCH_INDEX, Limit=limit, KeyConditionExpression="batch_id = :batch",
            ExpressionAttributeValues={":batch": batch_id},
            **({"ExclusiveStartKey": start} if start else {}))
        ids = [item["pk"].removeprefix(JOB_PK) for item in page["Items"]]
        found = {job.job_id: job for job in self.get_many(ids)}
        last = page.get("LastEvaluatedKey")
        return ([found[i] for i in ids if i in found],
                f"{last['batch_order']}#{last['pk'].removeprefix(JOB_PK)}" if last else None)

    def owned(self, owner: str, *, status: str | None, limit: int,
              after: str | None) -> tuple[list[JobRecord], str | None]:
        """An integration's jobs, newest first, from the sparse `owner` index: up to
        `limit` of them after the position `after` (an `owner_order`), and the
        position to go on from (None at the end)."""
        found: list[JobRecord] = []
        start = ({"owner": owner, "owner_order": after,
                  **job_key(after.rsplit("#", 1)[-1])} if after else None)
        for _ in range(10):  # a status filter may leave pages empty: a bounded look
            page = self._t.table.query(
                IndexName=OWNER_INDEX, ScanIndexForward=False, Limit=limit - len(found),
                KeyConditionExpression="#owner = :owner",
                **({"FilterExpression": "#status = :status"} if status else {}),
                ExpressionAttributeNames={"#owner": "owner",
                                          **({"#status": "status"} if status else {})},
                ExpressionAttributeValues={":owner": owner,
                                           **({":status": status} if status else {})},
                **({"ExclusiveStartKey": start} if start else {}))
            found += [JobRecord.from_item(from_dynamo(item)) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start or len(found) >= limit:
                break
        return found, (start["owner_order"] if start else None)

    def _write(self, job_id: str, fields: dict[str, Any], *, timeline: dict[str, float] | None,
               increment: dict[str, int] | None, remove: Iterable[str],
               status: JobStatus | None = None, expect: list[JobStatus] | None = None,
               only_if_absent: str | None = None) -> bool:
        remove = list(remove)
        check_fields({*fields, *(increment or {}), *remove})
        if status is not None:
            fields = {**fields, "status": status}
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets: list[str] = []

        def name(attr: str) -> str:
            names[f"#{attr}"] = attr
            return f"#{attr}"

        for i, (attr, value) in enumerate(fields.items()):
            if value is not None:
                values[f":f{i}"] = to_dynamo(value)
                sets.append(f"{name(attr)} = :f{i}")
        for i, (event, at) in enumerate((timeline or {}).items()):
            values[f":t{i}"] = to_dynamo(float(at))
            sets.append(f"{name('timeline')}.{name(event)} = :t{i}")
        for i, (attr, by) in enumerate((increment or {}).items()):
            values[f":i{i}"], values[":zero"] = by, 0
            sets.append(f"{name(attr)} = if_not_exists({name(attr)}, :zero) + :i{i}")
        expression = "SET " + ", ".join(sets) if sets else ""
        removed = [name(attr) for attr in remove]
        if removed:
            expression += " REMOVE " + ", ".join(removed)
        conditions = ["attribute_exists(pk)"]
        if expect is not None:
            keys = [f":s{i}" for i in range(len(expect))]
            values.update(zip(keys, (s.value for s in expect), strict=True))
            conditions.append(f"{name('status')} IN ({', '.join(keys)})")
        if only_if_absent:
            conditions.append(f"attribute_not_exists({name(only_if_absent)})")
        return applied(self._t.table.update_item, Key=job_key(job_id),
                       UpdateExpression=expression.strip(),
                       ConditionExpression=" AND ".join(conditions),
                       ExpressionAttributeNames=names,
                       **({"ExpressionAttributeValues": values} if values else {}))
