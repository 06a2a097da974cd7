"""Everything one emulator instance knows: tasks, results, uploads, limits, knobs,
counters.

Reached as `app.state.emulator`. Only the event loop touches it (every route
is `async`), so it needs no locks.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import TypeVar

from .clock import EmulatorClock
from .config import QWEN_MODELS, TRYON_MODELS, EmulatorConfig, ModelQuota
from .limits import RequestLimiter, SlidingWindowLimiter
from .results import ResultStore
from .scheduler import Scheduler
from .tasks import SUCCEEDED, Failure, Task, TaskBoard, TaskRequest
from .uploads import UploadStore


@dataclass
class RequestFault:
    """Test knob: the next `remaining` calls of one kind fail with this answer."""

    status: int
    code: str
    message: str
    remaining: int


@dataclass
class TaskFault:
    """Test knob: the next `remaining` created tasks end FAILED with `failure`."""

    failure: Failure
    remaining: int


@dataclass
class ParsingFault:
    """Test knob: the next `remaining` parsing calls that ask for `garment` do
    not find it (`null` at its index)."""

    garment: str
    remaining: int


@dataclass
class LostAnswerFault:
    """Test knob: the next `remaining` accepted submits create their task (or,
    as `lost_call`, synchronous calls make their image) but answer only after
    `delay` real seconds. A client that gives up sooner never learns the task
    id or the image URL, though the provider runs (and bills) the work."""

    delay: float
    remaining: int


RESULT_FAULT_MODES = ("oversized", "redirect", "not_image")


@dataclass
class ResultFault:
    """Test knob: the next `remaining` result downloads are served wrongly, as a
    hostile or broken storage host might: `oversized` (a JPEG signature, then
    `size` bytes of filler), `redirect` (to another host), `not_image`."""

    mode: str
    size: int
    remaining: int


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock(config.speedup)
        self.board = TaskBoard(self.clock)
        self.results = ResultStore()
        self.uploads = UploadStore(self.clock, config.upload_max_file_mb)
        self.scheduler = Scheduler(
            self.board, self.clock, self.results, self.uploads, config.download_timeout
        )
        self.query_limiter = SlidingWindowLimiter(config.query_rps)
        # Each model's limits: the account's, and a workspace's lower ones if set;
        # and its request window, for sync calls and submits together.
        self.quotas: dict[str, ModelQuota] = {}
        self.workspace_quotas: dict[str, ModelQuota | None] = {}
        self.model_limiters: dict[str, RequestLimiter] = {}
        self._restore_quotas()
        # Models answering like unknown ids; the retire knob changes the set.
        self.retired: set[str] = set(config.retired_models)
        # The provider limits getPolicy per account and model.
        self._policy_limiters: dict[str, SlidingWindowLimiter] = {}
        self._rng = random.Random(config.seed)
        self._request_faults: dict[str, deque[RequestFault]] = {
            "submit": deque(), "query": deque(), "generation": deque(), "limits": deque(),
        }
        self._task_faults: deque[TaskFault] = deque()
        self._lost_answers: deque[LostAnswerFault] = deque()
        self._lost_calls: deque[LostAnswerFault] = deque()
        self._result_faults: deque[ResultFault] = deque()
        self._parsing_faults: list[ParsingFault] = []
        self._holds = 0
        self.counters: Counter[str] = Counter()

    # --- limits ------------------------------------------------------------

    def quota(self, model: str) -> ModelQuota:
        """The limits enforced on `model`: the lower of the account's and the
        workspace's."""
        return self.quotas[model].lower(self.workspace_quotas[model])

    def set_quota(self, model: str, quota: ModelQuota,
                  workspace: ModelQuota | None) -> None:
        self.quotas[model], self.workspace_quotas[model] = quota, workspace
        self._apply_quota(model)
        self.scheduler.tick()  # a raised running limit starts queued tasks at once

    def _restore_quotas(self) -> None:
        """The configured limits, no workspace caps, fresh request windows."""
        self.quotas = dict(self.config.model_quotas)
        self.workspace_quotas = dict.fromkeys(self.quotas)
        for model in self.quotas:
            self._apply_quota(model)

    def _apply_quota(self, model: str) -> None:
        quota = self.quota(model)
        self.model_limiters[model] = RequestLimiter(quota.request_limit,
                                                    quota.request_limit_period)
        if quota.concurrency is None:
            self.board.model_slots.pop(model, None)
        else:
            self.board.model_slots[model] = quota.concurrency

    # --- tasks -------------------------------------------------------------

    def create_task(self, model: str, request: TaskRequest) -> Task:
        task = Task(
            model=model,
            request=request,
            submitted_at=self.clock.now(),
            gen_seconds=self.draw_gen_seconds(model),
        )
        if self._task_faults:
            fault = self._task_faults[0]
            task.forced_failure = fault.failure
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._task_faults.popleft()
        if self._holds > 0:
            task.held = True
            self._holds -= 1
        self.board.add(task)
        self.scheduler.tick()
        return task

    def draw_gen_seconds(self, model: str) -> float:
        """Provider seconds one image of `model` takes."""
        low, high = self.config.gen_time_for(model)
        return self._rng.uniform(low, high)

    def serves(self, model: str, models: tuple[str, ...]) -> bool:
        """Whether an endpoint serving `models` answers for `model` (not retired)."""
        return model in models and model not in self.retired

    def set_hold(self, task: Task, hold: bool) -> None:
        task.held = hold
        self.scheduler.tick()
        self.scheduler.wake()

    # --- parsing and uploads -------------------------------------------------

    def policy_limiter(self, model: str) -> SlidingWindowLimiter:
        limiter = self._policy_limiters.get(model)
        if limiter is None:
            limiter = self._policy_limiters[model] = SlidingWindowLimiter(
                self.config.upload_policy_rps
            )
        return limiter

    def take_parsing_misses(self, clothes_type: tuple[str, ...]) -> frozenset[str]:
        """Garments this parsing call must not find (consumes the armed knobs)."""
        missing: set[str] = set()
        for fault in self._parsing_faults:
            if fault.garment in clothes_type and fault.garment not in missing:
                missing.add(fault.garment)
                fault.remaining -= 1
        self._parsing_faults = [f for f in self._parsing_faults if f.remaining > 0]
        return frozenset(missing)

    # --- test knobs --------------------------------------------------------

    def add_request_fault(self, target: str, fault: RequestFault) -> None:
        self._request_faults[target].append(fault)

    def add_task_fault(self, fault: TaskFault) -> None:
        self._task_faults.append(fault)

    def add_lost_answer(self, fault: LostAnswerFault) -> None:
        self._lost_answers.append(fault)

    def add_lost_call(self, fault: LostAnswerFault) -> None:
        self._lost_calls.append(fault)

    def add_holds(self, count: int) -> None:
        self._holds += count

    def add_parsing_fault(self, fault: ParsingFault) -> None:
        self._parsing_faults.append(fault)

    def take_request_fault(self, target: str) -> RequestFault | None:
        """The injected failure for this call, if one is armed (consumes it)."""
        return _take(self._request_faults[target], self.counters, f"injected.{target}")

    def take_lost_answer(self) -> float | None:
        """Seconds to withhold this accepted submit's answer, if a lost answer
        is armed (consumes it)."""
        fault = _take(self._lost_answers, self.counters, "lost_answers")
        return fault.delay if fault else None

    def take_lost_call(self) -> float | None:
        """Seconds to withhold this produced image's answer, if a lost call is
        armed (consumes it)."""
        fault = _take(self._lost_calls, self.counters, "lost_calls")
        return fault.delay if fault else None

    def add_result_fault(self, fault: ResultFault) -> None:
        self._result_faults.append(fault)

    def take_result_fault(self) -> ResultFault | None:
        """How to serve this result download wrongly, if armed (consumes it)."""
        return _take(self._result_faults, self.counters, "result_faults")

    def armed_faults(self) -> dict[str, object]:
        return {
            "submit": [vars(f).copy() for f in self._request_faults["submit"]],
            "query": [vars(f).copy() for f in self._request_faults["query"]],
            "generation": [vars(f).copy() for f in self._request_faults["generation"]],
            "task": [
                {"code": f.failure.code, "message": f.failure.message, "remaining": f.remaining}
                for f in self._task_faults
            ],
            "lost_submit": [vars(f).copy() for f in self._lost_answers],
            "lost_call": [vars(f).copy() for f in self._lost_calls],
            "result": [vars(f).copy() for f in self._result_faults],
            "hold": self._holds,
            "parsing": [vars(f).copy() for f in self._parsing_faults],
        }

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        # Apply what became due at once, so the next request already sees it.
        self.scheduler.tick()
        self.scheduler.wake()

    def reset(self) -> None:
        """Forget tasks, results, uploads, knobs, counters, rate windows and clock
        offset; the retired models and the limits are the config's again."""
        self.scheduler.cancel_jobs()
        self.board.clear()
        self.results.clear()
        self.uploads.clear()
        self.query_limiter.reset()
        self._restore_quotas()
        self.retired = set(self.config.retired_models)
        self._policy_limiters.clear()
        self._clear_faults()
        self.counters.clear()
        self.clock.reset()
        self._rng = random.Random(self.config.seed)

    def disarm(self) -> None:
        """Disarm every armed fault and let every held task run on; tasks,
        counters and the clock stay as they are."""
        self._clear_faults()
        for task in self.board:
            task.held = False
        self.scheduler.tick()
        self.scheduler.wake()

    def _clear_faults(self) -> None:
        for queue in self._request_faults.values():
            queue.clear()
        self._task_faults.clear()
        self._lost_answers.clear()
        self._lost_calls.clear()
        self._result_faults.clear()
        self._parsing_faults.clear()
        self._holds = 0

    def stats(self) -> dict[str, object]:
        c = self.counters
        return {
            # Task submits, try-on and Qwen alike (`by_model` splits them).
            "submits": c["submits"],
            "submit_requests": c["submit_requests"],
            "queries": c["queries"],
            "throttled": {
                "submit": c["throttled.submit"],
                "query": c["throttled.query"],
                "parsing": c["throttled.parsing"],
                "upload_policy": c["throttled.upload_policy"],
                "generation": c["throttled.generation"],
            },
            "injected": {
                "submit": c["injected.submit"],
                "query": c["injected.query"],
                "generation": c["injected.generation"],
                "limits": c["injected.limits"],
            },
            "lost_answers": c["lost_answers"],
            "lost_calls": c["lost_calls"],
            "running": self.board.active_count(),
            # Most slots one model held at once (tasks PRE-PROCESSING, RUNNING or
            # POST-PROCESSING, and bounded calls); and most tasks of any model not
            # yet ended (PENDING included).
            "peak_running": self.board.peak_running,
            "peak_in_flight": self.board.peak_in_flight,
            "tasks": self.board.counts(),
            "cancels": c["cancels"],
            # Stored result images: try-on and Qwen results plus parsing crops and previews.
            "results": len(self.results),
            "parsings": c["parsings"],
            "parsing_requests": c["parsing_requests"],
            "upload_policies": c["upload_policies"],
            "uploads": c["uploads"],
            "stored_uploads": len(self.uploads),
            # Synchronous Qwen calls that produced their images, and all that came in.
            "generations": c["generations"],
            "generation_requests": c["generation_requests"],
            "by_model": self._stats_by_model(),
            "retired": sorted(self.retired),
        }

    def _stats_by_model(self) -> dict[str, dict[str, int]]:
        # Billed images: every image of a sync call, and of a SUCCEEDED task.
        images: Counter[str] = Counter()
        for task in self.board.history():
            if task.status == SUCCEEDED:
                images[task.model] += len(task.results)
        slots = self.board.slots_by_model()
        c = self.counters
        return {
            model: {
                "submits": c[f"submits.{model}"],
                "generations": c[f"generations.{model}"],
                "images": images[model] + c[f"images.{model}"],
                # 429s for this model's own rate or concurrency limit.
                "throttled": c[f"throttled.{model}"],
                # Of those, submits refused past a full queue.
                "queue_full": c[f"queue_full.{model}"],
                # Slots held now and at most (running tasks and sync calls), and
                # most tasks at once queued PENDING past them.
                "running": slots[model],
                "peak_running": self.board.peak_by_model[model],
                "peak_pending": self.board.peak_pending_by_model[model],
            }
            for model in (*TRYON_MODELS, *QWEN_MODELS)
        }


_Fault = TypeVar("_Fault", RequestFault, LostAnswerFault, ResultFault)


def _take(queue: deque[_Fault], counters: Counter[str], counter: str) -> _Fault | None:
    """The first armed fault of a queue, used once (dropped when used up), counted."""
    if not queue:
        return None
    fault = queue[0]
    fault.remaining -= 1
    if fault.remaining <= 0:
        queue.popleft()
    counters[counter] += 1
    return fault
