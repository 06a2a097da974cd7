"""The API function's audit log: one line for every request it answers, refused ones
included, saying who asked what and how it ended, and none of the request's secrets
(moto, in process; the handler called with the events API Gateway sends)."""

import io
import json

import pytest
import test_api_auth
from moto_stages import DAY_ONE
from test_api_auth import LAMBDA_CONTEXT, ROLE, SESSION
from tryon.handlers.observability import logger

handlers = test_api_auth.handlers  # its fixture, for the tests here

KEY = "tryon_k1_" + "s" * 43  # a bearer key, as the authorizer saw it
NAMED = {"integration": "acme", "key_id": "k1", "daily_quota": "5"}
SECRETS = (KEY, "X-Amz-Signature=feed", "cursor-secret", "retailer-note")


@pytest.fixture
def log(monkeypatch):
    """What the Powertools logger writes (JSON lines on stdout in Lambda)."""
    out = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", out)
    return out


def audit_lines(log: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    return [line for line in lines if line.get("audit")]


def request(handlers, *, path: str, method: str = "GET", api: str = "bearer",
            authorizer: dict | None = None, user_arn: str | None = None) -> int:
    """A request that carries secrets in its header, query and body."""
    context = {"requestId": f"r-{method}{path}", "stage": "v1", "path": f"/v1{path}",
               "httpMethod": method, "resourcePath": "/{proxy+}",
               "identity": {"sourceIp": "192.0.2.1", "userArn": user_arn},
               **({"authorizer": authorizer} if authorizer else {})}
    event = {"resource": "/{proxy+}", "path": path, "httpMethod": method,
             "headers": {"Authorization": f"Bearer {KEY}", "content-type": "application/json"},
             "multiValueHeaders": {"Authorization": [f"Bearer {KEY}"]},
             "queryStringParameters": {"after": "cursor-secret"},
             "stageVariables": {"auth": api}, "requestContext": context,
             "body": json.dumps({"note": "retailer-note",
                                 "url": "https://x/y?X-Amz-Signature=feed"}),
             "isBase64Encoded": False}
    return handlers.api.handler(event, LAMBDA_CONTEXT)["statusCode"]


def test_every_request_leaves_one_audit_line_and_none_of_its_secrets(handlers, log):
    from tryon import wiring

    wiring.stage_context().integrations.allow_principal("acme", ROLE, DAY_ONE)
    asked = [  # (request, status, integration, key id, route)
        (dict(path="/jobs", authorizer=NAMED), 422, "acme", "k1", "/jobs"),  # bad cursor
        (dict(path="/jobs/j-1", authorizer=NAMED), 404, "acme", "k1", "/jobs/{job_id}"),
        (dict(path="/looks", method="POST"), 401, None, None, "/looks"),
        (dict(path="/nowhere", authorizer=NAMED), 404, "acme", "k1", None),
        (dict(path="/jobs/j-1", api="iam", user_arn=SESSION), 404, "acme", None,
         "/jobs/{job_id}"),
        (dict(path="/openapi.json"), 200, None, None, "/openapi.json"),
    ]
    for fields, status, integration, key_id, route in asked:
        log.seek(0)
        log.truncate()
        assert request(handlers, **fields) == status, fields
        [line] = audit_lines(log)  # exactly one
        method, path = fields.get("method", "GET"), fields["path"]
        assert {k: line.get(k) for k in ("integration", "key_id", "method", "route", "path",
                                         "status", "request_id", "source_ip")} == {
            "integration": integration, "key_id": key_id, "method": method, "route": route,
            "path": path, "status": status, "request_id": f"r-{method}{path}",
            "source_ip": "192.0.2.1"}
        assert line.get("principal") == fields.get("user_arn")  # None: left out
        text = json.dumps(line).lower()
        assert "authorization" not in text and "bearer" not in text
        assert not [s for s in SECRETS if s.lower() in log.getvalue().lower()]


def test_a_request_the_function_fails_on_is_audited_as_the_gateways_502(handlers, log,
                                                                         monkeypatch):
    def broken(request):
        raise RuntimeError("the table is unreachable")

    monkeypatch.setattr(handlers.api, "caller_of", broken)
    with pytest.raises(RuntimeError):
        request(handlers, path="/jobs", authorizer=NAMED)
    [line] = audit_lines(log)
    assert (line["status"], line.get("integration"), line["route"]) == (502, None, "/jobs")
