"""The bearer API's token authorizer: which integration a key belongs to, before any
route runs. API Gateway has already refused a missing or malformed key (the
authorizer's validation expression); this looks the key's hash up (one GetItem)
and answers a policy for every route of the stage, which API Gateway caches for
the key (the template's ReauthorizeEvery: how long a revoked key still works)."""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerTokenEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.adapters.integrations import Integrations
from tryon.handlers.observability import logger


@cache
def _integrations() -> Integrations:
    return Integrations(os.environ["CREDENTIALS_TABLE"])


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerTokenEvent)
def handler(event: APIGatewayAuthorizerTokenEvent, context: LambdaContext) -> dict:
    scheme, _, key = event.authorization_token.partition(" ")
    who = (_integrations().authenticate(key.strip(), int(os.environ["INTEGRATION_DAILY_QUOTA"]))
           if scheme == "Bearer" else None)
    arn = event.parsed_arn
    answer = APIGatewayAuthorizerResponse(
        principal_id=who.name if who else "unknown", region=arn.region,
        aws_account_id=arn.aws_account_id, api_id=arn.api_id, stage=arn.stage,
        # What the API function needs of the caller, and what the access log records.
        context=who.context() if who else None)
    if who is None:
        # Denied, not raised: API Gateway caches a Deny too, so a repeated bad key
        # runs nothing until the cache expires (answered 401, the gateway response).
        logger.info("key refused")
        answer.deny_all_routes()
    else:
        logger.info("key accepted", extra={"integration": who.name, "key_id": who.key_id})
        answer.allow_all_routes()
    return answer.asdict()
