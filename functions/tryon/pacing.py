"""Account-wide pacing of provider calls across every running function.

The provider counts calls per account in a window: a second (10 submits/s, 20
queries/s) or a minute (20 submits/min). Each call claims its own time slot,
period/(limit - 1) wide, in a shared table, and is made at its slot's start: no
two calls are closer than a slot's width, so no period ever holds more than
`limit` of them, whichever instance makes them; a per-minute limit is spread
evenly (20/min: one call every 3.2 s), as the provider may also enforce a
per-second share of it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MAX_WAIT_SECONDS = 20.0


class SlotLedger(Protocol):
    def claim_call_slot(self, operation: str, slot: int, now: float) -> bool: ...
    def call_slot_taken(self, operation: str, slot: int) -> bool: ...


class PacingTimeout(Exception):
    """No call slot within MAX_WAIT_SECONDS (or one slot's width): the account is
    busier than its limit."""


@dataclass(frozen=True)
class Rate:
    """`requests` per `period` seconds (1: per second, 60: per minute)."""

    requests: int
    period: int = 1

    @property
    def spacing(self) -> float:
        return self.period / max(1, self.requests - 1)


@dataclass
class CallPacer:
    ledger: SlotLedger
    rate_of: Callable[[str], Rate]  # an operation's rate now (limits change)
    clock: Callable[[], float] = time.time  # real time: the limits are per real second
    sleep: Callable[[float], None] = time.sleep

    def longest_wait(self, operation: str) -> float:
        """The most real seconds `wait_turn` may sleep before it returns."""
        return max(MAX_WAIT_SECONDS, self.rate_of(operation).spacing)

    def turn_soon(self, operation: str, within: float) -> bool:
        """Whether a turn of `operation` starts within `within` seconds and is still
        free: a look at the first two such slots, not a claim (another caller may
        take it first). A rate-bound model's turns are seconds apart."""
        width, slots, now = self._slots(operation)
        first = math.ceil(now / width)
        return any(not self.ledger.call_slot_taken(slots, slot)
                   for slot in range(first, min(first + 2, int((now + within) / width) + 1)))

    def wait_turn(self, operation: str) -> None:
        width, slots, now = self._slots(operation)
        # The slots that start from now to MAX_WAIT_SECONDS on, or to the next slot's
        # start when slots are wider (2/min: a call may wait up to a minute for its
        # turn, rather than miss every slot it could have had): a caller that finds
        # none defers.
        horizon = self.longest_wait(operation)
        for slot in range(math.ceil(now / width), int((now + horizon) / width) + 1):
            if self.ledger.claim_call_slot(slots, slot, now):
                delay = slot * width - self.clock()
                if delay > 0:
                    self.sleep(delay)
                return
        raise PacingTimeout(f"no {operation} slot free within {MAX_WAIT_SECONDS:.0f} s")

    def _slots(self, operation: str) -> tuple[float, str, float]:
        width = self.rate_of(operation).spacing
        # Slots are numbered per width: callers that still see an older rate claim
        # slots of their own rather than collide with every past slot of a new one.
        return width, f"{operation}@{width:.3f}", self.clock()
