"""Builds the pipeline from the environment, once per cold start."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities import parameters

from tryon.messaging import Notifier, Workflow
from tryon.provider import DashScopeClient
from tryon.service import Pipeline
from tryon.settings import Settings
from tryon.storage import ObjectStorage
from tryon.store import JobStore

API_KEY_CACHE_SECONDS = 300


@cache
def pipeline() -> Pipeline:
    settings = Settings.from_env()

    clients: dict[str, DashScopeClient] = {}

    def provider() -> DashScopeClient:
        # Powertools caches the secret, so a rotated key is picked up within minutes;
        # the HTTP client (and its connections) is reused while the key stays the same.
        api_key = str(parameters.get_secret(settings.api_key_secret_arn,
                                            max_age=API_KEY_CACHE_SECONDS))
        if api_key not in clients:
            for stale in clients.values():
                stale.close()
            clients.clear()
            clients[api_key] = DashScopeClient(settings.provider_base_url, api_key)
        return clients[api_key]

    return Pipeline(
        settings=settings,
        store=JobStore(settings.jobs_table),
        storage=ObjectStorage(),
        notifier=Notifier(settings.topic_arn),
        workflow=Workflow(settings.state_machine_arn),
        provider=provider,
    )
