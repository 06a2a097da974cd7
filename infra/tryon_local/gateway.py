"""The local stand-in for API Gateway's HTTP API: serves the template's HttpApi
routes on 127.0.0.1, turning each request into the payload format 2.0 event API
Gateway sends and invoking the route's function through moto's Lambda (so the
real handler answers, in its worker, as every other function does here). Only
routes without an authorizer: SigV4 (AWS_IAM) is not checked locally."""

from __future__ import annotations

import base64
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


def route_pattern(path: str) -> re.Pattern[str]:
    """/v1/{proxy+} -> a regex with a group per path parameter ({name+} takes the rest)."""
    parts = re.split(r"(\{[^}]+\})", path)
    regex = "".join(
        f"(?P<{part[1:-2]}>.+)" if part.endswith("+}") else
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
        for part in parts)
    return re.compile(f"^{regex}$")


class ApiGateway:
    """`routes`: the stack's http_routes; `invoke(function, event) -> (payload, error)`."""

    def __init__(self, routes: list[dict[str, Any]], invoke: Any, port: int = 0) -> None:
        self.routes = [(route, route_pattern(route["path"])) for route in routes
                       if route["auth"] is None]
        self._invoke = invoke
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="api-gateway", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def match(self, method: str, path: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        for route, pattern in self.routes:
            found = pattern.match(path)
            if found and route["method"] in ("ANY", method):
                return route, found.groupdict()
        return None

    def event(self, method: str, target: str, headers: dict[str, str], body: bytes,
              route: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
        url = urlsplit(target)
        text = any(headers.get("content-type", "").startswith(t) for t in TEXT_TYPES)
        now = time.time()
        route_key = f"{route['method']} {route['path']}"
        query: dict[str, str] = {}
        for name, value in parse_qsl(url.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        return {
            "version": "2.0", "routeKey": route_key, "rawPath": url.path,
            "rawQueryString": url.query, "headers": headers,
            **({"queryStringParameters": query} if query else {}),
            **({"pathParameters": parameters} if parameters else {}),
            "requestContext": {
                "accountId": "123456789012", "apiId": "local", "stage": "$default",
                "domainName": headers.get("host", f"127.0.0.1:{self.port}"),
                "domainPrefix": "127", "requestId": str(uuid.uuid4()), "routeKey": route_key,
                "http": {"method": method, "path": url.path, "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000)},
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
                path = urlsplit(self.path).path
                found = gateway.match(self.command, path)
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._send(413, {"content-type": "application/json"},
                               b'{"message":"Request Entity Too Large"}')
                    return
                body = self.rfile.read(length) if length else b""
                if found is None:
                    self._send(404, {"content-type": "application/json"},
                               b'{"message":"Not Found"}')
                    return
                headers: dict[str, str] = {}
                for name, value in self.headers.items():
                    name = name.lower()
                    headers[name] = f"{headers[name]},{value}" if name in headers else value
                event = gateway.event(self.command, self.path, headers, body, *found)
                payload, error = gateway._invoke(found[0]["function"], event)
                if error:
                    self._send(500, {"content-type": "application/json"},
                               b'{"message":"Internal Server Error"}')
                    return
                self._send(*_response(payload))

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


def _response(payload: Any) -> tuple[int, dict[str, str], bytes]:
    """A payload format 2.0 answer as API Gateway reads it: with statusCode as given,
    and anything else as a 200 JSON body."""
    if not isinstance(payload, dict) or "statusCode" not in payload:
        return 200, {"content-type": "application/json"}, json.dumps(payload).encode()
    body = payload.get("body") or ""
    data = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
    headers = {k: str(v) for k, v in (payload.get("headers") or {}).items()}
    for name, values in (payload.get("multiValueHeaders") or {}).items():
        headers[name] = ",".join(str(v) for v in values)
    return int(payload["statusCode"]), headers, data
