"""The repositories of the jobs table (and the budget override, in the credentials
table), built on one DynamoDB resource."""

from __future__ import annotations

from typing import Any

from tryon.adapters.batches import BatchRepository
from tryon.adapters.budget import BudgetRepository
from tryon.adapters.checked_images import CheckedImages
from tryon.adapters.dynamo import Table
from tryon.adapters.jobs import JobRepository
from tryon.adapters.message_errors import MessageErrors
from tryon.adapters.provider_memory import Durations, LimitNotes, RetiredModels, TaskOwners
from tryon.adapters.slots import QueueIndex, SlotRepository


def repositories(table_name: str, dynamodb: Any, credentials_table: str) -> dict[str, Any]:
    """The Context's store fields, on the jobs table."""
    table = Table(table_name, dynamodb)
    return {"jobs": JobRepository(table), "batches": BatchRepository(table),
            "slots": SlotRepository(table), "queue": QueueIndex(table),
            "budget": BudgetRepository(table, Table(credentials_table, dynamodb)),
            "task_owners": TaskOwners(table),
            "durations": Durations(table), "retired": RetiredModels(table),
            "message_errors": MessageErrors(table), "limit_notes": LimitNotes(table),
            "checked_images": CheckedImages(table)}
