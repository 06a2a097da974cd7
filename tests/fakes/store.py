"""In-memory repositories of the jobs table (tryon.ports), with the conditional
writes of the DynamoDB ones: a write whose condition does not hold answers False
and changes nothing; a status change the transition table refuses raises."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Iterable
from typing import Any

from tryon.adapters.batches import BATCH_KEPT, tally
from tryon.adapters.checked_images import CHECK_LEASE_SECONDS, CHECKED_TTL_SECONDS
from tryon.adapters.integrations import SETTINGS, Integration
from tryon.adapters.jobs import check_fields, check_transition
from tryon.adapters.provider_memory import DURATION_PLACES
from tryon.adapters.slots import (
    QUEUE_PK,
    UNKNOWN_TENANT,
    parse_order,
    queue_entry,
    tenants_of,
    turn_clock,
    turn_end,
)
from tryon.job_record import BILLING_FIELDS, JobRecord, JobStatus
from tryon.jobs import shard_of


class FakeJobs:
    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}

    def create(self, job: JobRecord, now: float) -> bool:
        if job.job_id in self.records:
            return False
        self.records[job.job_id] = copy.deepcopy(job)
        return True

    def get(self, job_id: str) -> JobRecord | None:
        return copy.deepcopy(self.records.get(job_id))

    def get_many(self, job_ids: list[str]) -> list[JobRecord]:
        return [copy.deepcopy(self.records[j]) for j in job_ids if j in self.records]

    def transition(self, job_id: str, *, expect: Iterable[JobStatus], to: JobStatus,
                   timeline: dict[str, float] | None = None,
                   increment: dict[str, int] | None = None, remove: Iterable[str] = (),
                   **fields: Any) -> bool:
        expected = check_transition(expect, to)
        check_fields({*fields, *(increment or {}), *remove})
        job = self.records.get(job_id)
        if job is None or job.status not in expected:
            return False
        self._apply(job, {**fields, "status": to}, timeline, increment, remove)
        return True

    def update(self, job_id: str, *, timeline: dict[str, float] | None = None,
               increment: dict[str, int] | None = None, remove: Iterable[str] = (),
               only_if_absent: str | None = None, **fields: Any) -> bool:
        check_fields({*fields, *(increment or {}), *remove})
        job = self.records.get(job_id)
        if job is None or (only_if_absent and getattr(job, only_if_absent) is not None):
            return False
        self._apply(job, fields, timeline, increment, remove)
        return True

    def record_request_id(self, job_id: str, call: str, request_id: str | None) -> None:
        if request_id:
            self.update(job_id, **{f"last_{call}_request_id": request_id})

    def of_batch(self, batch_id: str, *, limit: int, after: str | None
                 ) -> tuple[list[JobRecord], str | None]:
        ordered = sorted((j for j in self.records.values()
                          if j.batch_id == batch_id and j.batch_order),
                         key=lambda j: (j.batch_order, j.job_id))
        if after:
            ordered = [j for j in ordered if f"{j.batch_order}#{j.job_id}" > after]
        page = ordered[:limit]
        more = len(ordered) > limit
        return copy.deepcopy(page), (f"{page[-1].batch_order}#{page[-1].job_id}"
                                     if more else None)

    def owned(self, owner: str, *, status: str | None, limit: int,
              after: str | None) -> tuple[list[JobRecord], str | None]:
        mine = sorted((j for j in self.records.values() if j.owner == owner and j.owner_order),
                      key=lambda j: j.owner_order, reverse=True)
        if after:
            mine = [j for j in mine if j.owner_order < after]
        page = [j for j in mine if status is None or j.status == status][:limit]
        more = page and any(j.owner_order < page[-1].owner_order for j in mine)
        return copy.deepcopy(page), (page[-1].owner_order if more else None)

    def erase(self, job_id: str, now: float) -> JobRecord | None:
        job = self.records.get(job_id)
        if job is None or not job.ended:
            return None
        kept = {k: v for k, v in dataclasses.asdict(job).items() if k in BILLING_FIELDS}
        kept["erased_at"] = job.erased_at or now
        self.records[job_id] = JobRecord(**kept)
        return copy.deepcopy(self.records[job_id])

    def _apply(self, job: JobRecord, fields: dict[str, Any], timeline: dict | None,
               increment: dict | None, remove: Iterable[str]) -> None:
        changes = {k: copy.deepcopy(v) for k, v in fields.items() if v is not None}
        for attr, by in (increment or {}).items():
            changes[attr] = (getattr(job, attr) or 0) + by
        if timeline:
            changes["timeline"] = {**job.timeline, **timeline}
        defaults = {f.name: f for f in dataclasses.fields(JobRecord)}
        for attr in remove:  # back to its default, as an attribute DynamoDB removed
            spec = defaults[attr]
            changes[attr] = (spec.default_factory() if spec.default is dataclasses.MISSING
                             else spec.default)
        self.records[job.job_id] = dataclasses.replace(job, **changes)


class FakeBatches:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.ends: dict[tuple[str, str], dict[str, str]] = {}  # (batch, shard) -> job -> end
        self.canceling_ids: set[str] = set()

    def create(self, batch: dict[str, Any], now: float) -> bool:
        if batch["batch_id"] in self.items:
            return False
        self.items[batch["batch_id"]] = {k: v for k, v in copy.deepcopy(batch).items()
                                         if v is not None}
        return True

    def get(self, batch_id: str) -> dict[str, Any] | None:
        batch = copy.deepcopy(self.items.get(batch_id))
        if batch is None or "shards" not in batch:
            return batch
        outcomes = [end for shard in batch["shards"]
                    for end in self.ends.get((batch_id, shard), {}).values()]
        return {**batch, **tally(outcomes)}

    def record(self, batch_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.items.get(batch_id))

    def start_cancel(self, batch_id: str, by: str, now: float) -> dict[str, Any]:
        batch = self.items[batch_id]
        batch.setdefault("cancel", {"at": now, "by": by, "canceled": {}, "running": 0})
        if not batch["cancel"].get("done_at"):
            self.canceling_ids.add(batch_id)
        return copy.deepcopy(batch)

    def note_cancel(self, batch_id: str, *, after: str | None, seen: int,
                    canceled: dict[str, int], running: int, done: bool, now: float
                    ) -> dict[str, Any]:
        self.add_canceled(batch_id, canceled)
        cancel = self.items[batch_id]["cancel"]
        cancel["running"] = running
        cancel["seen"] = seen
        if after is None:
            cancel.pop("after", None)
        else:
            cancel["after"] = after
        if done:
            cancel["done_at"] = now
            self.canceling_ids.discard(batch_id)
        return copy.deepcopy(self.items[batch_id])

    def add_canceled(self, batch_id: str, canceled: dict[str, int]) -> None:
        counts = self.items[batch_id]["cancel"]["canceled"]
        for model, looks in canceled.items():
            counts[model] = counts.get(model, 0) + looks

    def canceling(self) -> list[str]:
        return sorted(self.canceling_ids)

    def add_retry(self, batch_id: str, retry_id: str) -> None:
        retries = self.items[batch_id].setdefault("retries", [])
        if retry_id not in retries:
            retries.append(retry_id)

    def record_end(self, batch_id: str, job_id: str, status: str, model: str | None = None,
                   order: str | None = None) -> dict[str, Any]:
        batch = self.items[batch_id]  # KeyError: as the real one's missing record
        if "shards" not in batch:  # recorded before the shards
            batch.setdefault("ended_jobs", set()).add(job_id)
            return copy.deepcopy(batch)
        shard = str(shard_of(order))
        ends = self.ends.setdefault((batch_id, shard), {})
        ends[job_id] = status + (f"#{model}" if status == "SUCCEEDED" and model else "")
        if len(ends) >= batch["shards"][shard]:
            batch.setdefault("shards_done", set()).add(shard)
        return copy.deepcopy(batch)

    def claim_notification(self, batch_id: str, now: float) -> bool:
        batch = self.items.get(batch_id)
        if batch is None or "notified_at" in batch:
            return False
        batch["notified_at"] = now
        return True

    def release_notification(self, batch_id: str) -> None:
        self.items[batch_id].pop("notified_at", None)

    def erase(self, batch_id: str, now: float) -> dict[str, Any] | None:
        batch = self.items.get(batch_id)
        if batch is None:
            return None
        self.items[batch_id] = {k: v for k, v in batch.items() if k in BATCH_KEPT}
        self.items[batch_id].setdefault("erased_at", now)
        return copy.deepcopy(self.items[batch_id])


class FakeSlots:
    def __init__(self) -> None:
        self.held: dict[str, dict[str, float]] = {}
        self.tenants: dict[tuple[str, str], str] = {}  # (model, job id) -> whose

    def acquire(self, model: str, job_id: str, lease_until: float, limit: int,
                tenant: str | None = None) -> bool:
        holders = self.held.setdefault(model, {})
        if job_id not in holders and len(holders) >= limit:
            return False
        holders[job_id] = lease_until
        if tenant:
            self.tenants[(model, job_id)] = tenant
        return True

    def in_flight(self, model: str, tenant: str) -> int:
        return sum(1 for job_id in self.held.get(model, {})
                   if self.tenants.get((model, job_id)) == tenant)

    def renew(self, model: str, job_id: str, lease_until: float) -> bool:
        if job_id not in self.held.get(model, {}):
            return False
        self.held[model][job_id] = lease_until
        return True

    def release(self, model: str, job_id: str) -> bool:
        self.tenants.pop((model, job_id), None)
        return self.held.get(model, {}).pop(job_id, None) is not None

    def holders(self, model: str) -> dict[str, float]:
        return dict(self.held.get(model, {}))


class FakeQueue:
    """The `queue` index over the fake jobs (consistent: the real one may lag)."""

    def __init__(self, jobs: FakeJobs) -> None:
        self._jobs = jobs
        self.turns: dict[tuple[str, str], float] = {}  # (model, TURNS attribute) -> tag

    def next_up(self, model: str, limit: int) -> list[tuple[str, str]]:
        waiting = sorted((j for j in self._jobs.records.values()
                          if j.queue == f"{QUEUE_PK}{model}" and j.queued_order),
                         key=lambda j: j.queued_order)
        return [(j.job_id, j.queued_order) for j in waiting[:limit]]

    def entry(self, model: str, priority: str, tenant: str, share: float, queued_at: float,
              job_id: str) -> dict[str, str]:
        clock, end = (model, turn_clock(priority)), (model, turn_end(priority, tenant))
        start = max(self.turns.get(clock, 0.0), self.turns.get(end, 0.0))
        self.turns[end] = start + 1 / share
        return queue_entry(model, queued_at, job_id, priority, start, tenant)

    def served(self, model: str, order: str) -> None:
        priority, start, _ = parse_order(order)
        clock = (model, turn_clock(priority))
        self.turns[clock] = max(self.turns.get(clock, 0.0), start)

    def waiting(self, model: str) -> dict[str, int]:
        waiting = dict.fromkeys(tenants_of({a: 0 for m, a in self.turns if m == model}), 0)
        for _, order in self.next_up(model, 10**9):
            tenant = parse_order(order)[2] or UNKNOWN_TENANT
            waiting[tenant] = waiting.get(tenant, 0) + 1
        return waiting


class FakeBudget:
    def __init__(self, jobs: FakeJobs) -> None:
        self._jobs = jobs
        self.days: dict[str, dict[str, Any]] = {}
        self.limit: int | None = None

    def charge(self, job_id: str, day: str, limit: int, now: float) -> bool:
        job = self._jobs.records.get(job_id)
        if job is not None and job.budget_day:
            return True
        counter = self.days.setdefault(day, {"spent": 0})
        if limit <= 0 or counter["spent"] >= limit or job is None:
            return False
        counter["spent"] += 1
        self._jobs.records[job_id] = dataclasses.replace(job, budget_day=day)
        return True

    def refund(self, job_id: str) -> None:
        job = self._jobs.records.get(job_id)
        if job is None or not job.budget_day:
            return
        self._jobs.records[job_id] = dataclasses.replace(job, budget_day=None)
        self.days[job.budget_day]["spent"] -= 1

    def spent(self, day: str) -> dict[str, Any]:
        counter = self.days.get(day, {})
        return {"spent": counter.get("spent", 0), "reached_at": counter.get("reached_at")}

    def claim_notice(self, day: str, now: float) -> bool:
        counter = self.days.setdefault(day, {"spent": 0})
        if "reached_at" in counter:
            return False
        counter["reached_at"] = now
        return True

    def release_notice(self, day: str) -> None:
        self.days.get(day, {}).pop("reached_at", None)

    def override(self) -> int | None:
        return self.limit

    def set_override(self, limit: int | None) -> None:
        self.limit = limit


class FakeTaskOwners:
    def __init__(self) -> None:
        self.owners: dict[str, str] = {}

    def claim(self, task_id: str, job_id: str, now: float) -> bool:
        return self.owners.setdefault(task_id, job_id) == job_id

    def owner(self, task_id: str) -> str | None:
        return self.owners.get(task_id)


class FakeDurations:
    def __init__(self) -> None:
        self.samples: dict[str, dict[int, float]] = {}

    def record(self, model: str, task_id: str, seconds: float, *,
               since: str = "start") -> None:
        place = int(hashlib.sha256(task_id.encode()).hexdigest(), 16) % DURATION_PLACES
        self.samples.setdefault(f"{model}/{since}", {})[place] = seconds

    def recent(self, model: str, *, since: str = "start") -> list[float]:
        return list(self.samples.get(f"{model}/{since}", {}).values())


class FakeRetired:
    def __init__(self) -> None:
        self.refused: dict[str, tuple[float, dict[str, str]]] = {}

    def remember(self, model: str, until: float, answer: dict[str, str]) -> None:
        self.refused[model] = (until, answer)

    def until(self, model: str) -> float:
        return self.refused.get(model, (0.0, {}))[0]


class FakeMessageErrors:
    def __init__(self) -> None:
        self.errors: dict[str, dict[str, str]] = {}

    def remember(self, message_id: str, error: dict[str, str], now: float) -> None:
        self.errors[message_id] = error

    def last(self, message_id: str) -> dict[str, str] | None:
        return self.errors.get(message_id)


class FakeLimitNotes:
    def __init__(self) -> None:
        self.notes: dict[str, dict[str, Any]] = {}

    def read(self) -> dict[str, dict[str, Any]]:
        return {model: dict(note) for model, note in self.notes.items()}

    def record_read(self, model: str, limits: dict[str, int] | None, now: float) -> None:
        note = self.notes.setdefault(model, {})
        note.update(limits=dict(limits or {}), read_at=now)
        note.pop("read_error", None), note.pop("failed_at", None)

    def record_failure(self, model: str, error: dict[str, str], now: float) -> bool:
        note = self.notes.setdefault(model, {})
        first = "read_error" not in note
        if first:
            note["read_error"] = error
        note["failed_at"] = now
        return first

    def hold_until(self, model: str, note: str, until: float, now: float) -> bool:
        notes = self.notes.setdefault(model, {})
        if notes.get(note, 0) >= now:
            return False
        notes[note] = until
        return True


class FakeCheckedImages:
    """What preflight found per image version and rules (expiring as the real one), and
    the claims to check one."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str, str], tuple[dict[str, Any] | None, float]] = {}

    def get(self, bucket: str, key: str, version_id: str, rules: str, now: float
            ) -> dict[str, Any] | None:
        outcome, expires = self.items.get((bucket, key, version_id, rules), (None, 0.0))
        return outcome if expires > now else None

    def claim(self, bucket: str, key: str, version_id: str, rules: str, now: float) -> bool:
        _, expires = self.items.get((bucket, key, version_id, rules), (None, 0.0))
        if expires > now:
            return False
        self.items[bucket, key, version_id, rules] = (None, now + CHECK_LEASE_SECONDS)
        return True

    def put(self, bucket: str, key: str, version_id: str, rules: str,
            outcome: dict[str, Any], now: float) -> None:
        self.items[bucket, key, version_id, rules] = (outcome, now + CHECKED_TTL_SECONDS)


class FakeIntegrations:
    """The integration records intake reads and the upload counters the API counts,
    with the real one's all-or-none condition, and the image quotas intake charges; the
    rest of tryon.adapters.integrations (keys) is tested on moto."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.uploads: dict[tuple[str, str], dict[str, int]] = {}
        self.quotas: dict[tuple[str, str], int] = {}

    def charge_uploads(self, name: str, day: str, forms: int, size: int, *, max_forms: int,
                       max_bytes: int, now: float) -> bool:
        used = self.uploads.setdefault((name, day), {"forms": 0, "bytes": 0})
        if used["forms"] + forms > max_forms or used["bytes"] + size > max_bytes:
            return False
        used["forms"] += forms
        used["bytes"] += size
        return True

    def uploads_used(self, name: str, day: str) -> dict[str, int]:
        return dict(self.uploads.get((name, day), {"forms": 0, "bytes": 0}))

    def get(self, name: str) -> dict[str, Any] | None:
        return self.items.get(name)

    def for_quota(self, name: str, default_quota: int) -> Integration | None:
        found = self.items.get(name)
        if found is None:
            return None
        share = found.get("budget_share")
        return Integration(name, int(found.get("daily_quota", default_quota)),
                           budget_share=None if share is None else float(share))

    def charge_quota(self, name: str, day: str, count: int, quota: int, now: float) -> bool:
        used = self.quotas.get((name, day), 0)
        if used + count > quota:
            return False
        self.quotas[name, day] = used + count
        return True

    def refund_quota(self, name: str, day: str, count: int) -> None:
        self.quotas[name, day] = self.quotas.get((name, day), 0) - count

    def quota_used(self, name: str, day: str) -> int:
        return self.quotas.get((name, day), 0)

    def settings(self, name: str) -> dict[str, Any]:
        return {field: value for field, value in self.items.get(name, {}).items()
                if field in SETTINGS}
