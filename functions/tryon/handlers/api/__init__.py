"""The HTTP API (the `v1` stage of two REST APIs): Powertools' resolver routes and
validates with Pydantic and serves the OpenAPI document it generates (`routes`,
`models`). Callers authenticate with `Authorization: Bearer <key>` (checked by the
token authorizer) or SigV4 on the IAM API (`auth`), before their request is read;
every refusal is a problem document (RFC 9457) with a code, what to fix and the
request id (`problems`). Each request, answered or refused, leaves one audit line in
the log (`audit`). The work is in tryon.stages.api_requests."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.adapters.integrations import Integration
from tryon.handlers.api import problems
from tryon.handlers.api.auth import PUBLIC_PATHS, caller_of
from tryon.handlers.api.routes import IDEMPOTENCY, app, route_pattern
from tryon.handlers.observability import logger, metrics, tracer
from tryon.review import CONTENT_SECURITY_POLICY

# Swagger UI is served inline (scripts and styles in the page) and calls this API.
DOCS_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # answers carry signed links
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    IDEMPOTENCY.register_lambda_context(context)
    request = APIGatewayProxyEvent(event)
    who, status = None, 502  # what API Gateway answers when this raises
    try:
        who = None if request.path in PUBLIC_PATHS else caller_of(request)
        answer = with_security_headers(_answer(request, event, context, who), request.path)
        status = answer["statusCode"]
        return answer
    finally:
        audit(request, who, status)


def _answer(request: APIGatewayProxyEvent, event: dict, context: LambdaContext,
            who: Integration | None) -> dict:
    # The caller first: an unknown one learns nothing of how its request would fare.
    if who is not None:
        app.append_context(integration=who)
        logger.append_keys(integration=who.name, key_id=who.key_id)
    elif request.path not in PUBLIC_PATHS:
        return problems.answer(401, "Unauthorized", problems.UNAUTHORIZED,
                               request.request_context.request_id)
    return problems.refused_body(event) or app.resolve(event, context)


def audit(request: APIGatewayProxyEvent, who: Integration | None, status: int) -> None:
    """One line per request: who (integration, key id, IAM principal), what (method,
    route, path) and how it ended. Never headers, the body or the query string: they
    may hold a key, a signed link or a retailer's data."""
    context = request.request_context
    identity = context.get("identity") or {}  # .get: the audit never fails a request
    logger.info("api request", extra={
        "audit": True, "integration": who.name if who else None,
        "key_id": who.key_id if who else None, "principal": identity.get("userArn"),
        "method": request.http_method, "route": route_pattern(request.http_method,
                                                              request.path),
        "path": request.path, "status": status, "request_id": context.get("requestId"),
        "source_ip": identity.get("sourceIp")})


def with_security_headers(answer: dict, path: str) -> dict:
    """Every answer: no content sniffing, never framed, and a content security policy
    (the review page's own: images only; the docs page's: its inline Swagger UI)."""
    policy = {"/docs": DOCS_POLICY}.get(path) or (
        f"{CONTENT_SECURITY_POLICY}; frame-ancestors 'none'"
        if path.endswith("/review") else "default-src 'none'; frame-ancestors 'none'")
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": policy}
    if "multiValueHeaders" in answer:
        answer["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
    else:
        answer.setdefault("headers", {}).update(headers)
    return answer
