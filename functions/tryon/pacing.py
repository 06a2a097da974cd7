"""Account-wide pacing of provider calls across every running function.

The provider counts calls per account in any one-second window (10 submits/s,
20 queries/s). Each call claims its own time slot, 1/(limit - 1) s wide, in a
shared table; a call made inside its slot can then never put more than `limit`
calls into any one second, whichever instance makes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MAX_WAIT_SECONDS = 20.0


class SlotLedger(Protocol):
    def claim_call_slot(self, operation: str, slot: int, now: float) -> bool: ...


class PacingTimeout(Exception):
    """No call slot within MAX_WAIT_SECONDS: the account is busier than its limit."""


@dataclass
class CallPacer:
    ledger: SlotLedger
    limits: dict[str, int]  # calls per second, by operation
    clock: Callable[[], float] = time.time  # real time: the limits are per real second
    sleep: Callable[[float], None] = time.sleep

    def wait_turn(self, operation: str) -> None:
        width = 1.0 / max(1, self.limits[operation] - 1)
        now = self.clock()
        first = int(now / width)
        for slot in range(first, first + int(MAX_WAIT_SECONDS / width)):
            if self.ledger.claim_call_slot(operation, slot, now):
                delay = slot * width - self.clock()
                if delay > 0:
                    self.sleep(delay)
                return
        raise PacingTimeout(f"no {operation} slot free within {MAX_WAIT_SECONDS:.0f} s")
