"""The daily image budget: a counter per UTC day, a mark on each job that has its
place in one, the day's one `budget.reached` claim, and the operator's override."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tryon.adapters.dynamo import Table, applied, from_dynamo, is_condition_failure, to_dynamo
from tryon.adapters.jobs import job_key

BUDGET_PK, BUDGET_SK = "BUDGET#", "BUDGET"
BUDGET_LIMIT_KEY = {"pk": f"{BUDGET_PK}LIMIT", "sk": BUDGET_SK}
BUDGET_TTL_SECONDS = 35 * 24 * 3600


def _day(day: str) -> dict[str, str]:
    return {"pk": f"{BUDGET_PK}{day}", "sk": BUDGET_SK}


class BudgetRepository:
    def __init__(self, table: Table, credentials: Table) -> None:
        self._t = table
        # The override lives with the credentials: only the operator writes it.
        self._credentials = credentials

    def charge(self, job_id: str, day: str, limit: int, now: float) -> bool:
        """Count the job's image against the day's budget, once per job. True if the
        job has its image in a budget, now or from before; False if the day is spent.

        A job charged before is read first: a queued job is charged again when it
        is admitted, and a read is cheaper than the two writes that would find it
        out. Then two conditional writes, no transaction: the day's counter is raised
        first (while under the limit), then the job is marked; a job that another
        writer marked meanwhile gives the count back. A crash in between over-counts
        by one, the safe side for a spending limit."""
        if self._charged(job_id):
            return True
        if limit <= 0:  # the condition below lets a day's first image through
            return False
        if not applied(self._t.table.update_item, Key=_day(day),
                       UpdateExpression="ADD spent :one SET expires_at = :ttl",
                       ConditionExpression="attribute_not_exists(spent) OR spent < :limit",
                       ExpressionAttributeValues={":one": 1, ":limit": limit,
                                                  ":ttl": int(now) + BUDGET_TTL_SECONDS}):
            return self._charged(job_id)  # charged before: its place
        if applied(self._t.table.update_item, Key=job_key(job_id),
                   UpdateExpression="SET budget_day = :day",
                   ConditionExpression="attribute_exists(pk) AND attribute_not_exists(budget_day)",
                   ExpressionAttributeValues={":day": day}):
            return True
        self._add(day, -1)
        return self._charged(job_id)

    def refund(self, job_id: str) -> None:
        """Give back the place a job took in its day's budget (a job canceled before
        its submit); once per job."""
        try:
            old = self._t.table.update_item(
                Key=job_key(job_id), UpdateExpression="REMOVE budget_day",
                ConditionExpression="attribute_exists(budget_day)",
                ReturnValues="ALL_OLD")["Attributes"]
        except ClientError as exc:
            if is_condition_failure(exc):
                return
            raise
        self._add(old["budget_day"], -1)

    def spent(self, day: str) -> dict[str, Any]:
        """The day's counter: `spent` images, and `reached_at` once the budget ran out."""
        item = self._t.read(_day(day)) or {}
        return {"spent": int(item.get("spent", 0)), "reached_at": from_dynamo(
            item.get("reached_at"))}

    def claim_notice(self, day: str, now: float) -> bool:
        """True once a day: for the one caller that sends `budget.reached`."""
        return applied(self._t.table.update_item, Key=_day(day),
                       UpdateExpression="SET reached_at = :now",
                       ConditionExpression="attribute_not_exists(reached_at)",
                       ExpressionAttributeValues={":now": to_dynamo(float(now))})

    def release_notice(self, day: str) -> None:
        self._t.table.update_item(Key=_day(day), UpdateExpression="REMOVE reached_at")

    def override(self) -> int | None:
        """The operator's override of the stack's DailyImageBudget, if one is set."""
        item = self._credentials.read(BUDGET_LIMIT_KEY)
        return int(item["limit"]) if item else None

    def set_override(self, limit: int | None) -> None:
        """Raise or lower the daily budget without a deployment (None: the parameter's)."""
        if limit is None:
            self._credentials.table.delete_item(Key=BUDGET_LIMIT_KEY)
        else:
            self._credentials.table.put_item(Item={**BUDGET_LIMIT_KEY, "limit": int(limit)})

    def _charged(self, job_id: str) -> bool:
        return "budget_day" in (self._t.read(job_key(job_id)) or {})

    def _add(self, day: str, by: int) -> None:
        self._t.table.update_item(Key=_day(day), UpdateExpression="ADD spent :by",
                                  ExpressionAttributeValues={":by": by})
