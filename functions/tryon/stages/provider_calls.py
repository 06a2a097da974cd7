"""Calls to the provider on a job's behalf: bounded retries with full-jitter
backoff for throttling and server errors, and what each kind of failure means
for the job (deferred, outcome unknown, refused model, permanent)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import NoReturn, TypeVar

from tryon.job_record import JobStatus
from tryon.jobs import LookFailed, bounded_error
from tryon.pacing import PacingTimeout
from tryon.providers.errors import ModelMissingError, ProviderError
from tryon.stages.context import Context

log = logging.getLogger(__name__)

PROVIDER_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 8.0
RATE_QUOTA = "Throttling.RateQuota"  # the provider's signal to slow down
T = TypeVar("T")


class SubmitDeferred(Exception):
    """The provider stayed busy: nothing was created, the job keeps its slot and is
    tried again later (SQS redelivers a submit; the state machine retries a call)."""


class SubmitLost(Exception):
    """A submit got no answer after it was sent: a task may exist (and be billed)."""


class SubmitRequeued(Exception):
    """A throttled submit put its job back in the queue (nothing was created)."""


def call_provider(ctx: Context, job_id: str, call: str, attempt: Callable[[], T],
                  attempts: int = PROVIDER_ATTEMPTS, *, model: str | None = None,
                  requeue: Callable[[], bool] | None = None) -> T:
    """Run `attempt` for a SUBMITTING job. Raises SubmitLost (outcome unknown),
    ModelMissingError, LookFailed (permanent) or SubmitDeferred (still busy after
    every attempt: the job is ADMITTED again). For a request of `model`, a
    Throttling.RateQuota answer slows the model down; a throttled one is offered to
    `requeue` first, and when it puts the job back in the queue, SubmitRequeued."""
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except ProviderError as exc:
            ctx.jobs.record_request_id(job_id, call, exc.request_id)
            if not exc.outcome_known:
                # The provider may have created (and will bill) work we cannot see.
                raise SubmitLost(str(exc)) from None
            if isinstance(exc, ModelMissingError):
                raise
            if not exc.retryable:
                raise LookFailed(exc.code, exc.message) from None
            if exc.status == 429 and model:
                if exc.code == RATE_QUOTA and ctx.capacity.slow_down(model):
                    ctx.count("ProviderSlowedDown")
                if requeue and requeue():
                    raise SubmitRequeued(f"job {job_id}: {exc.code}") from None
            log.warning("provider busy", extra={"call": call, "attempt": number,
                                                "code": exc.code})
            if number == attempts:
                defer(ctx, job_id, exc.as_error())
            ctx.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS,
                                            BACKOFF_BASE_SECONDS * 2 ** (number - 1))))
        except PacingTimeout as exc:
            defer(ctx, job_id, {"code": "PacingTimeout", "message": str(exc)})
    raise AssertionError("unreachable")


def defer(ctx: Context, job_id: str, error: dict[str, str]) -> NoReturn:
    """Nothing was created: the job keeps its slot and is tried again later (a job
    that another writer ended meanwhile stays ended)."""
    ctx.jobs.transition(job_id, expect=[JobStatus.SUBMITTING], to=JobStatus.ADMITTED,
                        error=bounded_error(error))
    raise SubmitDeferred(f"job {job_id}: {error['code']}: {error['message']}")
