"""Moves tasks through their lifecycle inside the app's event loop.

One background loop wakes at the next RUNNING deadline (or when something
changed) and applies the board's rules; downloads and rendering run as their
own asyncio tasks, rendering in a worker thread so the loop keeps answering
queries meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import httpx

from . import images, qwen_render
from .clock import EmulatorClock
from .generation import GenerationRequest
from .results import ResultStore, result_name
from .tasks import (
    POST_PROCESSING,
    PRE_PROCESSING,
    RESULT_URL_LIFETIME,
    RUNNING,
    SUCCEEDED,
    Failure,
    Task,
    TaskBoard,
    TaskRequest,
    TryOnRequest,
)
from .uploads import UploadStore

logger = logging.getLogger(__name__)

# Longest nap of the loop: purges and 3 h timeouts have no wake-up of their own.
_MAX_NAP = 0.25


class Scheduler:
    def __init__(
        self,
        board: TaskBoard,
        clock: EmulatorClock,
        results: ResultStore,
        uploads: UploadStore,
        download_timeout: float,
    ) -> None:
        self._board = board
        self._clock = clock
        self._results = results
        self._uploads = uploads
        self._download_timeout = download_timeout
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._client: httpx.AsyncClient | None = None

    def ensure_running(self) -> None:
        """Start the loop in the current event loop if it is not running.

        Called from the lifespan and from every request, so the app also works
        under an ASGI client that skips lifespan events.
        """
        if self._loop_task is None or self._loop_task.done():
            self._wake = asyncio.Event()
            self._loop_task = asyncio.get_running_loop().create_task(self._run())
        if self._client is None:
            # Inputs are fetched like the real service would, redirects included.
            # Proxy variables are ignored: the emulator's inputs are normally
            # local (a test server, local S3), which a proxy would not reach.
            self._client = httpx.AsyncClient(follow_redirects=True, trust_env=False)

    async def aclose(self) -> None:
        self.cancel_jobs()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def cancel_jobs(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        self._jobs.clear()

    def wake(self) -> None:
        self._wake.set()

    def tick(self) -> None:
        """Apply every transition that is due now."""
        self._board.expire()
        self._results.expire(self._clock.now())
        self._uploads.expire(self._clock.now())
        for task in self._board.due_to_finish():
            if task.forced_failure is not None:
                # The knob's failure lands when the task would have ended.
                self._board.end(task)
            else:
                self._board.begin_post_processing(task)
                self._spawn(self._post_process(task))
        for task in self._board.start_next():
            self._spawn(self._pre_process(task))

    def fail_now(self, task: Task, failure: Failure) -> None:
        """Test knob: end a RUNNING task now; otherwise fail it when it ends."""
        task.forced_failure = failure
        if task.status == RUNNING:
            self._board.end(task)
        self.tick()

    async def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                # A bug in one transition must not stop every other task.
                logger.exception("emulator scheduler tick failed")
            nap = _MAX_NAP
            deadline = self._board.next_deadline()
            if deadline is not None:
                nap = min(nap, max(0.0, deadline - self._clock.now()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), nap)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        # Keep a reference until done: the loop only holds weak ones.
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _pre_process(self, task: Task) -> None:
        fields = [field for field, _ in task.request.image_urls()]
        outcomes = await self._fetch_all(task.request, task.model)
        if not self._board.is_current(task, PRE_PROCESSING):
            return
        # Report the first bad input in field order (person, top, bottom; image 1, 2, 3).
        for outcome in outcomes:
            if isinstance(outcome, images.InputRejected):
                self._board.end(task, Failure(outcome.code, outcome.message))
                break
            if isinstance(outcome, BaseException):
                self._board.end(task, Failure("InternalError", f"Pre-processing failed: {outcome}"))
                break
        else:
            inputs = dict(zip(fields, outcomes, strict=True))
            self._board.begin_running(task, inputs)  # type: ignore[arg-type]
        self.wake()

    async def fetch_input(
        self,
        field: str,
        url: str,
        *,
        model: str,
        oss_resolve: bool,
        rules: images.InputRules = images.TRYON_RULES,
    ) -> bytes:
        """One checked input: an uploaded file for `oss://`, else downloaded
        (or decoded, for a `data:` URL where `rules` allow them).

        Raises images.InputRejected; shared by pre-processing, parsing and the
        synchronous Qwen calls.
        """
        assert self._client is not None
        data = self._uploads.resolve(field, url, model, oss_resolve, rules)
        if data is None:
            data = await images.fetch_input(
                self._client, field, url, self._download_timeout, rules
            )
        await asyncio.to_thread(images.check_image, field, data, rules)
        return data

    async def fetch_references(self, request: GenerationRequest, model: str) -> list[bytes]:
        """Every reference of a synchronous call, checked; raises the first
        rejection in reference order, as a task reports it."""
        outcomes = await self._fetch_all(request, model)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes  # type: ignore[return-value]

    async def _fetch_all(self, request: TaskRequest, model: str) -> list[bytes | BaseException]:
        """Every input of a request, fetched at once; a failure is returned in its place."""
        return await asyncio.gather(
            *(
                self.fetch_input(
                    field, url, model=model, oss_resolve=request.oss_resolve, rules=request.rules
                )
                for field, url in request.image_urls()
            ),
            return_exceptions=True,
        )

    async def _post_process(self, task: Task) -> None:
        try:
            size, rendered = await asyncio.to_thread(_render, task)
        except Exception as exc:  # a rendering bug must not leave the task stuck
            if self._board.is_current(task, POST_PROCESSING):
                self._board.end(task, Failure("InternalError.Algo", f"Rendering failed: {exc}"))
                self.wake()
            return
        if not self._board.is_current(task, POST_PROCESSING):
            return
        if self._board.end(task) == SUCCEEDED:
            expires_at = self._clock.now() + self._clock.scaled(RESULT_URL_LIFETIME)
            for name, data in rendered:
                self._results.put(name, data, expires_at)
            task.results = tuple(name for name, _ in rendered)
            task.output_size = size
        self.wake()


def _render(task: Task) -> tuple[tuple[int, int] | None, list[tuple[str, bytes]]]:
    """A task's output size and its result images by stored name (in a worker thread)."""
    request = task.request
    if isinstance(request, GenerationRequest):
        size, pngs = qwen_render.render_request(
            request, list(task.inputs.values()), task.model, f"task {task.task_id[:8]}"
        )
        return size, [(f"{task.task_id}-{k}.png", png) for k, png in enumerate(pngs, start=1)]
    assert isinstance(request, TryOnRequest)
    jpeg = images.render_composite(
        person=task.inputs["person_image_url"],
        top=task.inputs.get("top_garment_url"),
        bottom=task.inputs.get("bottom_garment_url"),
        resolution=request.resolution,
        restore_face=request.restore_face,
        model=task.model,
        task_id=task.task_id,
    )
    return None, [(result_name(task.task_id), jpeg)]
