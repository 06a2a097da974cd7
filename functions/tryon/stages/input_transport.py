"""How the provider gets a job's inputs: a presigned S3 URL of the checked version
(default), or the provider's own temporary upload (`oss://`), per InputTransport."""

from __future__ import annotations

from typing import Any

from tryon.job_record import JobRecord
from tryon.stages.context import Context
from tryon.stages.provider_calls import call_provider


def uploads_to_provider(ctx: Context) -> bool:
    return ctx.settings.input_transport == "provider-upload"


def input_urls(ctx: Context, client: Any, job: JobRecord) -> dict[str, str]:
    return {role: input_url(ctx, client, job.model, job.job_id, role, ref)
            for role, ref in (job.submit_inputs or {}).items()}


def input_url(ctx: Context, client: Any, model: str, job_id: str, role: str,
              ref: dict[str, Any]) -> str:
    if uploads_to_provider(ctx):
        data = ctx.storage.read(ref["bucket"], ref["key"], ref.get("version_id"))
        filename = f"{job_id}-{role}.{ref['extension']}"
        return call_provider(ctx, job_id, "upload", lambda: client.upload(
            model, filename, data, ref["content_type"]))
    return ctx.storage.presign_get(ref["bucket"], ref["key"],
                                   ctx.settings.input_url_ttl_seconds, ref.get("version_id"))
