"""The emulator's clock: wall time plus an offset that tests can move forward.

Durations the provider documents (generation time, the 24 h purge, the 24 h
result-URL lifetime, the 3 h task timeout) are divided by a speed-up factor so a
local run does not take hours; the timestamps themselves stay wall-clock-like.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

# The provider runs in China (Beijing) and prints naive wall-clock times; the
# reference page's example times are Beijing local time, so we use UTC+8.
PROVIDER_TZ = timezone(timedelta(hours=8), "CST")

# `YYYY-MM-DD HH:MM:SS.mmm`, as in `submit_time`, `scheduled_time`, `end_time`.
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# `20230420000000`, as in the task-list query's `start_time` / `end_time`.
_LIST_TIME_FORMAT = "%Y%m%d%H%M%S"


class EmulatorClock:
    """Seconds since the epoch, as the emulator sees them."""

    def __init__(self, speedup: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be > 0")
        self.speedup = speedup
        self._wall = wall
        self._offset = 0.0

    def now(self) -> float:
        return self._wall() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        self._offset += seconds

    def reset(self) -> None:
        self._offset = 0.0

    def scaled(self, provider_seconds: float) -> float:
        """How long a documented provider duration lasts in this emulator."""
        return provider_seconds / self.speedup


def format_provider_time(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, PROVIDER_TZ)
    return f"{moment.strftime(_TIMESTAMP_FORMAT)}.{moment.microsecond // 1000:03d}"


def parse_list_time(text: str) -> float:
    """Parse a task-list bound such as `20230420000000` (provider time zone)."""
    moment = datetime.strptime(text, _LIST_TIME_FORMAT).replace(tzinfo=PROVIDER_TZ)
    return moment.timestamp()
