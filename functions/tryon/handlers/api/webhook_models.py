"""The webhook routes' request and answer bodies (README, "Webhooks")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tryon.stages.webhooks import EVENTS, MAX_URL_CHARS

Event = Literal[EVENTS]  # type: ignore[valid-type]


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=MAX_URL_CHARS,
                     description="https URL whose host resolves to public addresses only")
    events: list[Event] | None = Field(  # type: ignore[valid-type]
        default=None, min_length=1, max_length=len(EVENTS),
        description="the notification events it gets; omitted: all of them")


class WebhookEndpoint(BaseModel):
    id: str
    url: str
    events: list[str] | None = Field(description="null: every event")
    enabled: bool
    disabled_reason: str | None
    created_at: float | None
    secret_rotated_at: float | None


class WebhookCreated(WebhookEndpoint):
    secret: str = Field(description="whsec_...: verify signatures with it; shown only now")


class WebhookRotated(WebhookCreated):
    previous_secret_until: float = Field(
        description="epoch seconds until which the replaced secret signs too")


class WebhookList(BaseModel):
    webhooks: list[WebhookEndpoint]


class WebhookDeleted(BaseModel):
    id: str
    deleted: bool


class Delivery(BaseModel):
    delivery_id: str = Field(description="the webhook-id header, the same on every attempt")
    event: str
    attempt: int
    status_code: int | None = Field(description="null: no answer (see error)")
    latency_ms: float | None
    error: str | None = Field(description="null: answered 2xx")
    attempted_at: float


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


class Replayed(BaseModel):
    delivery_id: str
    queued: bool
