"""The local stand-in for API Gateway and the firewall in front of it (logic only, a
fake invoke): what runs, and what is refused before anything runs."""

import json

from tryon_local.gateway import ApiGateway, Firewall

KEY = "Bearer tryon_0123abcd_" + "A" * 43
RESPONSES = {kind: {"statusCode": status, "responseParameters": {
    "gatewayresponse.header.Content-Type": "'application/problem+json'"},
    "responseTemplates": {"application/json": json.dumps(
        {"code": kind, "request_id": "$context.requestId"})}}
    for kind, status in (("UNAUTHORIZED", "401"), ("ACCESS_DENIED", "401"),
                         ("WAF_FILTERED", "429"))}
RULES = [{"Name": "per-source-address", "Priority": 1, "Action": {"Block": {}},
          "Statement": {"RateBasedStatement": {"AggregateKeyType": "IP", "Limit": 3,
                                               "EvaluationWindowSec": 60}}},
         {"Name": "per-key", "Priority": 2, "Action": {"Block": {}},
          "Statement": {"RateBasedStatement": {
              "AggregateKeyType": "CUSTOM_KEYS", "Limit": 2, "EvaluationWindowSec": 60,
              "CustomKeys": [{"Header": {"Name": "authorization"}}]}}}]


class Invoker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, function: str, event: dict):
        self.calls.append((function, event))
        if function == "authorizer":
            effect = "Allow" if event["authorizationToken"] == KEY else "Deny"
            return {"principalId": "acme", "context": {"integration": "acme", "quota": 5,
                                                       "allow": False} if effect == "Allow"
                    else None,
                    "policyDocument": {"Statement": [{"Effect": effect, "Action":
                                                      "execute-api:Invoke", "Resource": [
                        "arn:aws:execute-api:us-east-1:123456789012:api1/v1/*/*"]}]}}, False
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"path": event["path"]})}, False


def gateway(firewall=None) -> tuple[ApiGateway, Invoker]:
    invoke = Invoker()
    api = {"id": "api1", "stage": "v1", "variables": {"auth": "bearer"}, "responses": RESPONSES,
           "firewall": firewall,
           "routes": [{"path": "/{proxy+}", "method": "ANY", "auth": "Key", "function": "api"},
                      {"path": "/docs", "method": "GET", "auth": None, "function": "api"}],
           "authorizers": {"Key": {"function": "authorizer", "header": "Authorization",
                                   "validation": r"^Bearer tryon_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$",
                                   "ttl": 30}}}
    return ApiGateway(api, invoke), invoke


def test_a_missing_or_malformed_key_is_refused_before_anything_runs():
    api, invoke = gateway()
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": KEY + "x"}):
        status, answer_headers, body = api.handle("GET", "/v1/jobs", headers, b"", "192.0.2.1")
        assert status == 401 and answer_headers["content-type"] == "application/problem+json"
        assert json.loads(body)["code"] == "UNAUTHORIZED"
    assert invoke.calls == []
    assert api.handle("GET", "/v1/docs", {}, b"", "192.0.2.1")[0] == 200  # open


def test_an_answer_of_the_authorizer_is_cached_per_key_a_deny_too():
    api, invoke = gateway()
    wrong = "Bearer tryon_0123abcd_" + "B" * 43
    for _ in range(3):
        assert api.handle("GET", "/v1/jobs", {"authorization": KEY}, b"", "192.0.2.1")[0] == 200
        assert api.handle("GET", "/v1/jobs", {"authorization": wrong}, b"", "192.0.2.1")[0] == 401
    assert [f for f, _ in invoke.calls].count("authorizer") == 2
    event = invoke.calls[1][1]
    assert event["requestContext"]["authorizer"] == {
        "principalId": "acme", "integration": "acme", "quota": "5", "allow": "false"}
    assert event["path"] == "/jobs" and event["stageVariables"] == {"auth": "bearer"}


def test_the_firewall_blocks_one_address_or_one_key_past_its_limit_and_no_other():
    api, _ = gateway(firewall=RULES)
    flood = [api.handle("GET", "/v1/docs", {}, b"", "192.0.2.66")[0] for _ in range(10)]
    assert flood == [200] * 3 + [429] * 7
    assert api.handle("GET", "/v1/docs", {}, b"", "192.0.2.1")[0] == 200  # another address
    by_key = [api.handle("GET", "/v1/jobs", {"authorization": KEY}, b"", f"198.51.100.{i}")[0]
              for i in range(4)]
    assert by_key == [200, 200, 429, 429]  # one key from many addresses


def test_the_firewall_forgets_requests_older_than_its_window():
    now = [0.0]
    firewall = Firewall(RULES[:1], clock=lambda: now[0])
    assert [firewall.blocks("a", {}) for _ in range(4)] == [None] * 3 + ["per-source-address"]
    now[0] = 61.0
    assert firewall.blocks("a", {}) is None
