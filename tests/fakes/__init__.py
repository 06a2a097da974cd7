"""In-memory fakes of every port the stages use (tryon.ports), and `FakeStack`: a
Context on them with a clock the test moves. Stage logic is tested on these in
milliseconds; tests/unit/test_repositories.py runs the same checks on the real
DynamoDB repositories (moto) to keep the fakes honest."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tryon.capacity import Capacity
from tryon.job_record import JobRecord, JobStatus
from tryon.models.registry import model_spec
from tryon.providers import ProviderClients
from tryon.settings import Settings, Timebase
from tryon.stages.admission import admit_or_queue
from tryon.stages.context import Context

from fakes.aws import FakeExpansions, FakeMessages, FakeNotifier, FakeStorage, FakeWorkflow
from fakes.provider import FakeProvider
from fakes.state_machine import run as run_execution
from fakes.store import (
    FakeBatches,
    FakeBudget,
    FakeCheckedImages,
    FakeDurations,
    FakeIntegrations,
    FakeJobs,
    FakeLimitNotes,
    FakeMessageErrors,
    FakeQueue,
    FakeRetired,
    FakeSlots,
    FakeTaskOwners,
)

DAY_ONE = 1_795_000_000.0 - 1_795_000_000.0 % 86400 + 3600  # 2026-11-18 01:00 UTC
INBOX, RESULTS = "inbox", "results"


class ManualClock:
    """Real epoch seconds that move only when a test (or a stage's sleep) moves them."""

    def __init__(self, now: float = DAY_ONE) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Pacer:
    """Every provider call's turn, counted (the real pacer is tested on its own)."""

    def __init__(self) -> None:
        self.turns: list[str] = []
        self.far: set[str] = set()  # operations whose next turn is not soon

    def wait_turn(self, operation: str) -> None:
        self.turns.append(operation)

    def turn_soon(self, operation: str, within: float) -> bool:
        return operation not in self.far

    def longest_wait(self, operation: str) -> float:
        return 0.0  # a turn here never waits


def settings(**overrides: Any) -> Settings:
    env = {"JOBS_TABLE": "jobs", "CREDENTIALS_TABLE": "credentials", "RESULTS_BUCKET": RESULTS,
           "INBOX_BUCKET": INBOX,
           "FALLBACK_MODEL": "qwen-image-3.0", "DAILY_IMAGE_BUDGET": "500",
           "MODEL_LIMITS": "", "RESULT_URL_HOSTS": "*.aliyuncs.com"}
    return dataclasses.replace(Settings.from_env(env), **overrides)


@dataclass
class FakeStack:
    """A Context on fakes, and the fakes themselves for a test to look at."""

    clock: ManualClock = field(default_factory=ManualClock)
    jobs: FakeJobs = field(default_factory=FakeJobs)
    batches: FakeBatches = field(default_factory=FakeBatches)
    slots: FakeSlots = field(default_factory=FakeSlots)
    storage: FakeStorage = field(default_factory=FakeStorage)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    workflow: FakeWorkflow = field(default_factory=FakeWorkflow)
    expansions: FakeExpansions = field(default_factory=FakeExpansions)
    admissions: FakeMessages = field(default_factory=FakeMessages)
    preparations: FakeMessages = field(default_factory=FakeMessages)
    pacer: Pacer = field(default_factory=Pacer)
    counted: list[str] = field(default_factory=list)
    integrations: FakeIntegrations = field(default_factory=FakeIntegrations)

    def __post_init__(self) -> None:
        self.budget = FakeBudget(self.jobs)
        self.queue = FakeQueue(self.jobs)
        self.task_owners, self.durations = FakeTaskOwners(), FakeDurations()
        self.retired, self.message_errors = FakeRetired(), FakeMessageErrors()
        self.limit_notes = FakeLimitNotes()
        self.checked_images = FakeCheckedImages()
        self.provider = FakeProvider(clock=self.clock)
        clients = ProviderClients(tasks=self.provider, generation=self.provider,
                                  limits=self.provider)
        stack_settings = settings(timebase=Timebase(wall=self.clock))
        self.ctx = Context(
            settings=stack_settings,
            jobs=self.jobs, batches=self.batches, slots=self.slots, queue=self.queue,
            budget=self.budget, task_owners=self.task_owners, durations=self.durations,
            retired=self.retired, message_errors=self.message_errors,
            storage=self.storage, notifier=self.notifier, workflow=self.workflow,
            admissions=self.admissions, preparations=self.preparations,
            provider=lambda: clients, pacer=self.pacer, integrations=self.integrations,
            capacity=Capacity(stack_settings, self.limit_notes, self.clock),
            limit_notes=self.limit_notes, checked_images=self.checked_images,
            expansions=self.expansions,
            sleep=self.clock.sleep, count=self.counted.append)

    def configure(self, **overrides: Any) -> None:
        """Change settings (the clock stays this stack's)."""
        self.ctx.settings = dataclasses.replace(self.ctx.settings, **overrides)
        self.ctx.capacity = Capacity(self.ctx.settings, self.limit_notes, self.clock)

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    def status(self, job_id: str) -> str:
        return self.jobs.records[job_id].status.value

    def look(self, job_id: str, model: str = "aitryon-plus", *,
             status: JobStatus = JobStatus.RECEIVED, **fields: Any) -> JobRecord:
        """A look as intake records it once its inputs are checked for `model`: a
        person and a top in the inbox (any other field may be given)."""
        ref = {"bucket": INBOX, "extension": "jpg", "content_type": "image/jpeg",
               "width": 768, "height": 1024}
        for key in ("p.jpg", "t.jpg"):
            if self.storage.describe(INBOX, key) is None:
                self.storage.put(INBOX, key, b"image " + key.encode())
        job = JobRecord(**{
            "job_id": job_id, "status": status, "model": model, "look_id": job_id,
            "source": {"bucket": INBOX, "key": "jobs/looks.json", "etag": "e"},
            "inputs": {"person": f"s3://{INBOX}/p.jpg", "top": f"s3://{INBOX}/t.jpg"},
            "submit_inputs": {"person": {**ref, "key": "p.jpg"}, "top": {**ref, "key": "t.jpg"}},
            "prepared_for": model_spec(model).input_rules.label,
            "parameters": {"resolution": -1, "restore_face": True},
            "result_stem": f"looks/looks/{job_id}", "timeline": {"received": self.clock()},
            **fields})
        assert self.jobs.create(job, self.clock())
        return job

    def admitted(self, job_id: str = "look", model: str = "aitryon-plus", **fields: Any) -> str:
        """A look that took its place in the budget and a slot of `model`, ADMITTED."""
        self.look(job_id, model, **fields)
        assert admit_or_queue(self.ctx, job_id, model, expect=[JobStatus.RECEIVED])
        return job_id

    def run(self, job_id: str) -> tuple[str, dict, list[str]]:
        """Run the job's newest execution on the real state machine definition:
        (its end state, its output, the states it went through)."""
        names = [n for n in self.workflow.started if n.removesuffix("-fallback") == job_id]
        assert names, f"no execution was started for {job_id}"
        return run_execution(self, self.workflow.started[names[-1]])
