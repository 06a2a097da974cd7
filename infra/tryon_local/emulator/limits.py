"""Per-account request-rate limits (10 submits/s, 20 queries/s)."""

from __future__ import annotations

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

    def try_acquire(self) -> bool:
        now = self._now()
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        if len(self._admitted) >= self.limit:
            return False
        self._admitted.append(now)
        return True

    def reset(self) -> None:
        self._admitted.clear()
