"""Who the API's caller is (moto, in process; the handler called with the events API
Gateway sends): a bearer key by its hash, an IAM principal (the SigV4 API, which the
local gateway does not serve) by the role the operator allowed, and nobody else."""

import json
from types import SimpleNamespace

import pytest
from moto_stages import DAY_ONE
from tryon.adapters.integrations import Integrations, key_hash, role_of

ROLE = "arn:aws:iam::123456789012:role/acme-orders"
SESSION = "arn:aws:sts::123456789012:assumed-role/acme-orders/i-0abc"


@pytest.fixture
def api(moto_stages, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TryOn")
    monkeypatch.setenv("IDEMPOTENCY_TABLE", "idempotency")
    from tryon import wiring
    from tryon.handlers import api as module

    wiring.stage_context.cache_clear()
    yield module
    wiring.stage_context.cache_clear()


def call(api, *, headers=None, iam_arn=None, path="/v1/jobs") -> dict:
    context = {"requestId": "r-1", "domainName": "api.example.com", "stage": "$default",
               "http": {"method": "GET", "path": path, "sourceIp": "192.0.2.1"}}
    if iam_arn:
        context["authorizer"] = {"iam": {"userArn": iam_arn, "accountId": "123456789012"}}
    event = {"version": "2.0", "routeKey": "ANY /v1/{proxy+}", "rawPath": path,
             "rawQueryString": "", "headers": headers or {}, "requestContext": context,
             "isBase64Encoded": False}
    lambda_context = SimpleNamespace(function_name="api", memory_limit_in_mb=256,
                                     invoked_function_arn="arn:aws:lambda:x", aws_request_id="r",
                                     get_remaining_time_in_millis=lambda: 30000)
    answer = api.handler(event, lambda_context)
    return {"status": answer["statusCode"], "body": json.loads(answer["body"])}


def test_a_bearer_key_is_known_by_its_hash_alone_and_revoked_at_once(api):
    integrations = Integrations("jobs")
    key, key_id = integrations.create_key("acme", 5, DAY_ONE)
    stored = json.dumps([i for i in integrations.list()], default=str)
    assert key not in stored and key_hash(key) not in stored  # the list shows no secret
    assert call(api, headers={"authorization": f"Bearer {key}"})["status"] == 200
    assert call(api, headers={"authorization": f"Basic {key}"})["status"] == 401
    assert call(api, headers={"authorization": f"Bearer {key}x"})["status"] == 401
    integrations.revoke("acme", key_id, DAY_ONE)
    refused = call(api, headers={"authorization": f"Bearer {key}"})
    assert refused["status"] == 401 and refused["body"]["code"] == "Unauthorized"
    assert refused["body"]["request_id"] == "r-1"


def test_an_iam_caller_acts_for_the_integration_its_role_was_allowed_for(api):
    integrations = Integrations("jobs")
    assert call(api, iam_arn=SESSION)["status"] == 401  # signed, but not allowed
    integrations.allow_principal("acme", ROLE, DAY_ONE)
    assert role_of(SESSION) == ROLE
    assert call(api, iam_arn=SESSION) == {"status": 200, "body": {"jobs": [], "next": None}}
    integrations.revoke("acme", None, DAY_ONE)
    assert call(api, iam_arn=SESSION)["status"] == 401
    integrations.allow_principal("acme", ROLE, DAY_ONE)  # allowed again: open again
    assert call(api, iam_arn=SESSION)["status"] == 200
