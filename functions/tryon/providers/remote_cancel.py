"""A queued provider task canceled by the function that holds the provider key.

The API function faces the internet, so it cannot read the key: to cancel a task
still queued at the provider it invokes ProviderCancelFunction (handlers/
provider_cancel.py) synchronously, which answers the provider's outcome. This is
the only provider call the API makes (stages/cancellation.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tryon.providers.errors import PermanentProviderError, RetryableProviderError


class RemoteTasks:
    """The task client's `cancel`, through the function that holds the key."""

    def __init__(self, function_name: str, lambda_client: Any) -> None:
        self._function = function_name
        self._lambda = lambda_client

    def cancel(self, task_id: str) -> str:
        answer = self._lambda.invoke(FunctionName=self._function,
                                     Payload=json.dumps({"task_id": task_id}).encode())
        result = json.loads(answer["Payload"].read() or b"null") or {}
        if "FunctionError" in answer:
            raise RetryableProviderError(None, "CancelFailed", "the cancel function failed; "
                                         "try again", outcome_known=False)
        if "error" in result:
            error = result["error"]
            raise PermanentProviderError(error.get("status"), error["code"], error["message"],
                                         request_id=error.get("request_id"))
        return str(result.get("request_id", ""))


@dataclass(frozen=True)
class CancelOnly:
    """What the API function's context has of the provider: `tasks.cancel` alone."""

    tasks: RemoteTasks


def cancel_only(function_name: str, lambda_client: Any) -> Callable[[], CancelOnly]:
    """The API function's `Context.provider`."""
    clients = CancelOnly(RemoteTasks(function_name, lambda_client))
    return lambda: clients
