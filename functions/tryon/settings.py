"""Configuration of the functions, read once per cold start from the environment
(set by template.yaml; locally by the embedded runtime from the same template)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    jobs_table: str
    results_bucket: str
    topic_arn: str
    state_machine_arn: str
    default_model: str
    provider_base_url: str
    api_key_secret_arn: str
    poll_deadline_seconds: int
    input_url_ttl_seconds: int
    input_transport: str  # "presigned-url" | "provider-upload"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            jobs_table=env["JOBS_TABLE"],
            results_bucket=env.get("RESULTS_BUCKET", ""),
            topic_arn=env.get("NOTIFICATION_TOPIC_ARN", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            default_model=env.get("DEFAULT_MODEL", "aitryon-plus"),
            provider_base_url=env.get(
                "PROVIDER_BASE_URL", "https://dashscope.aliyuncs.com/api/v1"
            ),
            api_key_secret_arn=env.get("PROVIDER_API_KEY_SECRET_ARN", ""),
            poll_deadline_seconds=int(env.get("POLL_DEADLINE_SECONDS", "900")),
            input_url_ttl_seconds=int(env.get("INPUT_URL_TTL_SECONDS", "10800")),
            input_transport=env.get("INPUT_TRANSPORT", "presigned-url"),
        )
