"""The webhook routes (a Powertools Router the API's resolver includes): an
integration's endpoints, their secrets (shown once), deliveries and replays.
The work is in tryon.stages.webhooks; an integration sees only its own endpoints."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from tryon.handlers.api.auth import caller
from tryon.handlers.api.models import answers
from tryon.handlers.api.webhook_models import (
    Delivery,
    DeliveryList,
    Replayed,
    WebhookCreated,
    WebhookDeleted,
    WebhookEndpoint,
    WebhookList,
    WebhookRequest,
    WebhookRotated,
)
from tryon.stages import webhooks
from tryon.wiring import webhook_context

router = Router()
WebhookId = Annotated[str, Path(max_length=40)]


def _who() -> str:
    return caller(router).name


@router.post("/webhooks", status_code=201, summary="Register a webhook endpoint",
             responses=answers(WebhookCreated, 409, 415, status=201))
def create_webhook(request: WebhookRequest) -> WebhookCreated:
    return WebhookCreated(**webhooks.register(webhook_context(), _who(), request.url,
                                              request.events))


@router.get("/webhooks", summary="Your webhook endpoints (no secrets)",
            responses=answers(WebhookList))
def list_webhooks() -> WebhookList:
    return WebhookList(webhooks=[WebhookEndpoint(**e) for e in
                                 webhooks.list_endpoints(webhook_context(), _who())])


@router.get("/webhooks/<webhook_id>", summary="A webhook endpoint (no secret)",
            responses=answers(WebhookEndpoint, 404))
def get_webhook(webhook_id: WebhookId) -> WebhookEndpoint:
    return WebhookEndpoint(**webhooks.view(webhooks.owned(webhook_context(), _who(),
                                                          webhook_id)))


@router.delete("/webhooks/<webhook_id>", summary="Delete a webhook endpoint",
               responses=answers(WebhookDeleted, 404))
def delete_webhook(webhook_id: WebhookId) -> WebhookDeleted:
    return WebhookDeleted(**webhooks.delete(webhook_context(), _who(), webhook_id))


@router.post("/webhooks/<webhook_id>/rotate",
             summary="A new signing secret, shown once; the old one signs too for 24 h",
             responses=answers(WebhookRotated, 404))
def rotate_webhook(webhook_id: WebhookId) -> WebhookRotated:
    return WebhookRotated(**webhooks.rotate(webhook_context(), _who(), webhook_id))


@router.post("/webhooks/<webhook_id>/enable", summary="Enable a disabled webhook endpoint",
             responses=answers(WebhookEndpoint, 404))
def enable_webhook(webhook_id: WebhookId) -> WebhookEndpoint:
    return WebhookEndpoint(**webhooks.enable(webhook_context(), _who(), webhook_id))


@router.get("/webhooks/<webhook_id>/deliveries",
            summary="The endpoint's delivery attempts, newest first (30 days)",
            responses=answers(DeliveryList, 404))
def list_deliveries(webhook_id: WebhookId,
                    limit: Annotated[int, Query(ge=1, le=100)] = 50) -> DeliveryList:
    return DeliveryList(deliveries=[Delivery(**d) for d in webhooks.deliveries(
        webhook_context(), _who(), webhook_id, limit)])


@router.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/replay", status_code=202,
             summary="Queue a delivery's message again (the same webhook-id)",
             responses=answers(Replayed, 404, 409, status=202))
def replay_delivery(webhook_id: WebhookId,
                    delivery_id: Annotated[str, Path(max_length=40)]) -> Replayed:
    return Replayed(**webhooks.replay(webhook_context(), _who(), webhook_id, delivery_id))
