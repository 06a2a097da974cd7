"""The HTTP API (`/v1`), on API Gateway's HTTP API: Powertools' resolver routes and
validates with Pydantic and serves the OpenAPI document it generates (`routes`,
`models`). Callers authenticate with `Authorization: Bearer <key>` (or SigV4 on the
IAM API; `auth`); every refusal is a problem document (RFC 9457) with a code, what to
fix and the request id (`problems`). The work is in tryon.stages.api_requests."""

from __future__ import annotations

from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.api.problems import not_json
from tryon.handlers.api.routes import IDEMPOTENCY, app
from tryon.handlers.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # answers carry signed links
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    IDEMPOTENCY.register_lambda_context(context)
    return not_json(event) or app.resolve(event, context)
