"""What every stage works with: the settings and the ports (tryon.ports), passed in
so that no stage knows about Lambda, and tests can run them on in-memory fakes
(tests/fakes) or on moto and the provider emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tryon import ports
from tryon.capacity import Capacity
from tryon.settings import Settings


@dataclass
class Context:
    settings: Settings
    jobs: ports.Jobs
    batches: ports.Batches
    slots: ports.Slots
    queue: ports.Queue
    budget: ports.Budget
    task_owners: ports.TaskOwners
    durations: ports.Durations
    retired: ports.RetiredModels
    message_errors: ports.MessageErrors
    storage: ports.Storage
    notifier: ports.Notifications
    workflow: ports.Workflows
    admissions: ports.Messages  # admitted jobs -> the submit function
    preparations: ports.Messages  # jobs to prepare again (another model) -> intake
    provider: Callable[[], Any]  # -> ProviderClients (.tasks, .generation) of the key
    pacer: Any  # tryon.pacing.CallPacer: wait_turn(operation)
    capacity: Capacity  # each model's limits in force, and what the stack does with them
    limit_notes: ports.LimitNotes  # what the capacity is read from (the sweep writes it)
    integrations: Any  # tryon.adapters.integrations.Integrations: the API's callers
    checked_images: ports.CheckedImages  # each image version checked once per stack
    # The batch expansion (a Step Functions Distributed Map over a catalogue file's
    # rows), started once per batch: its execution is named by the batch id.
    expansions: ports.Workflows
    sleep: Callable[[float], None] = time.sleep
    on_job: Callable[[str], None] = field(default=lambda job_id: None)
    # A metric the alarms watch (JobsFailed, ModelRetired, BudgetReached, ...).
    count: Callable[[str], None] = field(default=lambda name: None)

    def clock(self) -> float:
        """The pipeline's clock (tryon.settings.Timebase): every day boundary and
        timeline entry counts by it."""
        return self.settings.timebase.now()
