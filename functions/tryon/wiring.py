"""Builds the stages' context from the environment, once per cold start."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any

import boto3
import httpx
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters

from tryon.adapters.dynamo import Table
from tryon.adapters.integrations import Integrations
from tryon.adapters.messaging import JobQueue, Notifier, Workflow
from tryon.adapters.provider_memory import PacingLedger
from tryon.adapters.repositories import repositories
from tryon.adapters.storage import ObjectStorage
from tryon.adapters.webhooks import (
    WebhookDeliveries,
    WebhookEndpoints,
    WebhookQueue,
    WebhookSender,
)
from tryon.capacity import Capacity
from tryon.handlers.observability import logger, metrics
from tryon.pacing import CallPacer, Rate
from tryon.providers import ProviderClients
from tryon.providers.dashscope_generation import GenerationClient
from tryon.providers.dashscope_limits import LimitsClient
from tryon.providers.dashscope_tasks import TaskClient
from tryon.providers.http import DEFAULT_TIMEOUT
from tryon.providers.remote_cancel import cancel_only
from tryon.settings import Settings
from tryon.stages.context import Context
from tryon.stages.webhooks import ATTEMPT_TIMEOUT_SECONDS, RETRY_SECONDS, Webhooks

API_KEY_CACHE_SECONDS = 300


@cache
def stage_context() -> Context:
    return build_context(Settings.from_env(), boto3.Session(), count=lambda name: (
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)),
        measure=lambda name, milliseconds: metrics.add_metric(
            name=name, unit=MetricUnit.Milliseconds, value=milliseconds))


@cache
def webhook_context() -> Webhooks:
    """The webhooks' adapters (the API's routes and the delivery function)."""
    settings, session = Settings.from_env(), boto3.Session()
    return build_webhooks(settings, session, count=lambda name: metrics.add_metric(
        name=name, unit=MetricUnit.Count, value=1), measure=lambda name, ms: (
        metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=ms)),
        log=lambda message, extra: logger.info(message, extra=extra))


def build_webhooks(settings: Settings, session: Any, **observers: Any) -> Webhooks:
    dynamodb = session.resource("dynamodb")
    return Webhooks(
        endpoints=WebhookEndpoints(settings.credentials_table, dynamodb),
        deliveries=WebhookDeliveries(settings.jobs_table, dynamodb),
        queue=WebhookQueue(settings.webhook_queue_url, session.client("sqs")),
        sender=WebhookSender(ATTEMPT_TIMEOUT_SECONDS),
        notifier=Notifier(settings.topic_arn, settings.bus_name, session.client("sns"),
                          session.client("events") if settings.bus_name else None),
        allow_loopback=settings.webhook_allow_loopback,
        retry_seconds=settings.webhook_retry_seconds or RETRY_SECONDS,
        **observers)


def build_context(settings: Settings, session: Any,
                  count: Callable[[str], None] = lambda name: None,
                  measure: Callable[[str, float], None] = lambda name, ms: None) -> Context:
    """The stages' adapters on `session`'s clients (a function's own, or the operator's
    CLI acting on a stack)."""
    clients: dict[str, ProviderClients] = {}
    dynamodb = session.resource("dynamodb")
    stores = repositories(settings.jobs_table, dynamodb, settings.credentials_table)

    def timeout(read: float) -> httpx.Timeout:
        return httpx.Timeout(connect=DEFAULT_TIMEOUT.connect, read=read,
                             write=DEFAULT_TIMEOUT.write, pool=DEFAULT_TIMEOUT.pool)

    def latency(milliseconds: float) -> None:
        measure("ProviderLatency", milliseconds)

    def provider() -> ProviderClients:
        # Powertools caches the secret, so a rotated key is picked up within minutes;
        # the HTTP clients (and their connections) are reused while the key stays the same.
        api_key = str(secrets().get(settings.api_key_secret_arn,
                                     max_age=API_KEY_CACHE_SECONDS))
        if api_key not in clients:
            for stale in clients.values():
                stale.close()
            clients.clear()
            base = settings.provider_base_url
            clients[api_key] = ProviderClients(
                tasks=TaskClient(base, api_key, timeout=timeout(settings.provider_read_timeout),
                                 on_answer=latency),
                # A synchronous generation answers when the image is made: minutes. Its
                # time is the model's, not the API's, so it stays out of ProviderLatency.
                generation=GenerationClient(base, api_key,
                                            timeout=timeout(settings.call_timeout_seconds)),
                limits=LimitsClient(settings.limits_base_url or base, api_key),
            )
        return clients[api_key]

    # Made on first use: most functions never read the key.
    secrets = cache(lambda: parameters.SecretsProvider(
        boto3_client=session.client("secretsmanager")))
    sqs = session.client("sqs")
    capacity = Capacity(settings, stores["limit_notes"], settings.timebase.wall)
    if settings.provider_cancel_function:  # the API function: it holds no provider key
        provider = cancel_only(settings.provider_cancel_function, session.client("lambda"))
    return Context(
        settings=settings,
        **stores,
        storage=ObjectStorage(session.client("s3")),
        notifier=Notifier(settings.topic_arn, settings.bus_name, session.client("sns"),
                          session.client("events") if settings.bus_name else None),
        workflow=Workflow(settings.state_machine_arn, session.client("stepfunctions")),
        expansions=Workflow(settings.batch_state_machine_arn, session.client("stepfunctions")),
        admissions=JobQueue(settings.submit_queue_url, "admit", sqs),
        preparations=JobQueue(settings.intake_queue_url, "prepare", sqs),
        provider=provider,
        pacer=CallPacer(PacingLedger(Table(settings.jobs_table, dynamodb)),
                        partial(operation_rate, capacity, Rate(settings.query_rate_limit))),
        capacity=capacity,
        integrations=Integrations(settings.credentials_table, dynamodb),
        count=count,
    )


def operation_rate(capacity: Capacity, query_rate: Rate, operation: str) -> Rate:
    """The pace of a provider operation: 'query' (account-wide), or 'submit:<model>'
    (a model's submits or calls)."""
    if operation == "query":
        return query_rate
    return capacity.of(operation.removeprefix("submit:")).rate
