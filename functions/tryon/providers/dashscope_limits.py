"""The provider's limits API (CONTRACT.md, "The account's limits"): the limits in
force for a model, on the workspace's base URL (which may differ from the model
calls'). The answer's cap is the lower of the account's (`model_limit`) and the
workspace's (`workspace_limit`, null when unset), field by field."""

from __future__ import annotations

from typing import Any

from tryon.providers.http import DashScopeHttp

# The answer's fields, by the names the pipeline records them under.
FIELDS = {"requests": "request_limit", "period": "request_limit_period",
          "running": "async_user_concurrency_limit", "queue": "async_user_queue_limit"}


class LimitsClient(DashScopeHttp):
    def read(self, model: str) -> dict[str, int] | None:
        """`{"requests", "period"[, "running", "queue"]}` for `model` (running and
        queue for async models only); None when the provider lists no limits for it."""
        data = self._call("GET", "/models/limits", params={"model": model})
        output = data.get("output")
        quotas = output.get("quotas") if isinstance(output, dict) else None
        if not isinstance(quotas, list):
            raise self._malformed(data, "limits answer carries no output.quotas list")
        for quota in quotas:
            if isinstance(quota, dict) and quota.get("model") == model:
                return _lowest(quota.get("model_limit"), quota.get("workspace_limit"))
        return None


def _lowest(*caps: Any) -> dict[str, int] | None:
    """Each field's lowest positive whole number over the caps given; a rate is
    compared as requests per second, and kept with its own period."""
    limits: dict[str, int] = {}
    for cap in caps:
        if not isinstance(cap, dict):
            continue
        found = {name: cap.get(field) for name, field in FIELDS.items()}
        found = {name: value for name, value in found.items()
                 if isinstance(value, int) and not isinstance(value, bool) and value > 0}
        if "requests" in found and "period" in found and (
                "requests" not in limits
                or found["requests"] / found["period"] < limits["requests"] / limits["period"]):
            limits["requests"], limits["period"] = found["requests"], found["period"]
        for name in ("running", "queue"):
            if name in found:
                limits[name] = min(found[name], limits.get(name, found[name]))
    return limits if "requests" in limits else None
