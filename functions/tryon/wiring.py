"""Builds the pipeline from the environment, once per cold start."""

from __future__ import annotations

from functools import cache

import httpx
from aws_lambda_powertools.utilities import parameters

from tryon.messaging import Admissions, Notifier, Workflow
from tryon.pacing import CallPacer
from tryon.provider import DEFAULT_TIMEOUT, DashScopeClient
from tryon.service import Pipeline
from tryon.settings import Settings
from tryon.storage import ObjectStorage
from tryon.store import JobStore

API_KEY_CACHE_SECONDS = 300


@cache
def pipeline() -> Pipeline:
    settings = Settings.from_env()

    clients: dict[str, DashScopeClient] = {}
    timeout = httpx.Timeout(connect=DEFAULT_TIMEOUT.connect, read=settings.provider_read_timeout,
                            write=DEFAULT_TIMEOUT.write, pool=DEFAULT_TIMEOUT.pool)
    store = JobStore(settings.jobs_table)

    def provider() -> DashScopeClient:
        # Powertools caches the secret, so a rotated key is picked up within minutes;
        # the HTTP client (and its connections) is reused while the key stays the same.
        api_key = str(parameters.get_secret(settings.api_key_secret_arn,
                                            max_age=API_KEY_CACHE_SECONDS))
        if api_key not in clients:
            for stale in clients.values():
                stale.close()
            clients.clear()
            clients[api_key] = DashScopeClient(settings.provider_base_url, api_key,
                                               timeout=timeout)
        return clients[api_key]

    return Pipeline(
        settings=settings,
        store=store,
        storage=ObjectStorage(),
        notifier=Notifier(settings.topic_arn),
        workflow=Workflow(settings.state_machine_arn),
        admissions=Admissions(settings.intake_queue_url),
        provider=provider,
        pacer=CallPacer(store, {"submit": settings.submit_rate_limit,
                                "query": settings.query_rate_limit}),
    )
