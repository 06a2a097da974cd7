"""Who the API's caller is (moto, in process; the handlers called with the events API
Gateway sends): the token authorizer knows a bearer key by its hash; the API function
takes the integration the authorizer named on the bearer API, maps an IAM principal
on the IAM API (which the local gateway does not serve), and refuses anyone else
before it reads the request."""

import json
from types import SimpleNamespace

import pytest
from moto_stages import DAY_ONE
from tryon.adapters.integrations import Integrations, key_hash, role_of

ROLE = "arn:aws:iam::123456789012:role/acme-orders"
SESSION = "arn:aws:sts::123456789012:assumed-role/acme-orders/i-0abc"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/jobs"
LAMBDA_CONTEXT = SimpleNamespace(function_name="api", memory_limit_in_mb=256,
                                 invoked_function_arn="arn:aws:lambda:x", aws_request_id="r",
                                 get_remaining_time_in_millis=lambda: 30000)


@pytest.fixture
def handlers(moto_stages, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TryOn")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    monkeypatch.setenv("JOBS_TABLE", "jobs")
    monkeypatch.setenv("INTEGRATION_DAILY_QUOTA", "7")
    from tryon import wiring
    from tryon.handlers import api, authorizer

    wiring.stage_context.cache_clear()
    authorizer._integrations.cache_clear()
    yield SimpleNamespace(api=api, authorizer=authorizer)
    wiring.stage_context.cache_clear()


def authorize(handlers, token: str) -> dict:
    return handlers.authorizer.handler({"type": "TOKEN", "authorizationToken": token,
                                        "methodArn": METHOD_ARN}, LAMBDA_CONTEXT)


def call(handlers, *, api="bearer", authorizer=None, user_arn=None, path="/jobs",
         method="GET", body=None) -> dict:
    context = {"requestId": "r-1", "domainName": "api.example.com", "stage": "v1",
               "path": f"/v1{path}", "httpMethod": method, "resourcePath": "/{proxy+}",
               "identity": {"sourceIp": "192.0.2.1", "userArn": user_arn}}
    if authorizer:
        context["authorizer"] = authorizer
    event = {"resource": "/{proxy+}", "path": path, "httpMethod": method,
             "headers": {"content-type": "application/json"} if body else {},
             "stageVariables": {"auth": api}, "requestContext": context,
             "body": body, "isBase64Encoded": False}
    answer = handlers.api.handler(event, LAMBDA_CONTEXT)
    return {"status": answer["statusCode"], "body": json.loads(answer["body"])}


def test_the_authorizer_knows_a_key_by_its_hash_alone_and_denies_it_once_revoked(handlers):
    integrations = Integrations("credentials")
    key, key_id = integrations.create_key("acme", 5, DAY_ONE)
    stored = json.dumps([i for i in integrations.list()], default=str)
    assert key not in stored and key_hash(key) not in stored  # the list shows no secret
    allowed = authorize(handlers, f"Bearer {key}")
    assert allowed["context"] == {"integration": "acme", "key_id": key_id, "daily_quota": 5,
                                  "allow_instruction": False,
                                  "priorities": "interactive,batch", "budget_share": ""}
    [statement] = allowed["policyDocument"]["Statement"]
    # One answer for every route of the stage: API Gateway caches it per key.
    assert statement["Effect"] == "Allow" and statement["Resource"] == [
        "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"]
    for token in (f"Basic {key}", f"Bearer {key}x"):
        assert authorize(handlers, token)["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    integrations.revoke("acme", key_id, DAY_ONE)
    denied = authorize(handlers, f"Bearer {key}")
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert "context" not in denied or not denied["context"]


def test_the_api_serves_the_integration_its_authorizer_named_and_refuses_without_one(handlers):
    named = {"principalId": "acme", "integration": "acme", "key_id": "k1",
             "daily_quota": "5", "allow_instruction": "false"}  # as strings, as they arrive
    assert call(handlers, authorizer=named) == {"status": 200,
                                                "body": {"jobs": [], "next": None}}
    refused = call(handlers)
    assert refused["status"] == 401 and refused["body"]["code"] == "Unauthorized"
    assert refused["body"]["request_id"] == "r-1"
    # A principal is trusted on the IAM API only, an authorizer's context on the bearer one.
    Integrations("credentials").allow_principal("acme", ROLE, DAY_ONE)
    assert call(handlers, user_arn=SESSION)["status"] == 401
    assert call(handlers, api="iam", authorizer=named)["status"] == 401


def test_an_unknown_caller_learns_nothing_of_its_body_and_a_deep_one_is_refused(handlers):
    bad = json.dumps({"version": 1, "looks": "not a list"})
    assert call(handlers, path="/looks", method="POST", body=bad)["status"] == 401
    deep = "[" * 5000 + "]" * 5000
    assert call(handlers, path="/looks", method="POST", body=deep)["status"] == 401
    named = {"integration": "acme", "key_id": "k1", "daily_quota": "5"}
    refused = call(handlers, authorizer=named, path="/looks", method="POST", body=deep)
    assert refused["status"] == 400 and "nested deeper than 32" in refused["body"]["detail"]
    invalid = call(handlers, authorizer=named, path="/looks", method="POST", body=bad)
    assert invalid["status"] == 422


def test_an_iam_caller_acts_for_the_integration_its_role_was_allowed_for(handlers):
    integrations = Integrations("credentials")
    assert call(handlers, api="iam", user_arn=SESSION)["status"] == 401  # not allowed
    integrations.allow_principal("acme", ROLE, DAY_ONE)
    assert role_of(SESSION) == ROLE
    assert call(handlers, api="iam", user_arn=SESSION) == {
        "status": 200, "body": {"jobs": [], "next": None}}
    integrations.revoke("acme", None, DAY_ONE)
    assert call(handlers, api="iam", user_arn=SESSION)["status"] == 401
    integrations.allow_principal("acme", ROLE, DAY_ONE)  # allowed again: open again
    assert call(handlers, api="iam", user_arn=SESSION)["status"] == 200


def test_every_answer_says_no_sniffing_and_no_framing_and_the_docs_their_own_policy(handlers):
    def headers_of(answer: dict) -> dict:
        return {**answer.get("headers", {}),
                **{k: v[-1] for k, v in answer.get("multiValueHeaders", {}).items()}}

    event = {"resource": "/{proxy+}", "path": "/jobs", "httpMethod": "GET", "headers": {},
             "stageVariables": {"auth": "bearer"}, "body": None,
             "requestContext": {"requestId": "r-1", "stage": "v1", "path": "/v1/jobs",
                                "identity": {}}}
    for path, authorizer in (("/jobs", None), ("/jobs", {"integration": "acme",
                                                          "daily_quota": "5"})):
        answer = handlers.api.handler({**event, "path": path, "requestContext": {
            **event["requestContext"], **({"authorizer": authorizer} if authorizer else {})}},
            LAMBDA_CONTEXT)
        headers = headers_of(answer)
        assert headers["X-Content-Type-Options"] == "nosniff", answer["statusCode"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    docs = handlers.api.handler({**event, "path": "/docs", "resource": "/docs",
                                 "requestContext": {**event["requestContext"],
                                                    "path": "/v1/docs"}}, LAMBDA_CONTEXT)
    assert docs["statusCode"] == 200
    assert "script-src 'unsafe-inline'" in headers_of(docs)["Content-Security-Policy"]
