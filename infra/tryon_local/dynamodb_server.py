"""moto's DynamoDB served by a process of its own, for the local stack.

At catalogue scale DynamoDB is over half of what the emulated AWS does (py-spy, a
1,000-row catalogue: 40 % of moto's process in DynamoDB's handler, more in its HTTP),
and one Python process runs on one core whatever its threads: the machine's second
core sat idle. Here DynamoDB (patched by `moto_dynamodb`) answers on its own port;
every other service stays on the main moto server. Its meter (item writes by kind,
requests by action) is read over HTTP at METER_PATH.

    python -m tryon_local.dynamodb_server PORT
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

METER_PATH = "/_tryon/dynamodb-meter"


class DynamoDBProcess:
    """The process, started at once and ready when made; `stop()` ends it."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.endpoint = f"http://127.0.0.1:{port}"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tryon_local.dynamodb_server", str(port)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.endpoint + METER_PATH, timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto's DynamoDB did not start: see {log}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._log.close()


class RemoteMeter:
    """The DynamoDB process's WriteCounter, as the benchmarks read it."""

    def __init__(self, endpoint: str) -> None:
        self._url = endpoint + METER_PATH

    def _read(self) -> dict[str, Any]:
        return httpx.get(self._url, timeout=30).raise_for_status().json()

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        return Counter({tuple(key.split("|", 1)): n for key, n in self._read()["writes"].items()})

    @property
    def requests(self) -> dict[str, list[float]]:
        return self._read()["requests"]

    @property
    def peak_memory_mb(self) -> float:
        """The DynamoDB process's peak resident memory."""
        return self._read()["peak_memory_mb"]


def serve(port: int) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from tryon_local import moto_dynamodb
    from tryon_local.lambda_worker import peak_rss_kb
    from tryon_local.runtime import list_moto_modules_once, moto_keeps_only_live_models

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request: 12 % of it
    list_moto_modules_once()
    moto_keeps_only_live_models()
    moto_dynamodb.install()
    meter = moto_dynamodb.WriteCounter()
    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != METER_PATH:
            return moto(environ, start_response)
        body = json.dumps({**meter.snapshot(),
                           "peak_memory_mb": round(peak_rss_kb() / 1024, 1)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    make_server("127.0.0.1", port, app, threaded=True,
                request_handler=MotoRequestHandler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
