"""Configuration of the functions, read once per cold start from the environment
(set by template.yaml; locally by the embedded runtime from the same template)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tryon.models.registry import Limits, parse_limits


@dataclass(frozen=True)
class Timebase:
    """Seconds as the pipeline counts them: wall-clock time in AWS.

    The local runtime can run the provider emulator and the state machine's
    waits `scale` times faster; the functions then count time `scale` times
    faster from `anchor`, so that deadlines, leases and measured generation
    times keep their provider meaning. Rate limits stay per real second."""

    scale: float = 1.0
    anchor: float = 0.0
    wall: Callable[[], float] = field(default=time.time, compare=False)  # real epoch seconds

    def now(self) -> float:
        return self.from_wall(self.wall())

    def from_wall(self, epoch: float) -> float:
        return self.anchor + (epoch - self.anchor) * self.scale

    def to_wall(self, seconds: float) -> float:
        return self.anchor + (seconds - self.anchor) / self.scale

    def wall_span(self, seconds: float) -> float:
        """A span of pipeline seconds in real seconds (shorter on a sped-up clock)."""
        return seconds / self.scale


@dataclass(frozen=True)
class Settings:
    jobs_table: str
    credentials_table: str  # integrations, key hashes, quotas, the budget override
    results_bucket: str
    topic_arn: str
    bus_name: str  # the EventBridge bus notifications are also put on ("" for none)
    state_machine_arn: str
    intake_queue_url: str  # uploads, and jobs whose inputs must be prepared again
    submit_queue_url: str  # admitted jobs, for the submit function
    default_model: str
    provider_base_url: str
    api_key_secret_arn: str
    # The API function's only provider call (a queued task's cancel) goes through
    # this function, which holds the key (providers/remote_cancel.py).
    provider_cancel_function: str
    poll_deadline_seconds: int
    limit_overrides: dict[str, Limits]  # the operator's, per model (tryon.capacity)
    query_rate_limit: int  # task queries per second, account-wide
    fallback_model: str | None  # where a look goes when its model is retired
    result_hosts: tuple[str, ...]  # host patterns result images may come from (https)
    local_result_hosts: tuple[str, ...]  # local runtime only: its provider, plain http
    input_url_ttl_seconds: int
    daily_image_budget: int  # images admitted per UTC day, stack-wide (operators may override)
    max_roster_size: int  # a drop on a larger roster fails RosterTooLarge
    input_transport: str  # "presigned-url" | "provider-upload"
    # Catalogue files (jobs/<name>.csv, .jsonl): the most rows one may have (more:
    # BatchTooLarge), and the state machine that expands their rows into jobs.
    max_batch_looks: int = 10_000
    batch_state_machine_arn: str = ""
    inbox_bucket: str = ""  # where the API writes its looks' manifests and uploads go
    integration_daily_quota: int = 100  # an API integration's images per day, unless set
    # Upload forms an integration may ask for per UTC day, and the bytes they may
    # declare (its own, `tryon keys set --upload-forms/--upload-bytes`, unless set).
    upload_forms_per_day: int = 1000
    upload_bytes_per_day: int = 2 * 1024**3
    # Whether bucket manifests may carry a retailer's instruction: free text sent to the
    # provider account every tenant shares (API integrations: allowed one by one).
    allow_manifest_instructions: bool = False
    provider_read_timeout: float = 20.0
    call_timeout_seconds: float = 240.0  # one synchronous generation, answer included
    # Where the provider answers its limits (the workspace's base URL; "" for
    # provider_base_url), and the tasks submitted past a model's running limit so the
    # provider always holds the next one (0: none).
    limits_base_url: str = ""
    provider_queue_ahead: int = 1
    # Webhooks: the queue their attempts wait in; the retry schedule (seconds after
    # attempts 1, 2, ...; empty: the standard one, tryon.stages.webhooks); http to
    # loopback allowed (the local stack only).
    webhook_queue_url: str = ""
    webhook_retry_seconds: tuple[float, ...] = ()
    webhook_allow_loopback: bool = False
    timebase: Timebase = field(default_factory=Timebase)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """From the function's environment (or another one: the operator's CLI reads a
        deployed function's)."""
        env = os.environ if env is None else env
        return cls(
            jobs_table=env["JOBS_TABLE"],
            credentials_table=env.get("CREDENTIALS_TABLE", ""),
            results_bucket=env.get("RESULTS_BUCKET", ""),
            topic_arn=env.get("NOTIFICATION_TOPIC_ARN", ""),
            bus_name=env.get("NOTIFICATION_BUS_NAME", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            intake_queue_url=env.get("INTAKE_QUEUE_URL", ""),
            submit_queue_url=env.get("SUBMIT_QUEUE_URL", ""),
            default_model=env.get("DEFAULT_MODEL", "aitryon-plus"),
            provider_base_url=env.get(
                "PROVIDER_BASE_URL", "https://dashscope.aliyuncs.com/api/v1"
            ),
            api_key_secret_arn=env.get("PROVIDER_API_KEY_SECRET_ARN", ""),
            provider_cancel_function=env.get("PROVIDER_CANCEL_FUNCTION", ""),
            poll_deadline_seconds=int(env.get("POLL_DEADLINE_SECONDS", "900")),
            limit_overrides=parse_limits(env.get("MODEL_LIMITS", "")),
            limits_base_url=env.get("PROVIDER_LIMITS_BASE_URL", ""),
            provider_queue_ahead=int(env.get("PROVIDER_QUEUE_AHEAD", "1")),
            query_rate_limit=int(env.get("QUERY_RATE_LIMIT", "20")),
            fallback_model=env.get("FALLBACK_MODEL") or None,
            # LOCAL_RESULT_URL_HOSTS: set by the local runtime only, for its own
            # loopback provider over plain http.
            result_hosts=_names(env.get("RESULT_URL_HOSTS", "*.aliyuncs.com")),
            local_result_hosts=_names(env.get("LOCAL_RESULT_URL_HOSTS", "")),
            call_timeout_seconds=float(env.get("CALL_TIMEOUT_SECONDS", "240")),
            input_url_ttl_seconds=int(env.get("INPUT_URL_TTL_SECONDS", "10800")),
            daily_image_budget=int(env.get("DAILY_IMAGE_BUDGET", "500")),
            max_roster_size=int(env.get("MAX_ROSTER_SIZE", "100")),
            max_batch_looks=int(env.get("MAX_BATCH_LOOKS", "10000")),
            batch_state_machine_arn=env.get("BATCH_STATE_MACHINE_ARN", ""),
            input_transport=env.get("INPUT_TRANSPORT", "presigned-url"),
            inbox_bucket=env.get("INBOX_BUCKET", ""),
            integration_daily_quota=int(env.get("INTEGRATION_DAILY_QUOTA", "100")),
            upload_forms_per_day=int(env.get("UPLOAD_FORMS_PER_DAY", "1000")),
            upload_bytes_per_day=int(env.get("UPLOAD_BYTES_PER_DAY", str(2 * 1024**3))),
            allow_manifest_instructions=env.get("ALLOW_MANIFEST_INSTRUCTIONS") == "true",
            # Local runs only: a short read timeout for tests, and a faster clock.
            webhook_queue_url=env.get("WEBHOOK_QUEUE_URL", ""),
            # Local runs only: a short schedule for tests, and receivers on 127.0.0.1.
            webhook_retry_seconds=tuple(float(n) for n in _names(
                env.get("WEBHOOK_RETRY_SECONDS", ""))),
            webhook_allow_loopback=env.get("WEBHOOK_ALLOW_LOOPBACK") == "1",
            provider_read_timeout=float(env.get("PROVIDER_READ_TIMEOUT_SECONDS", "20")),
            timebase=Timebase(float(env.get("TIME_SCALE", "1")),
                              float(env.get("TIME_ANCHOR", "0"))),
        )


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())
