"""Settings of one emulator instance."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_API_KEY = "sk-emulator"

# Models the try-on endpoint accepts (CONTRACT.md, "Models").
TRYON_MODELS = ("aitryon-plus", "aitryon")
# The synchronous garment-segmentation model (CONTRACT.md, "Parsing").
PARSING_MODEL = "aitryon-parsing-v1"


@dataclass(frozen=True)
class EmulatorConfig:
    # Bearer keys the emulator accepts; every key belongs to the one account,
    # so they share the rate limits, as keys of one provider account do.
    api_keys: frozenset[str] = field(default_factory=lambda: frozenset({DEFAULT_API_KEY}))
    # Generation time in provider seconds, drawn uniformly (documented 15-30 s).
    gen_time: tuple[float, float] = (15.0, 30.0)
    # Divides every emulator duration (generation, 24 h purge, 24 h URL
    # lifetime, 3 h timeout, upload policy and file lifetimes); rate limits
    # stay per real second.
    speedup: float = 1.0
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

    def __post_init__(self) -> None:
        # Accept any iterable of keys (a list from a CLI, a set) but store it frozen.
        object.__setattr__(self, "api_keys", frozenset(self.api_keys))
        low, high = (float(v) for v in self.gen_time)
        object.__setattr__(self, "gen_time", (low, high))
        if not self.api_keys:
            raise ValueError("at least one API key is needed")
        if not 0 <= low <= high:
            raise ValueError("gen_time must be (min, max) with 0 <= min <= max")
        if self.speedup <= 0:
            raise ValueError("speedup must be > 0")
        limits = (
            self.max_running, self.submit_rps, self.query_rps, self.parsing_rps,
            self.upload_policy_rps, self.upload_max_file_mb,
        )
        if min(limits) < 1:
            raise ValueError("max_running, the rates and upload_max_file_mb must be >= 1")
        if self.download_timeout <= 0:
            raise ValueError("download_timeout must be > 0")
