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
# The contract's "conservative defaults" (qwen-image-edit's published limits):
# 2 concurrent images and 2 requests/s per model.
DEFAULT_MODEL_MAX_RUNNING = 2
DEFAULT_MODEL_RPS = 2


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
    # The try-on models share these account limits.
    max_running: int = 5
    submit_rps: int = 10
    query_rps: int = 20
    # Parsing has its own per-model window; upload policies are limited per model.
    parsing_rps: int = 10
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
    # Each Qwen model's own concurrent images (sync calls and running tasks
    # together) and request rate (sync calls and task submits together).
    model_max_running: Mapping[str, int] = field(default_factory=dict)
    model_rps: Mapping[str, int] = field(default_factory=dict)
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
        for name, default in (
            ("model_max_running", DEFAULT_MODEL_MAX_RUNNING), ("model_rps", DEFAULT_MODEL_RPS),
        ):
            given = getattr(self, name)
            _known(name, given, QWEN_MODELS)
            object.__setattr__(self, name, {m: given.get(m, default) for m in QWEN_MODELS})
        _known("model_gen_time", self.model_gen_time, (*TRYON_MODELS, *QWEN_MODELS))
        _known("retired_models", self.retired_models, MODELS)
        if not self.api_keys:
            raise ValueError("at least one API key is needed")
        if self.speedup <= 0:
            raise ValueError("speedup must be > 0")
        limits = (
            self.max_running, self.submit_rps, self.query_rps, self.parsing_rps,
            self.upload_policy_rps, self.upload_max_file_mb,
            *self.model_max_running.values(), *self.model_rps.values(),
        )
        if min(limits) < 1:
            raise ValueError("max_running, the rates and upload_max_file_mb must be >= 1")
        if self.download_timeout <= 0:
            raise ValueError("download_timeout must be > 0")

    def gen_time_for(self, model: str) -> tuple[float, float]:
        return self.model_gen_time.get(model, self.gen_time)


def _time_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not 0 <= low <= high:
        raise ValueError(f"{name} must be (min, max) with 0 <= min <= max")
    return low, high


def _known(name: str, models: object, known: tuple[str, ...]) -> None:
    unknown = sorted(set(models) - set(known))  # type: ignore[call-overload]
    if unknown:
        raise ValueError(f"{name}: unknown model(s) {', '.join(unknown)}")
