"""What every stage works with: the settings and the adapters, passed in so
that no stage knows about Lambda and tests can run them against moto and the
provider emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tryon.adapters.integrations import Integrations
from tryon.adapters.messaging import JobQueue, Notifier, Workflow
from tryon.adapters.storage import ObjectStorage
from tryon.adapters.store import JobStore
from tryon.pacing import CallPacer
from tryon.providers import ProviderClients
from tryon.settings import Settings


@dataclass
class Context:
    settings: Settings
    store: JobStore
    storage: ObjectStorage
    notifier: Notifier
    workflow: Workflow
    admissions: JobQueue  # admitted jobs -> the submit function
    preparations: JobQueue  # jobs to prepare again (another model) -> the intake function
    provider: Callable[[], ProviderClients]
    pacer: CallPacer
    integrations: Integrations  # the HTTP API's callers, keys and quotas
    sleep: Callable[[float], None] = time.sleep
    on_job: Callable[[str], None] = field(default=lambda job_id: None)
    # A metric the alarms watch (JobsFailed, ModelRetired, BudgetReached, ...).
    count: Callable[[str], None] = field(default=lambda name: None)

    def clock(self) -> float:
        return self.settings.timebase.now()
