"""Tasks and their lifecycle rules, without any I/O.

PENDING -> PRE-PROCESSING -> RUNNING -> POST-PROCESSING -> SUCCEEDED | FAILED,
with CANCELED for a task canceled while PENDING. The board decides which task
moves when; the scheduler (`scheduler.py`) does the downloading and rendering
in between and reports back. A Qwen Image task goes through the same phases
but reports PRE- and POST-PROCESSING as RUNNING: its contract lists no such
statuses.

Each model in `model_slots` has its own pool of running slots (CONTRACT.md's
limits are per model); a model not in it runs everything at once. A synchronous
call (`claim_call`) takes a slot of its model's pool only when asked to (a
sync-only model given a concurrency); past the pool, tasks wait PENDING.
"""

from __future__ import annotations

import uuid
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from .clock import EmulatorClock, format_provider_time
from .images import TRYON_RULES, InputRules

PENDING = "PENDING"
PRE_PROCESSING = "PRE-PROCESSING"
RUNNING = "RUNNING"
POST_PROCESSING = "POST-PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELED = "CANCELED"
UNKNOWN = "UNKNOWN"

STATUSES = (
    PENDING, PRE_PROCESSING, RUNNING, POST_PROCESSING, SUCCEEDED, FAILED, CANCELED,
)
# The states that hold one of the account's concurrent-task slots.
ACTIVE = frozenset({PRE_PROCESSING, RUNNING, POST_PROCESSING})
ENDED = frozenset({SUCCEEDED, FAILED, CANCELED})

# Provider durations in provider seconds (CONTRACT.md); the clock scales them.
PURGE_AFTER = 24 * 3600  # a task can be queried for 24 h after creation
RESULT_URL_LIFETIME = 24 * 3600  # image_url is a signed URL valid for 24 h
TASK_TIMEOUT = 3 * 3600  # no result within 3 h -> FAILED InternalError.Timeout


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


TIMEOUT_FAILURE = Failure(
    "InternalError.Timeout", "The task did not produce a result within 3 hours."
)


class TaskRequest(Protocol):
    """What the board and the scheduler need of a task's request."""

    # Sent `X-DashScope-OssResourceResolve: enable`: oss:// inputs name uploaded files.
    oss_resolve: bool
    # The input rules of the request's model family.
    rules: InputRules
    # Whether queries show PRE-PROCESSING and POST-PROCESSING (or RUNNING instead).
    reports_phases: bool

    def image_urls(self) -> Iterator[tuple[str, str]]: ...


@dataclass(frozen=True)
class TryOnRequest:
    person_image_url: str
    top_garment_url: str | None
    bottom_garment_url: str | None
    resolution: int = -1
    restore_face: bool = True
    # Sent `X-DashScope-OssResourceResolve: enable`: oss:// inputs name uploaded files.
    oss_resolve: bool = False
    rules: ClassVar[InputRules] = TRYON_RULES
    reports_phases: ClassVar[bool] = True

    def image_urls(self) -> Iterator[tuple[str, str]]:
        """(field, url) of every input, person first: the order failures are reported in."""
        yield "person_image_url", self.person_image_url
        if self.top_garment_url:
            yield "top_garment_url", self.top_garment_url
        if self.bottom_garment_url:
            yield "bottom_garment_url", self.bottom_garment_url


@dataclass(eq=False)
class Task:
    model: str
    request: TaskRequest
    submitted_at: float
    gen_seconds: float  # provider seconds of RUNNING, drawn at creation
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = PENDING
    scheduled_at: float | None = None
    ended_at: float | None = None
    run_until: float | None = None
    # Test knobs: a held task stays RUNNING; a forced failure replaces the outcome.
    held: bool = False
    forced_failure: Failure | None = None
    failure: Failure | None = None
    # Downloaded input bytes by field, kept from pre-processing until rendered.
    inputs: dict[str, bytes] = field(default_factory=dict, repr=False)
    # Names of the stored result images and their size, once SUCCEEDED.
    results: tuple[str, ...] = ()
    output_size: tuple[int, int] | None = None

    @property
    def reported_status(self) -> str:
        """The status the provider's API shows."""
        if not self.request.reports_phases and self.status in (PRE_PROCESSING, POST_PROCESSING):
            return RUNNING
        return self.status

    def output(self) -> dict[str, object]:
        """`output` of a task query, minus the result (which needs the caller's host)."""
        out: dict[str, object] = {
            "task_id": self.task_id,
            "task_status": self.reported_status,
            "submit_time": format_provider_time(self.submitted_at),
        }
        if self.scheduled_at is not None:
            out["scheduled_time"] = format_provider_time(self.scheduled_at)
        if self.ended_at is not None:
            out["end_time"] = format_provider_time(self.ended_at)
        if self.status == FAILED and self.failure is not None:
            out["code"] = self.failure.code
            out["message"] = self.failure.message
        return out

    def timeline(self) -> dict[str, object]:
        """When the task moved, as epoch seconds on the emulator clock (None
        until it happens), for benchmarks that derive throughput and concurrency."""
        return {
            "task_id": self.task_id,
            "model": self.model,
            "status": self.reported_status,
            "submit_time": self.submitted_at,
            "scheduled_time": self.scheduled_at,
            "end_time": self.ended_at,
            "generation_seconds": self.gen_seconds,
        }


class TaskBoard:
    """All tasks of the one emulated account, and the rules for moving them."""

    def __init__(self, clock: EmulatorClock, model_slots: Mapping[str, int] | None = None) -> None:
        self._clock = clock
        # Models with a bounded pool, and its size.
        self.model_slots = dict(model_slots or {})
        self._tasks: dict[str, Task] = {}
        self._queue: deque[Task] = deque()  # PENDING tasks, first come first served
        # Synchronous calls holding a slot, by model (one token per call).
        self._calls: dict[str, set[object]] = {}
        # Every task since the last clear, purged ones included, oldest first.
        self._history: list[Task] = []
        # Most slots any one model held at once (tasks PRE-PROCESSING, RUNNING or
        # POST-PROCESSING, and calls)...
        self.peak_running = 0
        # ...most slots each model held at once, and most of its tasks PENDING...
        self.peak_by_model: Counter[str] = Counter()
        self.peak_pending_by_model: Counter[str] = Counter()
        # ...and most tasks at once not yet ended (PENDING included).
        self.peak_in_flight = 0

    def add(self, task: Task) -> None:
        self._tasks[task.task_id] = task
        self._queue.append(task)
        self._history.append(task)
        pending = self.pending(task.model)
        self.peak_pending_by_model[task.model] = max(self.peak_pending_by_model[task.model],
                                                     pending)
        # Only a new task raises the number in flight; every other move ends one or keeps it.
        in_flight = sum(1 for t in self._tasks.values() if t.status not in ENDED)
        self.peak_in_flight = max(self.peak_in_flight, in_flight)

    def get(self, task_id: str) -> Task | None:
        """The task, or None if it never existed or is past its 24 h (scaled) life."""
        task = self._tasks.get(task_id)
        if task is None or self._is_purgeable(task, self._clock.now()):
            return None
        return task

    def __iter__(self) -> Iterator[Task]:
        now = self._clock.now()
        return (t for t in list(self._tasks.values()) if not self._is_purgeable(t, now))

    def history(self) -> list[Task]:
        """Every task since the last clear, purged ones included, oldest first."""
        return list(self._history)

    def is_current(self, task: Task, status: str) -> bool:
        """Whether `task` is still on the board in `status` (it may have been
        canceled, failed by a knob, timed out, purged or reset meanwhile)."""
        return self._tasks.get(task.task_id) is task and task.status == status

    def active_count(self) -> int:
        """Tasks in a concurrency slot, every pool."""
        return sum(1 for t in self._tasks.values() if t.status in ACTIVE)

    def slots_by_model(self) -> Counter[str]:
        """Slots each model holds now: its tasks in a slot and its synchronous calls."""
        held = Counter(t.model for t in self._tasks.values() if t.status in ACTIVE)
        for model, calls in self._calls.items():
            held[model] += len(calls)
        return held

    def pending(self, model: str) -> int:
        """The model's tasks waiting PENDING (queued, not started)."""
        return sum(1 for t in self._tasks.values() if t.model == model and t.status == PENDING)

    def claim_call(self, model: str, bounded: bool = True) -> object | None:
        """A slot of `model`'s pool for a synchronous call (a token for
        `release_call`), or None when the pool is full. An unbounded call (a sync
        call of an async model: "sync calls unlimited") takes no slot."""
        token = object()
        if not bounded:
            return token
        if model in self.model_slots and self._free_slots()[model] <= 0:
            return None
        self._calls.setdefault(model, set()).add(token)
        self._note_peak()
        return token

    def release_call(self, model: str, token: object) -> None:
        # A reset in between has dropped the token already.
        self._calls.get(model, set()).discard(token)

    def start_next(self) -> list[Task]:
        """Move queued tasks into PRE-PROCESSING while their pool has free
        slots; a task whose pool is full keeps its place in the queue."""
        started: list[Task] = []
        free = self._free_slots()
        waiting: deque[Task] = deque()
        while self._queue:
            task = self._queue.popleft()
            if not self.is_current(task, PENDING):
                continue  # canceled or ended while queued
            pool = task.model
            if pool in free and free[pool] <= 0:
                waiting.append(task)
                continue
            task.status = PRE_PROCESSING
            task.scheduled_at = self._clock.now()
            started.append(task)
            if pool in free:
                free[pool] -= 1
        self._queue = waiting
        self._note_peak()
        return started

    def begin_running(self, task: Task, inputs: dict[str, bytes]) -> None:
        now = self._clock.now()
        task.inputs = inputs
        task.status = RUNNING
        task.run_until = now + self._clock.scaled(task.gen_seconds)

    def due_to_finish(self) -> list[Task]:
        now = self._clock.now()
        return [
            t
            for t in self._tasks.values()
            if t.status == RUNNING and not t.held and t.run_until is not None
            and t.run_until <= now
        ]

    def next_deadline(self) -> float | None:
        """Emulator time at which the next RUNNING task is due to finish."""
        deadlines = [
            t.run_until for t in self._tasks.values()
            if t.status == RUNNING and not t.held and t.run_until is not None
        ]
        return min(deadlines, default=None)

    def begin_post_processing(self, task: Task) -> None:
        task.status = POST_PROCESSING

    def end(self, task: Task, failure: Failure | None = None) -> str:
        """End the task: SUCCEEDED, or FAILED with `failure`. A forced failure
        (test knob) replaces whatever the outcome would have been."""
        task.failure = task.forced_failure or failure
        task.status = FAILED if task.failure is not None else SUCCEEDED
        task.ended_at = self._clock.now()
        task.inputs = {}
        task.held = False
        return task.status

    def cancel(self, task: Task) -> bool:
        if task.status != PENDING:
            return False
        task.status = CANCELED
        task.ended_at = self._clock.now()
        return True

    def expire(self) -> list[Task]:
        """Time out tasks older than 3 h and drop tasks older than 24 h (both
        scaled). Returns the tasks that timed out."""
        now = self._clock.now()
        timed_out = [
            t
            for t in self._tasks.values()
            if t.status not in ENDED
            and now - t.submitted_at >= self._clock.scaled(TASK_TIMEOUT)
        ]
        for task in timed_out:
            self.end(task, TIMEOUT_FAILURE)
        for task_id in [t.task_id for t in self._tasks.values() if self._is_purgeable(t, now)]:
            del self._tasks[task_id]
        return timed_out

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for task in self:
            counts[task.reported_status] += 1
        return counts

    def select(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        statuses: Iterable[str] | None = None,
    ) -> list[Task]:
        """Tasks submitted in [since, until], newest first."""
        wanted = frozenset(statuses) if statuses is not None else None
        found = [
            t
            for t in self
            if (since is None or t.submitted_at >= since)
            and (until is None or t.submitted_at <= until)
            and (model is None or t.model == model)
            and (wanted is None or t.reported_status in wanted)
        ]
        return sorted(found, key=lambda t: t.submitted_at, reverse=True)

    def clear(self) -> None:
        self._tasks.clear()
        self._queue.clear()
        self._calls.clear()
        self._history.clear()
        self.peak_running = 0
        self.peak_by_model.clear()
        self.peak_pending_by_model.clear()
        self.peak_in_flight = 0

    def _free_slots(self) -> Counter[str]:
        """Free slots of each bounded pool."""
        free = Counter(self.model_slots)
        for model, held in self.slots_by_model().items():
            if model in free:
                free[model] -= held
        return free

    def _note_peak(self) -> None:
        for model, n in self.slots_by_model().items():
            self.peak_by_model[model] = max(self.peak_by_model[model], n)
            self.peak_running = max(self.peak_running, n)

    def _is_purgeable(self, task: Task, now: float) -> bool:
        return now - task.submitted_at >= self._clock.scaled(PURGE_AFTER)
