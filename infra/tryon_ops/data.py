"""`tryon data erase`: the operator erases an integration's data (or one job, batch or
upload) with the erasure stage's own code, on a deployed stack or the local one.
With --and-keys an integration's credentials go too: it can no longer call."""

from __future__ import annotations

from typing import Any

from tryon.jobs import INTEGRATION_NAME, UPLOADS_PREFIX
from tryon.stages import erasure
from tryon.wiring import build_webhooks

from tryon_ops.operations import OperatorError, Target


def erase(target: Target, *, integration: str | None = None, job: str | None = None,
          batch: str | None = None, upload: str | None = None,
          and_keys: bool = False) -> dict[str, Any]:
    """What was erased: counts of objects, versions, records, and the inputs kept
    because a job not erased names them."""
    ctx = target.ctx
    try:
        if integration:
            if not INTEGRATION_NAME.match(integration):
                raise OperatorError(f"{integration!r} is not an integration name")
            erased = erasure.erase_integration(ctx, integration)
            erased.webhook_records = _erase_webhooks(target, integration, and_keys)
            if and_keys:
                erased.credentials += target.integrations.forget(integration)
            what = f"integration {integration}"
        elif job:
            erased, what = erasure.erase_job(ctx, job), f"job {job}"
        elif batch:
            erased, what = erasure.erase_batch(ctx, batch), f"batch {batch}"
        elif upload:
            owner = upload.removeprefix(UPLOADS_PREFIX).split("/", 1)[0]
            if not upload.startswith(UPLOADS_PREFIX) or not INTEGRATION_NAME.match(owner):
                raise OperatorError(f"{upload!r} is not an upload key: uploads/<integration>/...")
            erased, what = erasure.erase_upload(ctx, owner, upload), f"upload {upload}"
        else:
            raise OperatorError("say what to erase: --integration, --job, --batch or --upload")
    except erasure.CannotErase as exc:
        raise OperatorError(f"cannot erase: {exc}") from None
    except KeyError as exc:
        raise OperatorError(f"cannot erase: no such job or batch {exc.args[0]!r} on "
                            f"{target.name}") from None
    return {"erased": what, **erased.as_dict()}


def _erase_webhooks(target: Target, integration: str, and_keys: bool) -> int:
    """Its webhook deliveries (each holds a notification's body) for every endpoint;
    with its keys, the endpoints and their secrets too (counted as credentials)."""
    webhooks = build_webhooks(target.ctx.settings, target.session)
    endpoints = webhooks.endpoints.list(integration)
    deleted = sum(webhooks.deliveries.forget(integration, e["id"]) for e in endpoints)
    if and_keys:
        webhooks.endpoints.forget(integration)
    return deleted + (len(endpoints) if and_keys else 0)


def format_erased(erased: dict[str, Any]) -> str:
    lines = [f"erased {erased['erased']}: {erased['objects']} objects ({erased['versions']} "
             f"versions and delete markers), {erased['jobs']} job records cut to their billing "
             f"fields, {erased['batches']} batches, {erased['credentials']} credential records, "
             f"{erased['webhook_records']} webhook records (endpoints and deliveries)"]
    if erased["kept"]:
        lines.append(f"kept {len(erased['kept'])} inputs other jobs still name (or the "
                     "operator's own):")
        lines += [f"  {uri}" for uri in erased["kept"]]
    return "\n".join(lines)
