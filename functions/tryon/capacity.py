"""Each model's capacity at the provider, as the stack runs it: the limits in force
and where they come from, and what it does with them.

Effective limits: the operator's override (`ModelLimits`) if set, else the
provider's answer (its limits API, read by the sweep: tryon.stages.provider_limits),
else the registry's default. On top of them, for a while:
- a `Throttling.RateQuota` answer halves the model's request rate;
- a task model holds `ProviderQueueAhead` slots past its running limit, so the
  provider always has the next task queued; a lookahead submit refused as
  throttled cuts that to none.
The notes are shared by every function (one item, tryon.ports.LimitNotes) and read
at most every CACHE_SECONDS per process. Times here are real (wall) seconds: the
provider's limits are per real second."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tryon import ports
from tryon.models.registry import MODEL_IDS, MODELS, Limits, call_limits, model_spec
from tryon.pacing import Rate
from tryon.poll_schedule import min_gap
from tryon.settings import Settings

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0
SLOWDOWN_SECONDS = 120.0
AHEAD_CUT_SECONDS = 600.0

Source = Literal["override", "provider", "default"]


@dataclass(frozen=True)
class ModelCapacity:
    model: str
    limits: Limits
    source: Source
    ahead: int  # slots past the running limit (task models)
    slowed: bool  # a RateQuota answer halved the rate for a while
    read_at: float | None = None  # when the provider last answered its limits
    read_error: dict[str, str] | None = None  # the last read failed (limits kept)

    @property
    def slots(self) -> int:
        """Jobs of the model admitted to the provider at once."""
        return self.limits.in_flight + self.ahead

    @property
    def rate(self) -> Rate:
        rate = self.limits.rate
        return Rate(rate.requests, rate.period * 2) if self.slowed else rate

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "in_flight": self.limits.in_flight,
                "requests": self.limits.requests, "period": self.limits.period,
                "queue": self.limits.queue, "source": self.source, "ahead": self.ahead,
                "slots": self.slots, "slowed": self.slowed, "read_at": self.read_at,
                "read_error": self.read_error}


def provider_limits(answer: Mapping[str, Any], model: str) -> Limits | None:
    """A model's limits from the provider's answer as recorded (requests, period,
    running, queue: tryon.providers.dashscope_limits), or None when it gives none
    usable."""
    try:
        requests, period = int(answer["requests"]), int(answer["period"])
    except (KeyError, TypeError, ValueError):
        return None
    if requests < 1 or period < 1:
        return None
    running, queue = answer.get("running"), answer.get("queue")
    if model_spec(model).protocol == "call" or not running:
        return call_limits(requests, period, model_spec(model).generation_seconds[1])
    return Limits(int(running), requests, period, int(queue) if queue else None)


class Capacity:
    def __init__(self, settings: Settings, notes: ports.LimitNotes,
                 wall: Callable[[], float]) -> None:
        self._settings, self._notes, self._wall = settings, notes, wall
        self._cached: tuple[float, dict[str, dict[str, Any]]] | None = None

    def of(self, model: str) -> ModelCapacity:
        now = self._wall()
        note = self._read(now).get(model, {})
        default, read = MODELS[model].limits, note.get("limits")
        provider = provider_limits(read, model) if read else None
        override = self._settings.limit_overrides.get(model)
        if override:
            # The provider's queue cap still holds under the operator's figures.
            limits, source = Limits(override.in_flight, override.requests, override.period,
                                    provider.queue if provider else None), "override"
        elif provider:
            limits, source = provider, "provider"
        else:
            limits, source = default, "default"
        ahead = 0
        if model_spec(model).protocol == "task" and float(note.get("ahead_cut_until", 0)) <= now:
            ahead = self._settings.provider_queue_ahead
            if limits.queue is not None:
                ahead = min(ahead, limits.queue)
        return ModelCapacity(model, limits, source, ahead,
                             slowed=float(note.get("slowed_until", 0)) > now,
                             read_at=note.get("read_at"), read_error=note.get("read_error"))

    def all(self) -> dict[str, ModelCapacity]:
        return {model: self.of(model) for model in MODEL_IDS}

    def query_gap(self) -> float:
        """Seconds between two queries of one task, planned so that the tasks of the
        stack's models (its default and fallback) share the account's query limit;
        the query pacer holds the limit whatever runs."""
        models = {self._settings.default_model, self._settings.fallback_model} - {None}
        tasks = sum(self.of(model).slots for model in models
                    if model_spec(model).protocol == "task")
        return min_gap(tasks, self._settings.query_rate_limit)

    def slow_down(self, model: str) -> bool:
        """The provider answered Throttling.RateQuota: halve the model's rate for a
        while. True if this started a slowdown (none was in force)."""
        now = self._wall()
        started = self._notes.hold_until(model, "slowed_until", now + SLOWDOWN_SECONDS, now)
        if started:
            log.warning("provider rate quota hit: the model's request rate is halved",
                        extra={"model": model, "for_seconds": SLOWDOWN_SECONDS})
        self.forget()
        return started

    def cut_ahead(self, model: str) -> None:
        """A lookahead submit was refused as throttled: no lookahead for a while."""
        now = self._wall()
        if self._notes.hold_until(model, "ahead_cut_until", now + AHEAD_CUT_SECONDS, now):
            log.warning("the provider refused a queued-ahead task: lookahead off for a while",
                        extra={"model": model, "for_seconds": AHEAD_CUT_SECONDS})
        self.forget()

    def forget(self) -> None:
        """Read the notes afresh next time (after this process changed them)."""
        self._cached = None

    def _read(self, now: float) -> dict[str, dict[str, Any]]:
        if self._cached is None or now - self._cached[0] >= CACHE_SECONDS:
            self._cached = (now, self._notes.read())
        return self._cached[1]
