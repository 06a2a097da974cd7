"""The routes of the `v1` stage: Powertools' resolver validates each request against its models,
`auth` says who is calling, tryon.stages.api_requests does the work, and every error
becomes a problem document (`problems`)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from tryon.handlers.api import erasure_routes, problems, webhook_routes
from tryon.handlers.api.auth import caller
from tryon.handlers.api.models import (
    OBJECT,
    Accepted,
    AcceptedLook,
    BatchAccepted,
    BatchRequest,
    JobList,
    LooksRequest,
    UploadLink,
    Uploads,
    UploadsRequest,
    answers,
)
from tryon.job_record import JobStatus
from tryon.jobs import job_view
from tryon.stages import api_requests, webhooks
from tryon.wiring import stage_context, webhook_context

# What the OpenAPI document says of the API as a whole (/v1/openapi.json, /v1/docs).
OPENAPI = {"title": "Try-on API", "version": "1", "security": [{"bearer": []}],
           "servers": [Server(url="/v1")],  # the REST APIs' stage (template.yaml)
           "security_schemes": {"bearer": HTTPBearer(description="the integration's key")}}
IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="[integration, key]",
                                payload_validation_jmespath="manifest",
                                expires_after_seconds=24 * 3600)

app = APIGatewayRestResolver(enable_validation=True)
app.enable_swagger(path="/docs", **OPENAPI)
app.include_router(webhook_routes.router)
app.include_router(erasure_routes.router)  # DELETE /uploads/..., /jobs/{id}, /batches/{id}


@app.get("/openapi.json", include_in_schema=False)
def openapi():
    return Response(200, "application/json", _openapi_document())


@cache
def _openapi_document() -> str:
    """Built once per cold start: the routes do not change while the function runs."""
    return app.get_openapi_json_schema(**OPENAPI)


@app.post("/uploads", summary="Upload forms for images to name in looks",
          responses=answers(Uploads, 415))
def create_uploads(request: UploadsRequest) -> Uploads:
    links = api_requests.upload_links(stage_context(), caller(app),
                                      [f.model_dump() for f in request.files])
    return Uploads(uploads=[UploadLink(**link) for link in links])


@app.post("/looks", status_code=202, summary="Make the looks of a manifest",
          responses=answers(Accepted, 409, 413, 415, 429, status=202))
def create_looks(manifest: LooksRequest,
                 idempotency_key: Annotated[str | None, Header(
                     alias="Idempotency-Key", max_length=200,
                     description="a retry with the same key gets the first answer")] = None,
                 ) -> Accepted:
    who = caller(app)
    request = {"integration": who.name, "key": idempotency_key,
               "manifest": webhooks.with_named_webhook(webhook_context(), who.name,
                                                       manifest.root)
               if "webhook" in manifest.root else manifest.root,
               "name": _request_name(idempotency_key)}
    accepted = _accept_once()(request=request) if idempotency_key else _accept(request)
    base = _base_url()
    return Accepted(
        batch_id=accepted["batch_id"], job_ids=[look["job_id"] for look in accepted["looks"]],
        looks=[AcceptedLook(**look, status_url=f"{base}/jobs/{look['job_id']}")
               for look in accepted["looks"]],
        batch_url=f"{base}/batches/{accepted['batch_id']}")


@app.get("/jobs/<job_id>", summary="A job: the fields of its notification",
         responses=answers(OBJECT, 404))
def get_job(job_id: str) -> dict[str, Any]:
    return job_view(api_requests.owned_job(stage_context(), caller(app), job_id))


@app.get("/jobs", summary="Your jobs, newest first", responses=answers(JobList, 404))
def list_jobs(status: Annotated[JobStatus | None, Query()] = None,
              batch: Annotated[str | None, Query(max_length=64)] = None,
              limit: Annotated[int, Query(ge=1, le=api_requests.MAX_PAGE)] = 20,
              after: Annotated[str | None, Query(max_length=100,
                                                 pattern=r"^[0-9.]+#[0-9a-f]+$")] = None,
              ) -> JobList:
    return JobList(**api_requests.list_jobs(stage_context(), caller(app),
                                            status=status.value if status else None,
                                            batch=batch, limit=limit, after=after))


@app.get("/jobs/<job_id>/result", summary="Short-lived links to a job's image and sidecar",
         responses=answers(OBJECT, 404, 409, 410))
def get_result(job_id: str) -> dict[str, Any]:
    return api_requests.result_links(stage_context(), caller(app), job_id)


@app.post("/jobs/<job_id>/cancel", summary="Cancel a job the provider has not started",
          responses=answers(OBJECT, 404, 409))
def cancel_job(job_id: str) -> dict[str, Any]:
    return api_requests.cancel(stage_context(), caller(app), job_id)


@app.post("/batches", status_code=202, summary="A catalogue file (CSV or JSON Lines) as a "
          "batch: its id at once, and a form to upload it or your uploaded file read",
          responses=answers(BatchAccepted, 413, 429, status=202))
def create_batch(request: BatchRequest,
                 idempotency_key: Annotated[str | None, Header(
                     alias="Idempotency-Key", max_length=200,
                     description="a retry with the same key gets the same batch")] = None,
                 ) -> BatchAccepted:
    who, ctx = caller(app), stage_context()
    name = _request_name(idempotency_key)
    made = (api_requests.new_batch_form(ctx, who, request.file.model_dump(), name)
            if request.file else api_requests.batch_of_upload(ctx, who, request.key, name))
    return BatchAccepted(batch_id=made["batch_id"], rows=made.get("rows"),
                         upload=UploadLink(**made["upload"]) if "upload" in made else None,
                         batch_url=f"{_base_url()}/batches/{made['batch_id']}")


@app.post("/batches/<batch_id>/cancel", summary="Cancel every look of a batch the provider "
          "has not started (the rest in the background); says what was saved",
          responses=answers(OBJECT, 404))
def cancel_batch(batch_id: str) -> dict[str, Any]:
    return api_requests.cancel_batch(stage_context(), caller(app), batch_id)


@app.post("/batches/<batch_id>/retry", status_code=202, summary="Make a batch's failed and "
          "timed-out looks again, as a new batch linked to it", responses=answers(
              OBJECT, 404, 409, status=202))
def retry_batch(batch_id: str) -> dict[str, Any]:
    retried = api_requests.retry_batch(stage_context(), caller(app), batch_id)
    return {**retried, "batch_url": f"{_base_url()}/batches/{retried['batch_id']}"}


@app.get("/batches/<batch_id>", summary="A batch: counts by status and its jobs (a page of "
         "them for a batch of more than 100, with `next`)", responses=answers(OBJECT, 404))
def get_batch(batch_id: str,
              after: Annotated[str | None, Query(max_length=100,
                                                 pattern=r"^[0-9]+#[0-9a-f]+$")] = None,
              ) -> dict[str, Any]:
    return api_requests.batch_of(stage_context(), caller(app), batch_id, after)


@app.get("/batches/<batch_id>/review", summary="The batch's review page (HTML): a page of "
         "100 looks for a larger batch, its failed looks only with failed=true",
         responses={**answers(OBJECT, 404), 200: {"description": "The page", "content": {
             "text/html": {"schema": {"type": "string"}}}}})
def review(batch_id: str,
           after: Annotated[str | None, Query(max_length=100,
                                              pattern=r"^[0-9]+#[0-9a-f]+$")] = None,
           failed: Annotated[bool, Query()] = False):
    page = api_requests.review_page(stage_context(), caller(app), batch_id, after=after,
                                    failed=failed)
    return Response(200, "text/html; charset=utf-8", page,
                    headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


@app.exception_handler(Exception)
def refused(error: Exception) -> Response:
    return _problem(*problems.of_error(error))


@app.not_found
def not_found(error: Exception) -> Response:
    event = app.current_event
    allowed = next((methods for rule, methods in _documented_routes() if rule.match(event.path)),
                   [])
    answer = _problem(*problems.no_route(event.http_method, event.path, allowed))
    if allowed:
        answer.headers["Allow"] = ", ".join(allowed)
    return answer


@cache
def _documented_routes() -> list[tuple[re.Pattern[str], list[str]]]:
    """The resolver's own route table, each documented path once: the pattern it
    matches requests with and the methods it answers."""
    table: dict[str, tuple[re.Pattern[str], list[str]]] = {}
    for route in app._static_routes + app._dynamic_routes:  # Powertools' (pinned) table
        if route.include_in_schema:
            table.setdefault(route.path, (route.rule, []))[1].append(route.method)
    return [(rule, sorted(methods)) for rule, methods in table.values()]


def route_pattern(method: str, path: str) -> str | None:
    """The route a request is for, as the OpenAPI document writes it (`/jobs/{job_id}`);
    None when no route answers it. Matched as the resolver matches (static routes first)."""
    return next((route.openapi_path for route in app._static_routes + app._dynamic_routes
                 if route.method == method.upper() and route.rule.match(path)), None)


def _accept(request: dict[str, Any]) -> dict[str, Any]:
    # The caller with its settings (the request holds its name: the idempotency key's).
    return api_requests.accept_looks(stage_context(), caller(app), request["manifest"],
                                     request["name"])


@cache
def _accept_once() -> Callable[..., dict[str, Any]]:
    """`_accept` answered once per integration and Idempotency-Key, for 24 h (built on
    first use: the table is named by the function's environment)."""
    persistence = DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])
    return idempotent_function(data_keyword_argument="request", config=IDEMPOTENCY,
                               persistence_store=persistence)(_accept)


def _request_name(idempotency_key: str | None) -> str:
    """What a request's file is named by: a retry under the same Idempotency-Key writes
    to the same key (never a second one)."""
    if idempotency_key:
        return "key-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return app.current_event.request_context.request_id


def _base_url() -> str:
    event = app.current_event
    domain = event.request_context.domain_name or event.headers.get("host", "")
    scheme = "http" if domain.startswith(("127.0.0.1", "localhost")) else "https"
    return f"{scheme}://{domain}/{event.request_context.stage}"


def _problem(status: int, code: str, detail: str) -> Response:
    return problems.response(status, code, detail, app.current_event.request_context.request_id)
