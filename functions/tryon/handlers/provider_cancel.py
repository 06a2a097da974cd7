"""Cancel one task still queued at the provider, for the API function (which cannot
read the provider key): invoked synchronously, answers the provider's outcome."""

from __future__ import annotations

import re

from aws_lambda_powertools.utilities.typing import LambdaContext

from tryon.handlers.observability import logger
from tryon.providers.errors import ProviderError
from tryon.wiring import stage_context

TASK_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> dict:
    task_id = str(event.get("task_id", ""))
    if not TASK_ID.match(task_id):
        return {"error": {"status": None, "code": "InvalidTaskId",
                          "message": "not a provider task id"}}
    try:
        request_id = stage_context().provider().tasks.cancel(task_id)
    except ProviderError as exc:
        logger.info("cancel refused", extra={"task_id": task_id, "code": exc.code})
        return {"error": {"status": exc.status, "code": exc.code, "message": exc.message[:1000],
                          "request_id": exc.request_id}}
    logger.info("canceled at the provider", extra={"task_id": task_id})
    return {"request_id": request_id}
