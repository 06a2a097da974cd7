"""An in-memory DashScope (tryon.ports.TaskApi and GenerationApi) on a test's
clock: tasks run `duration` seconds from their submit, and a test can hold a
task PENDING, fail one, refuse a model as retired, throttle a call, or lose the
answer to one after the provider acted on it (the case that must never be paid
twice)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tryon.providers.dashscope_generation import GeneratedImage
from tryon.providers.dashscope_tasks import ParsedGarment, SubmittedTask, TaskState
from tryon.providers.errors import (
    ModelMissingError,
    PermanentProviderError,
    RetryableProviderError,
)


@dataclass
class FakeTask:
    task_id: str
    model: str
    submitted: float
    duration: float
    queued_for: float = 0.0  # PENDING this long after its submit, behind running tasks
    held: bool = False
    started: float | None = None  # when a held (queued) task was let run
    failed: tuple[str, str] | None = None
    canceled: bool = False


@dataclass
class FakeProvider:
    clock: Callable[[], float]
    duration: float = 20.0
    queue_wait: float = 0.0  # how long each new task waits PENDING before it starts
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)  # by call: submit, query, call, ...
    refused: set[str] = field(default_factory=set)  # models answered as retired
    throttled: Counter = field(default_factory=Counter)  # call -> 429s still to answer
    throttled_code: str = "Throttling"  # what those 429s say
    lost: Counter = field(default_factory=Counter)  # call -> answers still to lose
    no_garment: bool = False
    # The limits API's answers by model (tryon.providers.dashscope_limits' shape);
    # a model not named is not listed.
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    _ids: Any = field(default_factory=itertools.count)

    def _enter(self, call: str, model: str | None = None) -> None:
        self.calls[call] += 1
        if model in self.refused:
            raise ModelMissingError(400, "InvalidParameter", "Model not exist.",
                                    request_id=f"req-{call}", model=model)
        if self.throttled[call]:
            self.throttled[call] -= 1
            raise RetryableProviderError(429, self.throttled_code, "Requests rate limit exceeded",
                                         request_id=f"req-{call}")

    def _answer_lost(self, call: str) -> None:
        if self.lost[call]:
            self.lost[call] -= 1
            raise RetryableProviderError(None, "ReadTimeout", "no answer", outcome_known=False)

    # --- tasks ------------------------------------------------------------------------

    def submit(self, request: Any, *, oss_resolve: bool = False) -> SubmittedTask:
        self._enter("submit", request.model)
        task = FakeTask(f"task-{next(self._ids)}", request.model, self.clock(), self.duration,
                        self.queue_wait)
        self.tasks[task.task_id] = task
        self._answer_lost("submit")  # the task exists: only its answer is lost
        return SubmittedTask(task_id=task.task_id, request_id=f"req-{task.task_id}")

    def query(self, task_id: str) -> TaskState:
        self._enter("query")
        task = self.tasks.get(task_id)
        if task is None:
            return TaskState(task_id=task_id, status="UNKNOWN", request_id="req-q")
        return self._state(task)

    def _state(self, task: FakeTask) -> TaskState:
        start = task.started or task.submitted + task.queued_for
        now, end = self.clock(), start + task.duration
        base = {"task_id": task.task_id, "request_id": f"req-q-{task.task_id}",
                "submit_time": task.submitted}
        if task.canceled:
            return TaskState(status="CANCELED", **base)
        if task.held or now < start:
            return TaskState(status="PENDING", **base)
        if task.failed:
            return TaskState(status="FAILED", code=task.failed[0], message=task.failed[1],
                             scheduled_time=start, end_time=now, **base)
        if now < end:
            return TaskState(status="RUNNING", scheduled_time=start, **base)
        return TaskState(status="SUCCEEDED", scheduled_time=start, end_time=end,
                         image_url=f"https://dashscope-result.oss.aliyuncs.com/{task.task_id}"
                                   ".png", image_count=1, width=576, height=1024, **base)

    def recent_tasks(self, model: str, since: float, until: float) -> list[TaskState]:
        self._enter("list")
        return [self._state(t) for t in self.tasks.values()
                if t.model == model and since <= t.submitted <= until]

    def cancel(self, task_id: str) -> str:
        self._enter("cancel")
        task = self.tasks[task_id]
        if not (task.held or self.clock() < task.submitted + task.queued_for):
            raise PermanentProviderError(400, "UnsupportedOperation",
                                         "only a PENDING task can be canceled")
        task.canceled = True
        return "req-cancel"

    def parse_garment(self, image_url: str, clothes_type: str, *,
                      oss_resolve: bool = False) -> ParsedGarment | None:
        self._enter("parsing", "aitryon-parsing-v1")
        if self.no_garment:
            return None
        return ParsedGarment(crop_url=f"https://dashscope-result.oss.aliyuncs.com/crop-"
                                      f"{clothes_type}.png", bbox=[1, 2, 3, 4])

    def upload(self, model: str, filename: str, data: bytes, content_type: str) -> str:
        self._enter("upload")
        return f"oss://dashscope-instant/{model}/{filename}"

    # --- the synchronous call -----------------------------------------------------------

    def generate(self, request: Any, *, oss_resolve: bool = False) -> GeneratedImage:
        self._enter("call", request.model)
        image_number = next(self._ids)
        self._answer_lost("call")  # made (and billed): only its answer is lost
        return GeneratedImage(
            image_url=f"https://dashscope-result.oss.aliyuncs.com/call-{image_number}.png",
            request_id=f"req-call-{image_number}", width=576, height=1024)

    # --- the limits API ------------------------------------------------------------------

    def read(self, model: str) -> dict[str, int] | None:
        self._enter("limits")
        return self.limits.get(model)

    # --- what tests ask of it ----------------------------------------------------------

    def hold(self, task_id: str, held: bool = True) -> None:
        """Hold a task PENDING (as in the provider's queue); let go, it starts now."""
        task = self.tasks[task_id]
        if task.held and not held:
            task.started = self.clock()
        task.held = held

    def fail(self, task_id: str, code: str = "InternalError.Algo",
             message: str = "the model failed") -> None:
        self.tasks[task_id].failed = (code, message)
