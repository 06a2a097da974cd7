"""Who is calling: an IAM principal (the IAM API signs and checks; we map it to an
integration), or a bearer key (checked against its stored hash). The documents
(`PUBLIC_PATHS`) are open to anyone."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from tryon.adapters.integrations import Integration
from tryon.handlers.api import problems
from tryon.handlers.observability import logger
from tryon.wiring import stage_context

PUBLIC_PATHS = ("/v1/openapi.json", "/v1/docs")


def authenticate(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """The resolver's middleware: the caller's integration on `app.context`, or 401."""
    event = app.current_event
    if event.path in PUBLIC_PATHS:
        return next_middleware(app)
    ctx = stage_context()
    quota = ctx.settings.integration_daily_quota
    authorizer = event.request_context.authorizer
    iam = authorizer.iam if authorizer else None
    if iam and iam.user_arn:
        who = ctx.integrations.for_principal(iam.user_arn, quota)
    else:
        scheme, _, key = (event.headers.get("authorization") or "").partition(" ")
        who = (ctx.integrations.authenticate(key.strip(), quota)
               if scheme.lower() == "bearer" else None)
    if who is None:
        return problems.response(401, "Unauthorized", "send Authorization: Bearer <key> with a "
                                 "key the operator created (tryon keys create); a revoked key "
                                 "is refused", event.request_context.request_id)
    app.append_context(integration=who)
    logger.append_keys(integration=who.name)
    return next_middleware(app)


def caller(app: APIGatewayHttpResolver) -> Integration:
    """The integration `authenticate` found for this request."""
    return app.context["integration"]
