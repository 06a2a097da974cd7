"""The emulator's ASGI app: the provider's API under /api/v1, its file host
(the upload endpoint and result images), and test knobs; the routes live in
`routes`.

Checks run in the order the provider's answers imply: key, then the async
header, then the model (unknown and retired ids alike), then the body, then the
rate limit. Every answer carries a fresh `request_id`; errors put `code` and
`message` at the top level. The upload host and the result images answer like
OSS instead: XML errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from .config import EmulatorConfig
from .routes import file_host, generation, knobs, limits, parsing, tasks, tryon, upload_policy
from .routes.protocol import http_exception
from .state import EmulatorState


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """The emulator as an ASGI app; `app.state.emulator` is its EmulatorState.

    Tasks progress in a background loop of the event loop that serves the app,
    so it needs one long-lived loop: uvicorn (see `server.py`), httpx's
    ASGITransport, or Starlette's TestClient used as a context manager.
    """
    state = EmulatorState(config or EmulatorConfig())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state.scheduler.ensure_running()
        yield
        await state.scheduler.aclose()

    app = Starlette(
        routes=[
            *tryon.ROUTES,
            *parsing.ROUTES,
            *generation.ROUTES,
            *tasks.ROUTES,
            *limits.ROUTES,
            *upload_policy.ROUTES,
            *file_host.ROUTES,
            *knobs.ROUTES,
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception},  # type: ignore[dict-item]
    )
    app.state.emulator = state
    return app
