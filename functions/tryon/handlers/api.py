"""The HTTP API (`/v1`), on API Gateway's HTTP API: Powertools' resolver routes and
validates with Pydantic and serves the OpenAPI document it generates. Callers
authenticate with `Authorization: Bearer <key>` (or SigV4 on the IAM API); every
refusal is a problem document (RFC 9457) with a code, what to fix and the request
id. The work is in tryon.stages.requests."""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, RootModel

from tryon.adapters.integrations import Integration
from tryon.handlers.observability import logger, metrics, tracer
from tryon.job_record import JobStatus
from tryon.jobs import job_view
from tryon.manifest import manifest_schema
from tryon.stages import requests
from tryon.stages.requests import Problem
from tryon.wiring import stage_context

PUBLIC_PATHS = ("/v1/openapi.json", "/v1/docs")
PROBLEM_TYPE = "application/problem+json"
IDEMPOTENCY_SECONDS = 24 * 3600

# What the OpenAPI document says of the API as a whole (/v1/openapi.json, /v1/docs).
OPENAPI = {"title": "Try-on API", "version": "1", "security": [{"bearer": []}],
           "security_schemes": {"bearer": HTTPBearer(description="the integration's key")}}

app = APIGatewayHttpResolver(enable_validation=True)
app.enable_swagger(path="/v1/docs", **OPENAPI)


# --- request and answer bodies ------------------------------------------------------

class ProblemDocument(BaseModel):
    """Every refusal (RFC 9457): `code` is stable, `detail` says what to fix."""

    type: str
    status: int
    title: str
    code: str
    detail: str
    request_id: str


def answers(success: Any, *statuses: int, status: int = 200) -> dict[int, Any]:
    """What a route documents: its answer (a model, or a JSON schema), its own refusals
    and those of every route."""
    content = {"model": success} if isinstance(success, type) else {"schema": success}
    return {status: {"description": HTTPStatus(status).phrase,
                     "content": {"application/json": content}},
            **{refusal: {"description": HTTPStatus(refusal).phrase,
                         "content": {PROBLEM_TYPE: {"model": ProblemDocument}}}
               for refusal in (401, 422, 500, *statuses)}}


OBJECT = {"type": "object"}  # a job or batch: the fields of its notification (README)


class UploadFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="the file's name")
    content_type: Literal[tuple(sorted(requests.UPLOAD_TYPES))]  # type: ignore[valid-type]


class UploadsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    files: list[UploadFile] = Field(min_length=1, max_length=20)


class UploadLink(BaseModel):
    key: str = Field(description="name it in a look (person, top, bottom or dress)")
    url: str = Field(description="POST the file here as multipart/form-data")
    fields: dict[str, str] = Field(description="form fields to send before the file")
    expires: int = Field(description="epoch seconds after which the form is refused")


class Uploads(BaseModel):
    uploads: list[UploadLink]


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The manifest schema with its local $refs replaced by what they name (an
    OpenAPI document has no room for the file's own definitions)."""
    definitions = schema.get("definitions", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items()
                    if k not in ("$schema", "$id", "definitions")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


class LooksRequest(RootModel[dict[str, Any]]):
    """A manifest, version 1: the same schema as a file under jobs/ (README)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: (
        schema.clear(), schema.update(_inlined(manifest_schema()))))


class AcceptedLook(BaseModel):
    look_id: str
    job_id: str
    status_url: str


class Accepted(BaseModel):
    batch_id: str
    job_ids: list[str]
    looks: list[AcceptedLook]
    batch_url: str


class JobList(BaseModel):
    jobs: list[dict[str, Any]]
    next: str | None = Field(description="pass as `after` for the next page; null at the end")


# --- authentication ---------------------------------------------------------------------

def caller() -> Integration:
    return app.context["integration"]


def authenticate(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """Who is calling: an IAM principal (the IAM API signs and checks; we map it to an
    integration), or a bearer key (checked against its stored hash)."""
    if app.current_event.path in PUBLIC_PATHS:
        return next_middleware(app)
    ctx = stage_context()
    quota = ctx.settings.integration_daily_quota
    authorizer = app.current_event.request_context.authorizer
    iam = authorizer.iam if authorizer else None
    if iam and iam.user_arn:
        who = ctx.integrations.for_principal(iam.user_arn, quota)
    else:
        scheme, _, key = (app.current_event.headers.get("authorization") or "").partition(" ")
        who = (ctx.integrations.authenticate(key.strip(), quota)
               if scheme.lower() == "bearer" else None)
    if who is None:
        return _problem(401, "Unauthorized",
                        "send Authorization: Bearer <key> with a key the operator created "
                        "(tryon keys create); a revoked key is refused")
    app.append_context(integration=who)
    logger.append_keys(integration=who.name)
    return next_middleware(app)


app.use(middlewares=[authenticate])


# --- routes -----------------------------------------------------------------------------

@app.get("/v1/openapi.json", include_in_schema=False)
def openapi():
    return Response(200, "application/json", app.get_openapi_json_schema(**OPENAPI))


@app.post("/v1/uploads", summary="Upload forms for images to name in looks",
          responses=answers(Uploads, 415))
def create_uploads(request: UploadsRequest) -> Uploads:
    links = requests.upload_links(stage_context(), caller(),
                                  [f.model_dump() for f in request.files])
    return Uploads(uploads=[UploadLink(**link) for link in links])


@app.post("/v1/looks", status_code=202, summary="Make the looks of a manifest",
          responses=answers(Accepted, 409, 413, 415, 429, status=202))
def create_looks(manifest: LooksRequest,
                 idempotency_key: Annotated[str | None, Header(
                     alias="Idempotency-Key", max_length=200,
                     description="a retry with the same key gets the first answer")] = None,
                 ) -> Accepted:
    who = caller()
    request = {"integration": who.name, "quota": who.daily_quota, "key": idempotency_key,
               "manifest": manifest.root,
               # A retried request writes to the same manifest key (never a second one).
               "name": ("key-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
                        if idempotency_key else app.current_event.request_context.request_id)}
    accepted = (_accept_once(request=request) if idempotency_key else _accept(request))
    base = _base_url()
    return Accepted(
        batch_id=accepted["batch_id"], job_ids=[look["job_id"] for look in accepted["looks"]],
        looks=[AcceptedLook(**look, status_url=f"{base}/jobs/{look['job_id']}")
               for look in accepted["looks"]],
        batch_url=f"{base}/batches/{accepted['batch_id']}")


@app.get("/v1/jobs/<job_id>", summary="A job: the fields of its notification",
         responses=answers(OBJECT, 404))
def get_job(job_id: str) -> dict[str, Any]:
    return job_view(requests.owned_job(stage_context(), caller(), job_id))


@app.get("/v1/jobs", summary="Your jobs, newest first", responses=answers(JobList, 404))
def list_jobs(status: Annotated[JobStatus | None, Query()] = None,
              batch: Annotated[str | None, Query(max_length=64)] = None,
              limit: Annotated[int, Query(ge=1, le=requests.MAX_PAGE)] = 20,
              after: Annotated[str | None, Query(max_length=100,
                                                 pattern=r"^[0-9.]+#[0-9a-f]+$")] = None,
              ) -> JobList:
    return JobList(**requests.list_jobs(stage_context(), caller(),
                                        status=status.value if status else None, batch=batch,
                                        limit=limit, after=after))


@app.get("/v1/jobs/<job_id>/result", summary="Short-lived links to a job's image and sidecar",
         responses=answers(OBJECT, 404, 409))
def get_result(job_id: str) -> dict[str, Any]:
    return requests.result_links(stage_context(), caller(), job_id)


@app.post("/v1/jobs/<job_id>/cancel", summary="Cancel a job the provider has not started",
          responses=answers(OBJECT, 404, 409))
def cancel_job(job_id: str) -> dict[str, Any]:
    return requests.cancel(stage_context(), caller(), job_id)


@app.get("/v1/batches/<batch_id>", summary="A batch: counts by status and its jobs",
         responses=answers(OBJECT, 404))
def get_batch(batch_id: str) -> dict[str, Any]:
    return requests.batch_of(stage_context(), caller(), batch_id)


@app.get("/v1/batches/<batch_id>/review", summary="The batch's review page (HTML)",
         responses={**answers(OBJECT, 404), 200: {"description": "The page", "content": {
             "text/html": {"schema": {"type": "string"}}}}})
def review(batch_id: str):
    page = requests.review_page(stage_context(), caller(), batch_id)
    return Response(200, "text/html; charset=utf-8", page,
                    headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


# --- accepting looks, once per idempotency key ------------------------------------------

def _accept(request: dict[str, Any]) -> dict[str, Any]:
    who = Integration(request["integration"], request["quota"])
    return requests.accept_looks(stage_context(), who, request["manifest"], request["name"])


@cache
def _idempotency() -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
    return (DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"]),
            IdempotencyConfig(event_key_jmespath="[integration, key]",
                              payload_validation_jmespath="manifest",
                              expires_after_seconds=IDEMPOTENCY_SECONDS))


def _accept_once(request: dict[str, Any]) -> dict[str, Any]:
    persistence, config = _idempotency()
    return idempotent_function(data_keyword_argument="request", config=config,
                               persistence_store=persistence)(_accept)(request=request)


# --- problems ---------------------------------------------------------------------------

def _base_url() -> str:
    event = app.current_event
    domain = event.request_context.domain_name or event.headers.get("host", "")
    scheme = "http" if domain.startswith(("127.0.0.1", "localhost")) else "https"
    return f"{scheme}://{domain}/v1"


def _problem(status: int, code: str, message: str) -> Response:
    request_id = app.current_event.request_context.request_id
    return Response(status, PROBLEM_TYPE, _problem_body(status, code, message, request_id))


def _problem_body(status: int, code: str, message: str, request_id: str) -> str:
    return json.dumps({"type": "about:blank", "status": status, "title": code, "code": code,
                       "detail": message, "request_id": request_id})


def _not_json(event: dict) -> dict | None:
    """A body that is not JSON, refused before the resolver parses it (as form data,
    which it would fail on)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if not event.get("body") or media in ("", "application/json"):
        return None
    request_id = event.get("requestContext", {}).get("requestId", "")
    return {"statusCode": 415, "headers": {"Content-Type": PROBLEM_TYPE},
            "body": _problem_body(415, "UnsupportedMediaType", "send the body as JSON, "
                                  "with Content-Type: application/json", request_id)}


@app.exception_handler(Problem)
def refused(problem: Problem) -> Response:
    return _problem(problem.status, problem.code, problem.message)


@app.exception_handler(RequestValidationError)
def invalid(error: RequestValidationError) -> Response:
    where = "; ".join(f"{'/'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                      for e in error.errors()[:5])
    return _problem(422, "InvalidRequest", f"fix the request: {where}")


@app.exception_handler(IdempotencyValidationError)
def key_reused(error: IdempotencyValidationError) -> Response:
    return _problem(422, "IdempotencyKeyReused",
                    "this Idempotency-Key was used with other looks in the last 24 h; "
                    "use a new key for new looks")


@app.exception_handler(IdempotencyAlreadyInProgressError)
def in_progress(error: IdempotencyAlreadyInProgressError) -> Response:
    return _problem(409, "RequestInProgress",
                    "a request with this Idempotency-Key is being answered; retry in a second")


@cache
def _route_methods() -> list[tuple[re.Pattern[str], list[str]]]:
    """Each documented path (as a pattern) and the methods it answers."""
    paths = json.loads(app.get_openapi_json_schema())["paths"]
    return [(re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"),
             sorted(method.upper() for method in methods)) for path, methods in paths.items()]


@app.not_found
def not_found(error: Exception) -> Response:
    event = app.current_event
    allowed = next((methods for pattern, methods in _route_methods()
                    if pattern.match(event.path)), None)
    if allowed:
        answer = _problem(405, "MethodNotAllowed", f"{event.path} answers "
                          f"{', '.join(allowed)}, not {event.http_method}; see /v1/docs")
        answer.headers["Allow"] = ", ".join(allowed)
        return answer
    return _problem(404, "NoSuchRoute", f"no route {event.http_method} {event.path}; "
                    "see /v1/docs")


@app.exception_handler(Exception)
def failed(error: Exception) -> Response:
    logger.exception("request failed")
    return _problem(500, "InternalError", "the request failed on our side; retry it with "
                    "the same Idempotency-Key, which never makes its looks twice")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # answers carry signed links
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    _idempotency()[1].register_lambda_context(context)
    return _not_json(event) or app.resolve(event, context)
