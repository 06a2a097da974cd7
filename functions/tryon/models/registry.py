"""Every model the pipeline can use, as data: how it is driven (protocol and
wire format), what it accepts (input rules, output sizes), its default limits,
its price, and whether the provider has retired it. Facts come from
`shared/CONTRACT.md`; the pipeline asks an entry instead of testing model ids."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tryon.image_rules import QWEN2_RULES, QWEN3_RULES, TRYON_RULES, ImageRules
from tryon.pacing import Rate

Protocol = Literal["task", "call"]
Family = Literal["tryon", "qwen"]


@dataclass(frozen=True)
class Price:
    """Per successful image (the provider bills only those)."""

    amount: float
    currency: str
    confirmed: bool  # False: from third parties only (CONTRACT marks it (U))
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"per_image": self.amount, "currency": self.currency,
                "confirmed": self.confirmed, **({"note": self.note} if self.note else {})}


@dataclass(frozen=True)
class Limits:
    """Per model: tasks running at the provider (or synchronous calls in flight),
    requests (submits or calls) per `period` seconds (1: per second, 60: per
    minute), and the provider's queue of accepted tasks past the running ones
    (None: not known)."""

    in_flight: int
    requests: int
    period: int = 1
    queue: int | None = None

    @property
    def rate(self) -> Rate:
        return Rate(self.requests, self.period)

    def describe(self) -> str:
        unit = "s" if self.period == 1 else "min" if self.period == 60 else f"{self.period}s"
        queued = "" if self.queue is None else f", queue {self.queue}"
        return f"{self.in_flight} in flight, {self.requests}/{unit}{queued}"


def call_limits(requests: int, period: int, call_seconds: float) -> Limits:
    """A synchronous model has no running-task limit: the calls its rate lets start
    during one call's time are in flight at once, and no more can be."""
    return Limits(max(1, math.ceil(requests / period * call_seconds)), requests, period)


@dataclass(frozen=True)
class Retirement:
    announced: str  # the provider's notice
    offline_from: str  # date inference stops
    successor: str


@dataclass(frozen=True)
class OutputSizes:
    """The `size` parameter's rules (Qwen Image)."""

    min_pixels: int = 512 * 512
    max_pixels: int = 2048 * 2048
    max_aspect: float | None = None  # 3.0: 8:1 either way
    multiple_of: int = 16  # 2.0 snaps to it; sent snapped to every model alike


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    family: Family  # the wire format: try-on fields, or a Qwen message
    protocol: Protocol  # task: submit + poll; call: one synchronous request
    summary: str
    input_rules: ImageRules
    limits: Limits  # the provider's published limits: the provider's answer wins
    price: Price
    # The documented generation time (seconds, low to high): the poll schedule's
    # assumption until enough durations are measured (tryon.poll_schedule).
    generation_seconds: tuple[float, float]
    retired: Retirement | None = None
    sizes: OutputSizes | None = None


_AITRYON_RETIRED = Retirement(announced="2026-07-10", offline_from="2026-10-10",
                              successor="qwen-image-2.0")
# CONTRACT.md, "Published limits and prices": submits per second or minute, and
# running tasks for the async models; a synchronous call lasts at most the slow end
# of its generation time.
_TRYON_LIMITS = Limits(5, 10)
_QWEN3_LIMITS = Limits(10, 20, 60)
_QWEN3_PRO_LIMITS = Limits(10, 5, 60)
_QWEN2_LIMITS = call_limits(2, 1, 45.0)
_QWEN2_PRO_LIMITS = call_limits(2, 60, 45.0)

MODELS: dict[str, ModelSpec] = {spec.model_id: spec for spec in (
    ModelSpec("aitryon-plus", "tryon", "task",
              "OutfitAnyone try-on, higher fidelity (fabric, logos), slower",
              TRYON_RULES, _TRYON_LIMITS, Price(0.071677, "USD", True), (15.0, 30.0),
              retired=_AITRYON_RETIRED),
    ModelSpec("aitryon", "tryon", "task", "OutfitAnyone try-on, basic, faster",
              TRYON_RULES, _TRYON_LIMITS, Price(0.20, "CNY", True), (15.0, 30.0),
              retired=_AITRYON_RETIRED),
    ModelSpec("qwen-image-3.0", "qwen", "task",
              "Qwen Image 3.0 editing with reference images, async task",
              QWEN3_RULES, _QWEN3_LIMITS,
              Price(0.25, "CNY", False, "tiered by output area; about 0.25 at 1K"), (15.0, 45.0),
              sizes=OutputSizes(max_aspect=8.0)),
    ModelSpec("qwen-image-3.0-pro", "qwen", "task",
              "Qwen Image 3.0 Pro, slower (minutes per image)",
              QWEN3_RULES, _QWEN3_PRO_LIMITS,
              Price(0.25, "CNY", False, "0.25 at 1K, 0.50 at 2K"), (25.0, 180.0),
              sizes=OutputSizes(max_aspect=8.0)),
    ModelSpec("qwen-image-2.0", "qwen", "call",
              "Qwen Image 2.0 editing, synchronous; the replacement the notice names",
              QWEN2_RULES, _QWEN2_LIMITS, Price(0.20, "CNY", True, "intl about USD 0.035"),
              (15.0, 45.0), sizes=OutputSizes()),
    ModelSpec("qwen-image-2.0-pro", "qwen", "call", "Qwen Image 2.0 Pro, synchronous",
              QWEN2_RULES, _QWEN2_PRO_LIMITS, Price(0.50, "CNY", True, "intl about USD 0.075"),
              (25.0, 45.0), sizes=OutputSizes()),
)}
MODEL_IDS = tuple(MODELS)


def model_spec(model_id: str) -> ModelSpec:
    try:
        return MODELS[model_id]
    except KeyError:
        raise ValueError(f"unknown model {model_id!r}; use one of {', '.join(MODEL_IDS)}") from None


RATE_PERIODS = {"s": 1, "min": 60}


def parse_limits(text: str) -> dict[str, Limits]:
    """'qwen-image-3.0=10/20/min,aitryon-plus=5/10' -> the operator's per-model
    overrides: in flight, then requests per second (or per minute, with /min); later
    entries win. Models not named are not overridden."""
    limits: dict[str, Limits] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        model_id, _, numbers = entry.partition("=")
        in_flight, _, rate = numbers.partition("/")
        requests, _, unit = rate.partition("/")
        model_spec(model_id.strip())
        try:
            limits[model_id.strip()] = Limits(max(1, int(in_flight)), max(1, int(requests)),
                                              RATE_PERIODS[unit or "s"])
        except (ValueError, KeyError):
            raise ValueError(f"model limits entry {entry!r}: write model=in_flight/requests, "
                             "per second, or model=in_flight/requests/min") from None
    return limits


def retired_message(model_id: str, answer: str, fallback: str | None) -> str:
    """Why a look could not be made on `model_id`, and the exact setting to change."""
    spec = MODELS.get(model_id)
    if spec and spec.retired:
        why = (f"{model_id} is retired: the provider took it offline on "
               f"{spec.retired.offline_from} (notice of {spec.retired.announced}) and names "
               f"{spec.retired.successor} as its successor")
    else:
        why = f"the provider does not serve {model_id} to this account"
    current = ", ".join(m for m, s in MODELS.items() if s.retired is None)
    fix = (f'set the stack parameter Model, or "model" in the manifest, to a current model '
           f"({current})")
    if fallback:
        fix += f"; the fallback {fallback} could not be used either"
    else:
        fix += ", or set the stack parameter FallbackModel (e.g. qwen-image-3.0) so such looks "
        fix += "are made on it"
    return f"{why} (its answer: {answer}). Fix: {fix}."
