"""Request-rate limits: the account's 20 queries/s, and each model's request limit
per period (10 submits/s, 20 submits/min...)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most `limit` admitted requests in any window of `window` real seconds.

    Real (monotonic) time on purpose: the speed-up factor scales provider
    durations, not how fast a client may call, so a pipeline's throttling
    behaviour is exercised exactly as against the real service. Rejected
    requests are not recorded, so a client that backs off recovers after one
    window.
    """

    def __init__(
        self, limit: int, window: float = 1.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._now = now
        self._admitted: deque[float] = deque()

    def has_room(self) -> bool:
        now = self._now()
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        return len(self._admitted) < self.limit

    def record(self) -> None:
        self._admitted.append(self._now())

    def try_acquire(self) -> bool:
        if not self.has_room():
            return False
        self.record()
        return True

    def reset(self) -> None:
        self._admitted.clear()


class RequestLimiter:
    """A model's `limit` requests per `period` seconds. A per-minute limit is also
    held to its per-second share, rounded up (20/min: 1 in any second), as the
    provider may enforce it ("spread requests evenly rather than in bursts")."""

    def __init__(self, limit: int, period: int = 1,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.windows = [SlidingWindowLimiter(limit, period, now)]
        if period > 1:
            self.windows.append(SlidingWindowLimiter(math.ceil(limit / period), 1.0, now))

    def try_acquire(self) -> bool:
        if not all(window.has_room() for window in self.windows):
            return False
        for window in self.windows:
            window.record()
        return True
