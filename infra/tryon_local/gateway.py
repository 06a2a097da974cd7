"""The local stand-in for API Gateway's REST API and the AWS WAF web ACL in front of
it: serves one of the template's REST APIs on 127.0.0.1 under its stage
(`/v1/...`), in the order AWS applies them:

1. the web ACL's rate-based rules (per source address, per header value) over a
   sliding window: past a limit, the WAF_FILTERED gateway response; nothing runs;
2. the route's token authorizer: a missing header, or one its validation
   expression refuses, answers UNAUTHORIZED without running anything; otherwise the
   authorizer function is invoked (through moto's Lambda, as every function here)
   and its answer cached per token for its TTL; a Deny answers ACCESS_DENIED;
3. the route's function, with the proxy event (format 1.0) API Gateway sends.

What is not applied locally: SigV4 (a route with AWS_IAM auth is not served), the
stage's method throttling, and the managed rule groups of the web ACL."""

from __future__ import annotations

import base64
import collections
import fnmatch
import json
import logging
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
TEXT_TYPES = ("application/json", "text/", "application/problem+json",
              "application/x-www-form-urlencoded")
ACCOUNT_ID, REGION = "123456789012", "us-east-1"
AUTH_STATUS = {"UNAUTHORIZED": 401, "ACCESS_DENIED": 403, "AUTHORIZER_FAILURE": 500}


def route_pattern(path: str) -> re.Pattern[str]:
    """/{proxy+} -> a regex with a group per path parameter ({name+} takes the rest)."""
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        f"(?P<{part[1:-2]}>.+)" if part.endswith("+}") else
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
        for part in parts)
    return re.compile(f"^{regex}$")


class Firewall:
    """A web ACL's rate-based rules, each over its window, counted per key (the
    source address, or a header's value; a request without the header is not
    counted by that rule)."""

    def __init__(self, rules: list[dict[str, Any]] | None, clock: Any = time.monotonic) -> None:
        self.rules = [r for r in rules or [] if "RateBasedStatement" in r["Statement"]]
        self._clock = clock
        self._seen: dict[tuple[str, str], collections.deque[float]] = {}
        self._lock = threading.Lock()

    def blocks(self, source_ip: str, headers: dict[str, str]) -> str | None:
        """The name of the first rule this request goes past (counting it), or None."""
        now = self._clock()
        with self._lock:
            for rule in sorted(self.rules, key=lambda r: r["Priority"]):
                statement = rule["Statement"]["RateBasedStatement"]
                key = self._key(statement, source_ip, headers)
                if key is None:
                    continue
                seen = self._seen.setdefault((rule["Name"], key), collections.deque())
                window = float(statement.get("EvaluationWindowSec", 300))
                while seen and seen[0] <= now - window:
                    seen.popleft()
                seen.append(now)
                if len(seen) > int(statement["Limit"]) and "Block" in rule.get("Action", {}):
                    return rule["Name"]
        return None

    @staticmethod
    def _key(statement: dict[str, Any], source_ip: str, headers: dict[str, str]) -> str | None:
        if statement["AggregateKeyType"] == "IP":
            return source_ip
        parts = []
        for custom in statement.get("CustomKeys", []):
            if "Header" not in custom:
                raise ValueError(f"rate rule key {custom}: only headers are applied locally")
            value = headers.get(custom["Header"]["Name"].lower())
            if value is None:
                return None
            parts.append(value)
        return "\n".join(parts)


class ApiGateway:
    """`api`: one of the stack's rest_apis (tryon_local.cfn.Stack);
    `invoke(function, event) -> (payload, error)`."""

    def __init__(self, api: dict[str, Any], invoke: Any, port: int = 0) -> None:
        self.api = api
        self.routes = [(route, route_pattern(route["path"])) for route in api["routes"]
                       if route["auth"] != "AWS_IAM"]
        self._clock_offset = 0.0
        self.firewall = Firewall(api["firewall"], clock=self.clock)
        self._invoke = invoke
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/{api['stage']}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="api-gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def clock(self) -> float:
        return time.monotonic() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass for the authorizer cache and the firewall's windows (a
        test of what happens once they expire, without waiting for it)."""
        self._clock_offset += seconds

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def match(self, method: str, path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        """The route for `path` (after the stage): a literal path before {proxy+}."""
        found = [(route, m) for route, pattern in self.routes
                 if (m := pattern.match(path)) and route["method"] in ("ANY", method)]
        found.sort(key=lambda rm: "{" in rm[0]["path"])
        return (found[0][0], found[0][1].groupdict()) if found else None

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes,
               source_ip: str) -> tuple[int, dict[str, str], bytes]:
        """A request, as API Gateway (and the web ACL before it) answers it."""
        request_id = str(uuid.uuid4())
        if self.firewall.blocks(source_ip, headers):
            return self.gateway_response("WAF_FILTERED", 403, request_id)
        url = urlsplit(target)
        prefix = f"/{self.api['stage']}"
        path = url.path[len(prefix):] if url.path.startswith(prefix + "/") else None
        found = self.match(method, path) if path else None
        if found is None:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", 403, request_id,
                                         '{"message":"Missing Authentication Token"}')
        route, parameters = found
        authorizer: dict[str, Any] | None = None
        if route["auth"]:
            answer = self._authorize(route["auth"], headers, method, path)
            if isinstance(answer, str):
                return self.gateway_response(answer, AUTH_STATUS[answer], request_id)
            authorizer = answer
        event = self.event(method, url, path, headers, body, route, parameters, source_ip,
                           request_id, authorizer)
        payload, error = self._invoke(route["function"], event)
        if error:
            return self.gateway_response("DEFAULT_5XX", 502, request_id,
                                         '{"message": "Internal server error"}')
        return _response(payload)

    def _authorize(self, name: str, headers: dict[str, str], method: str,
                   path: str) -> dict[str, Any] | str:
        """The authorizer's context for this request, or the gateway response to give."""
        spec = self.api["authorizers"][name]
        token = headers.get(spec["header"].lower())
        if not token or (spec["validation"] and not re.fullmatch(spec["validation"], token)):
            return "UNAUTHORIZED"
        method_arn = (f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{self.api['id']}/"
                      f"{self.api['stage']}/{method}{path}")
        cached = self._cache.get((name, token))
        if cached and cached[0] > self.clock():
            policy = cached[1]
        else:
            policy, error = self._invoke(spec["function"], {
                "type": "TOKEN", "authorizationToken": token, "methodArn": method_arn})
            if error:
                # "Unauthorized" raised: 401, not cached; anything else: a 500.
                raised = (policy or {}).get("errorMessage")
                return "UNAUTHORIZED" if raised == "Unauthorized" else "AUTHORIZER_FAILURE"
            if spec["ttl"]:
                self._cache[(name, token)] = (self.clock() + spec["ttl"], policy)
        if not _allows(policy, method_arn):
            return "ACCESS_DENIED"
        # The context reaches the function with its values as strings, as at AWS.
        return {"principalId": policy.get("principalId"),
                **{key: json.dumps(value) if isinstance(value, bool) else str(value)
                   for key, value in (policy.get("context") or {}).items()}}

    def gateway_response(self, kind: str, status: int, request_id: str,
                         default_body: str = '{"message": null}') -> tuple[int, dict, bytes]:
        """API Gateway's own answer of `kind`, as the API's gateway responses set it
        ($context.requestId substituted)."""
        spec = self.api["responses"].get(kind, {})
        headers = {"content-type": "application/json",
                   **{name.removeprefix("gatewayresponse.header.").lower(): value.strip("'")
                      for name, value in spec.get("responseParameters", {}).items()}}
        body = spec.get("responseTemplates", {}).get("application/json", default_body)
        return (int(spec.get("statusCode", status)), headers,
                body.replace("$context.requestId", request_id).encode())

    def event(self, method: str, url: Any, path: str, headers: dict[str, str], body: bytes,
              route: dict[str, Any], parameters: dict[str, str], source_ip: str,
              request_id: str, authorizer: dict[str, Any] | None) -> dict[str, Any]:
        text = any(headers.get("content-type", "").startswith(t) for t in TEXT_TYPES)
        now = time.time()
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            query.setdefault(name, []).append(value)
        return {
            "resource": route["path"], "path": path, "httpMethod": method,
            "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": parameters or None,
            "stageVariables": self.api["variables"] or None,
            "requestContext": {
                "accountId": ACCOUNT_ID, "apiId": self.api["id"], "stage": self.api["stage"],
                "resourcePath": route["path"], "httpMethod": method,
                "path": f"/{self.api['stage']}{path}", "protocol": "HTTP/1.1",
                "domainName": headers.get("host", f"127.0.0.1:{self.port}"),
                "requestId": request_id, "extendedRequestId": request_id,
                "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent", ""),
                             "userArn": None},
                **({"authorizer": authorizer} if authorizer is not None else {}),
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000)},
            "body": (body.decode("utf-8", "replace") if text
                     else base64.b64encode(body).decode()) if body else None,
            "isBase64Encoded": bool(body) and not text,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

            def _answer(self) -> None:
                try:
                    self._route()
                except Exception:
                    log.exception("local API gateway")
                    self._send(502, {"content-type": "application/json"},
                               b'{"message":"Bad Gateway"}')

            def _route(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._send(413, {"content-type": "application/json"},
                               b'{"message":"Request Entity Too Large"}')
                    return
                body = self.rfile.read(length) if length else b""
                headers: dict[str, str] = {}
                for name, value in self.headers.items():
                    name = name.lower()
                    headers[name] = f"{headers[name]},{value}" if name in headers else value
                self._send(*gateway.handle(self.command, self.path, headers, body,
                                           self.client_address[0]))

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches the route (ANY), as at API Gateway: the function
                # answers the ones it does not serve.
                if name.startswith("do_"):
                    return self._answer
                raise AttributeError(name)

        return Handler


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    """Whether an authorizer's policy allows invoking `method_arn` (a Deny wins)."""
    allowed = False
    for statement in (policy.get("policyDocument") or {}).get("Statement", []):
        resources = statement.get("Resource", [])
        if any(fnmatch.fnmatchcase(method_arn, resource)
               for resource in ([resources] if isinstance(resources, str) else resources)):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _response(payload: Any) -> tuple[int, dict[str, str], bytes]:
    """A proxy integration's answer as API Gateway reads it: statusCode, headers
    (and multiValueHeaders), body (base64 when isBase64Encoded)."""
    if not isinstance(payload, dict) or "statusCode" not in payload:
        return 502, {"content-type": "application/json"}, b'{"message": "Internal server error"}'
    body = payload.get("body") or ""
    data = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
    headers = {k: str(v) for k, v in (payload.get("headers") or {}).items()}
    for name, values in (payload.get("multiValueHeaders") or {}).items():
        headers[name] = ",".join(str(v) for v in values)
    return int(payload["statusCode"]), headers, data
