"""The erasure routes: an integration deletes its own uploads, jobs and batches for good
(tryon.stages.erasure does the work; README, "Your data, under your control")."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from tryon.handlers.api.auth import caller
from tryon.handlers.api.models import answers
from tryon.jobs import UPLOADS_PREFIX
from tryon.stages import erasure
from tryon.wiring import stage_context

router = Router()
ERASED = {204: {"description": "Erased: every version of its objects is gone", "content": {}}}


def _erased() -> Response:
    return Response(204, None, "")


@router.delete("/uploads/<integration>/<upload_id>/<name>",
               summary="Erase an upload (the key POST /uploads answered, under /v1/)",
               responses={**answers({"type": "object"}, 404, 409, status=204), **ERASED})
def erase_upload(integration: str, upload_id: str, name: str):
    key = f"{UPLOADS_PREFIX}{integration}/{upload_id}/{name}"
    erasure.erase_upload_of(stage_context(), caller(router), key)
    return _erased()


@router.delete("/jobs/<job_id>", summary="Erase an ended job: its images, inputs and details",
               responses={**answers({"type": "object"}, 404, 409, status=204), **ERASED})
def erase_job(job_id: str):
    erasure.erase_job_of(stage_context(), caller(router), job_id)
    return _erased()


@router.delete("/batches/<batch_id>", summary="Erase an ended batch, its jobs and manifest",
               responses={**answers({"type": "object"}, 404, 409, status=204), **ERASED})
def erase_batch(batch_id: str):
    erasure.erase_batch_of(stage_context(), caller(router), batch_id)
    return _erased()
