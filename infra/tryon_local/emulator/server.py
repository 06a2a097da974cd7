"""Running the emulator: in a background thread (tests, the local runtime) or
in the foreground from the command line."""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from .app import create_app
from .config import DEFAULT_API_KEY, EmulatorConfig
from .routes.protocol import API_PREFIX
from .state import EmulatorState

_START_TIMEOUT = 10.0


class EmulatorServer:
    """A running emulator. `stop()` shuts it down; also a context manager."""

    def __init__(
        self,
        app: Starlette,
        server: uvicorn.Server,
        thread: threading.Thread,
        host: str,
        port: int,
    ) -> None:
        self.app = app
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.root_url = f"http://{_url_host(host)}:{port}"
        # The DashScope base URL: what a client or `dashscope.base_http_api_url` takes.
        self.base_url = self.root_url + API_PREFIX

    @property
    def state(self) -> EmulatorState:
        """The emulator's state; owned by the server thread's event loop, so
        read it only when nothing is in flight, and prefer the HTTP knobs."""
        return self.app.state.emulator

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=_START_TIMEOUT)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> EmulatorServer:
    """Start the emulator on `host:port` (0 picks a free port) in a daemon thread."""
    app = create_app(config)
    sock = _bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="dashscope-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the DashScope emulator did not start")
        time.sleep(0.01)
    return EmulatorServer(app, server, thread, host, sock.getsockname()[1])


def _bind(host: str, port: int) -> socket.socket:
    # Binding ourselves (rather than letting uvicorn do it) is what tells us
    # the real port when port 0 asks the OS to pick one.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tryon emulator",
        description=(
            "Local emulator of the DashScope OutfitAnyone try-on API and its Qwen Image "
            "successors (see CONTRACT.md)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--gen-time", nargs=2, type=float, metavar=("MIN", "MAX"), default=(15.0, 30.0),
        help="generation time range in provider seconds (default 15 30)",
    )
    parser.add_argument(
        "--speedup", type=float, default=1.0,
        help="divide every provider duration (generation, 24 h purge and URL life) by this",
    )
    parser.add_argument(
        "--api-key", action="append", dest="api_keys", metavar="KEY",
        help=f"accepted Bearer key; repeatable (default {DEFAULT_API_KEY})",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for generation times")
    parser.add_argument(
        "--retire", action="append", dest="retired", metavar="MODEL", default=[],
        help="answer MODEL like an unknown model id (400 Model not exist.); repeatable",
    )
    args = parser.parse_args(argv)

    try:
        config = EmulatorConfig(
            api_keys=frozenset(args.api_keys or [DEFAULT_API_KEY]),
            gen_time=tuple(args.gen_time),
            speedup=args.speedup,
            seed=args.seed,
            retired_models=frozenset(args.retired),
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    print(
        f"DashScope emulator: base URL http://{_url_host(args.host)}:{port}{API_PREFIX} "
        "(Ctrl-C to stop)",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="info"))
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises the signal.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0
