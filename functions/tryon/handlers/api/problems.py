"""Every refusal is a problem document (RFC 9457): a stable `code`, a `detail` that
says what to fix, and the request id. What each error tells the caller is here."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from tryon.handlers.observability import logger
from tryon.stages.api_requests import Problem

PROBLEM_TYPE = "application/problem+json"
MAX_NESTING = 32  # JSON levels a request body may nest (a manifest uses 4)
UNAUTHORIZED = ("send Authorization: Bearer <key> with a key the operator created "
                "(tryon keys create); a revoked key is refused")


def document(status: int, code: str, detail: str, request_id: str) -> str:
    return json.dumps({"type": "about:blank", "status": status, "title": code, "code": code,
                       "detail": detail, "request_id": request_id})


def response(status: int, code: str, detail: str, request_id: str) -> Response:
    return Response(status, PROBLEM_TYPE, document(status, code, detail, request_id))


def of_error(error: Exception) -> tuple[int, str, str]:
    """The status, code and detail an error answers with (anything unforeseen: 500)."""
    match error:
        case Problem():
            return error.status, error.code, error.message
        case RequestValidationError():
            where = "; ".join(f"{'/'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                              for e in error.errors()[:5])
            return 422, "InvalidRequest", f"fix the request: {where}"
        case IdempotencyValidationError():
            return (422, "IdempotencyKeyReused", "this Idempotency-Key was used with other looks "
                    "in the last 24 h; use a new key for new looks")
        case IdempotencyAlreadyInProgressError():
            return (409, "RequestInProgress", "a request with this Idempotency-Key is being "
                    "answered; retry in a second")
    logger.exception("request failed")
    return (500, "InternalError", "the request failed on our side; retry it with the same "
            "Idempotency-Key, which never makes its looks twice")


def no_route(method: str, path: str, allowed: list[str]) -> tuple[int, str, str]:
    """A path no route serves (404), or one served for other methods (405, see Allow)."""
    if allowed:
        return (405, "MethodNotAllowed",
                f"{path} answers {', '.join(allowed)}, not {method}; see /v1/docs")
    return 404, "NoSuchRoute", f"no route {method} {path}; see /v1/docs"


def answer(status: int, code: str, detail: str, request_id: str) -> dict:
    """A problem as the Lambda's own answer (before the resolver runs)."""
    return {"statusCode": status, "headers": {"Content-Type": PROBLEM_TYPE},
            "body": document(status, code, detail, request_id)}


def refused_body(event: dict) -> dict | None:
    """A body refused before the resolver parses it: not JSON (the resolver would
    read it as form data and fail), or nested deeper than any manifest (its
    validation would recurse past Python's limit)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    body = event.get("body")
    request_id = event.get("requestContext", {}).get("requestId", "")
    if not body:
        return None
    if media not in ("", "application/json"):
        return answer(415, "UnsupportedMediaType", "send the body as JSON, with "
                      "Content-Type: application/json", request_id)
    if nesting(body) > MAX_NESTING:
        return answer(400, "InvalidRequest", f"the JSON is nested deeper than {MAX_NESTING} "
                      "levels; a manifest needs at most 4", request_id)
    return None


def nesting(text: str) -> int:
    """How deep arrays and objects nest in JSON `text` (brackets in strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
