"""The limits API (CONTRACT.md, "The account's limits"): each model's limits in
force, in the documented shape. The emulator serves it on its one base URL; the
provider documents it on the workspace's domain."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..config import ModelQuota
from .protocol import API_PREFIX, emulator_state, ok, paging, refused, route

WORKSPACE_ID = "ws-emulator"


def limit_fields(quota: ModelQuota) -> dict[str, Any]:
    return {"request_limit": quota.request_limit,
            "request_limit_period": quota.request_limit_period,
            "usage_limit": None, "usage_limit_field": None, "usage_limit_period": None,
            # Null for a synchronous model: it has no running tasks or queue.
            "async_user_concurrency_limit": quota.concurrency,
            "async_user_queue_limit": quota.queue if quota.concurrency is not None else None}


async def read_limits(request: Request) -> Response:
    state = emulator_state(request)
    if (denied := refused(request, state, "limits_requests", "limits")) is not None:
        return denied
    if isinstance(paged := paging(request, default_size=20), JSONResponse):
        return paged
    page_no, page_size = paged
    params = request.query_params
    # An unknown model lists nothing (not documented); a retired one is still listed:
    # its limits are the account's facts.
    models = [m for m in state.quotas if m == params["model"]] if params.get("model") else list(
        state.quotas)
    page = models[(page_no - 1) * page_size: page_no * page_size]
    quotas = [{"model": model, "workspace_id": WORKSPACE_ID,
               "model_limit": limit_fields(state.quotas[model]),
               "workspace_limit": (limit_fields(state.workspace_quotas[model])
                                   if state.workspace_quotas[model] else None)}
              for model in page]
    return ok({"output": {"total": len(models), "page_no": page_no, "page_size": page_size,
                          "quotas": quotas}})


ROUTES = route(API_PREFIX + "/models/limits", read_limits, ["GET"])
