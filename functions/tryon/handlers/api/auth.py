"""Who is calling. On the bearer API, the token authorizer (handlers/authorizer.py)
has already checked the key and names its integration in the request's authorizer
context; on the IAM API, API Gateway has checked the SigV4 signature and we map the
principal to an integration. Which API a request came through is its stage's
`auth` variable (the template's). The documents (`PUBLIC_PATHS`) are open."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from tryon.adapters.integrations import Integration
from tryon.wiring import stage_context

PUBLIC_PATHS = ("/openapi.json", "/docs")


def caller_of(event: APIGatewayProxyEvent) -> Integration | None:
    """The integration the request comes from, or None (an unknown caller)."""
    api = (event.stage_variables or {}).get("auth")
    context = event.request_context
    if api == "bearer":
        found = context.authorizer.raw_event if context.authorizer else {}
        if not found.get("integration"):
            return None
        return Integration.from_context(found)
    # SigV4 on the IAM API names a principal and no authorizer runs there: a request
    # with an authorizer's context, or without a principal, did not come that way.
    if api == "iam" and context.identity.user_arn and not context.authorizer.raw_event:
        return stage_context().integrations.for_principal(
            context.identity.user_arn, stage_context().settings.integration_daily_quota)
    return None


def caller(app: APIGatewayRestResolver | Router) -> Integration:
    """The integration the handler found for this request (handlers/api/__init__.py)."""
    return app.context["integration"]
