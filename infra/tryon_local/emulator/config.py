"""Settings of one emulator instance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_API_KEY = "sk-emulator"

# Models the try-on endpoint accepts (CONTRACT.md, "Models").
TRYON_MODELS = ("aitryon-plus", "aitryon")
# The synchronous garment-segmentation model (CONTRACT.md, "Parsing").
PARSING_MODEL = "aitryon-parsing-v1"
# The successors (CONTRACT.md, "Successor models"): all answer synchronously,
# only the 3.0 family also takes tasks.
QWEN_ASYNC_MODELS = ("qwen-image-3.0", "qwen-image-3.0-pro")
QWEN_MODELS = (*QWEN_ASYNC_MODELS, "qwen-image-2.0", "qwen-image-2.0-pro")
# Every model id the emulator serves, hence every id that can be retired.
MODELS = (*TRYON_MODELS, PARSING_MODEL, *QWEN_MODELS)

# Provider seconds per image, drawn uniformly; the contract says "about 15-45 s"
# for the family, the -pro models being the slow end.
DEFAULT_MODEL_GEN_TIME: Mapping[str, tuple[float, float]] = {
    "qwen-image-2.0": (15.0, 30.0),
    "qwen-image-3.0": (15.0, 30.0),
    "qwen-image-2.0-pro": (25.0, 45.0),
    "qwen-image-3.0-pro": (25.0, 45.0),
}


@dataclass(frozen=True)
class ModelQuota:
    """One model's limits, as the limits API names them: requests per period
    (1 s or 60 s), running tasks (None: a synchronous model, bounded by its rate
    alone) and the queue of accepted tasks past them."""

    request_limit: int
    request_limit_period: int = 1
    concurrency: int | None = None
    queue: int | None = None

    def lower(self, other: ModelQuota | None) -> ModelQuota:
        """Field by field, the lower of two caps (a workspace's under the account's)."""
        if other is None:
            return self
        mine = self.request_limit / self.request_limit_period
        theirs = other.request_limit / other.request_limit_period
        rate = self if mine <= theirs else other

        def least(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else min(a, b)

        return ModelQuota(rate.request_limit, rate.request_limit_period,
                          least(self.concurrency, other.concurrency),
                          least(self.queue, other.queue))


# CONTRACT.md, "Published limits and prices" and "Models"; the queue cap is the
# contract's example for the async models (none is published for these).
QUEUE_CAP = 500
PUBLISHED_QUOTAS: Mapping[str, ModelQuota] = {
    "aitryon-plus": ModelQuota(10, 1, 5, QUEUE_CAP),
    "aitryon": ModelQuota(10, 1, 5, QUEUE_CAP),
    PARSING_MODEL: ModelQuota(10, 1),
    "qwen-image-3.0": ModelQuota(20, 60, 10, QUEUE_CAP),
    "qwen-image-3.0-pro": ModelQuota(5, 60, 10, QUEUE_CAP),
    "qwen-image-2.0": ModelQuota(2, 1),
    "qwen-image-2.0-pro": ModelQuota(2, 60),
}


@dataclass(frozen=True)
class EmulatorConfig:
    # Bearer keys the emulator accepts; every key belongs to the one account,
    # so they share the rate limits, as keys of one provider account do.
    api_keys: frozenset[str] = field(default_factory=lambda: frozenset({DEFAULT_API_KEY}))
    # Generation time of the try-on models in provider seconds, drawn
    # uniformly (documented 15-30 s).
    gen_time: tuple[float, float] = (15.0, 30.0)
    # Divides every emulator duration (generation, 24 h purge, 24 h URL
    # lifetime, 3 h timeout, upload policy and file lifetimes); rate limits
    # stay per real second.
    speedup: float = 1.0
    # Task queries (and list, cancel) per second, account-wide.
    query_rps: int = 20
    # Upload policies are limited per model.
    upload_policy_rps: int = 100
    # `max_file_size_mb` of the temporary-upload policy (the provider's example: 100).
    upload_max_file_mb: int = 100
    # Seeds the generation-time draws so a run can be replayed.
    seed: int | None = None
    # How long pre-processing waits for one input download, in real seconds.
    download_timeout: float = 10.0
    # Per-model settings; a mapping given here is merged over the defaults, so
    # `{"qwen-image-2.0": (1, 2)}` changes that model only. `model_gen_time`
    # may also name a try-on model, overriding `gen_time` for it.
    model_gen_time: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # Each model's limits (its own running tasks, queue and request window, sync
    # calls and submits together), merged over PUBLISHED_QUOTAS; a sync-only model
    # given a concurrency bounds its calls in flight with it. Then it holds every
    # model's. The `/_emulator/limits` knob changes them at run time.
    model_quotas: Mapping[str, ModelQuota] = field(default_factory=dict)
    # Models that answer like unknown ids (CONTRACT.md, "Retirement"); the
    # `/_emulator/retire` knob changes the set at run time.
    retired_models: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Accept any iterable of keys (a list from a CLI, a set) but store it frozen.
        object.__setattr__(self, "api_keys", frozenset(self.api_keys))
        object.__setattr__(self, "retired_models", frozenset(self.retired_models))
        object.__setattr__(self, "gen_time", _time_range("gen_time", self.gen_time))
        gen_times = {**DEFAULT_MODEL_GEN_TIME, **self.model_gen_time}
        object.__setattr__(
            self, "model_gen_time",
            {model: _time_range(f"model_gen_time[{model}]", v) for model, v in gen_times.items()},
        )
        _known("model_quotas", self.model_quotas, tuple(PUBLISHED_QUOTAS))
        object.__setattr__(self, "model_quotas", {**PUBLISHED_QUOTAS, **self.model_quotas})
        _known("model_gen_time", self.model_gen_time, (*TRYON_MODELS, *QWEN_MODELS))
        _known("retired_models", self.retired_models, MODELS)
        if not self.api_keys:
            raise ValueError("at least one API key is needed")
        if self.speedup <= 0:
            raise ValueError("speedup must be > 0")
        if min(self.query_rps, self.upload_policy_rps, self.upload_max_file_mb) < 1:
            raise ValueError("the rates and upload_max_file_mb must be >= 1")
        for model, quota in self.model_quotas.items():
            check_quota(f"model_quotas[{model}]", quota)
        if self.download_timeout <= 0:
            raise ValueError("download_timeout must be > 0")

    def gen_time_for(self, model: str) -> tuple[float, float]:
        return self.model_gen_time.get(model, self.gen_time)


def check_quota(name: str, quota: ModelQuota) -> None:
    if (quota.request_limit < 1 or quota.request_limit_period not in (1, 60)
            or (quota.concurrency is not None and quota.concurrency < 1)
            or (quota.queue is not None and quota.queue < 0)):
        raise ValueError(f"{name}: request_limit and concurrency must be >= 1, queue >= 0, "
                         "request_limit_period 1 or 60 (seconds)")


def _time_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not 0 <= low <= high:
        raise ValueError(f"{name} must be (min, max) with 0 <= min <= max")
    return low, high


def _known(name: str, models: object, known: tuple[str, ...]) -> None:
    unknown = sorted(set(models) - set(known))  # type: ignore[call-overload]
    if unknown:
        raise ValueError(f"{name}: unknown model(s) {', '.join(unknown)}")
