"""Fixtures for the DashScope emulator tests.

One emulator per test module (fast clock), reset before every test; a small
HTTP server stands in for the public web the provider downloads inputs from.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from emulator_support import (
    API_KEY,
    FAST_QWEN,
    SAMPLES,
    SPEEDUP,
    TLS,
    Api,
    InputSite,
    make_bad_inputs,
    make_plain_picture,
)
from tryon_local.emulator import EmulatorConfig, serve_in_thread
from tryon_local.emulator.server import EmulatorServer


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InputSite]:
    root = tmp_path_factory.mktemp("inputs")
    for name in ("person.jpg", "top.jpg", "bottom.jpg", "dress.jpg"):
        shutil.copy(SAMPLES / name, root / name)
    make_bad_inputs(root)
    make_plain_picture(root)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            if self.path.startswith("/slow/"):
                # Answers too late for an emulator with a short download timeout.
                time.sleep(1.0)
                self.path = self.path.removeprefix("/slow")
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Site(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            # The slow path's client has hung up by the time it answers: expected.
            pass

    server = Site(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield InputSite(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        api_keys=frozenset({API_KEY}), gen_time=(1.0, 2.0), speedup=SPEEDUP, seed=7, **FAST_QWEN
    )
    with serve_in_thread(config) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_emulator(request: pytest.FixtureRequest) -> None:
    if "emulator" in request.fixturenames:
        server: EmulatorServer = request.getfixturevalue("emulator")
        httpx.post(f"{server.root_url}/_emulator/reset", verify=TLS).raise_for_status()


@pytest.fixture
def api(emulator: EmulatorServer, inputs: InputSite) -> Iterator[Api]:
    client = Api(emulator, inputs)
    yield client
    client.close()

