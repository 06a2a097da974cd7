"""Call pacing is pure logic over a ledger of claimed time slots."""

from collections import Counter
from itertools import pairwise

import pytest
from tryon.pacing import CallPacer, PacingTimeout, Rate


class Ledger:
    def __init__(self) -> None:
        self.claimed: set[tuple[str, int]] = set()

    def claim_call_slot(self, operation: str, slot: int, now: float) -> bool:
        if (operation, slot) in self.claimed:
            return False
        self.claimed.add((operation, slot))
        return True

    def call_slot_taken(self, operation: str, slot: int) -> bool:
        return (operation, slot) in self.claimed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_many_callers_at_once_never_put_more_than_the_limit_in_any_second():
    clock, ledger = Clock(), Ledger()
    calls = []
    for _ in range(60):  # 60 callers arrive at the same instant, each with its own pacer
        caller_clock = Clock()
        caller_clock.now = clock.now
        pacer = CallPacer(ledger, {"submit": Rate(10)}.__getitem__, clock=caller_clock,
                          sleep=caller_clock.sleep)
        pacer.wait_turn("submit")
        calls.append(caller_clock.now)
    calls.sort()
    for i, start in enumerate(calls):
        in_window = [t for t in calls[i:] if t < start + 1.0]
        assert len(in_window) <= 10
    assert calls[-1] - calls[0] < 60 / 9 + 0.01  # and no slower than 9 a second


def test_operations_are_paced_separately():
    clock, ledger = Clock(), Ledger()
    pacer = CallPacer(ledger, {"submit": Rate(10), "query": Rate(20)}.__getitem__, clock=clock,
                      sleep=clock.sleep)
    pacer.wait_turn("submit")
    pacer.wait_turn("query")
    assert clock.now == 1000.0  # no sleep
    assert Counter(op.partition("@")[0] for op, _ in ledger.claimed) == {"submit": 1, "query": 1}


def test_a_saturated_account_gives_up_instead_of_waiting_forever():
    clock = Clock()

    class Full:
        def claim_call_slot(self, operation: str, slot: int, now: float) -> bool:
            return False

    with pytest.raises(PacingTimeout):
        CallPacer(Full(), {"query": Rate(20)}.__getitem__, clock=clock,
                  sleep=clock.sleep).wait_turn("query")


def test_a_per_minute_limit_is_spread_evenly_and_never_exceeded_in_any_minute():
    ledger, calls = Ledger(), []
    for _ in range(40):  # 40 callers at once, against 20 submits a minute
        clock = Clock()
        pacer = CallPacer(ledger, {"submit": Rate(20, 60)}.__getitem__, clock=clock,
                          sleep=clock.sleep)
        try:
            pacer.wait_turn("submit")
        except PacingTimeout:  # past 20 s of waiting: deferred, tried again later
            continue
        calls.append(clock.now)
    calls.sort()
    assert len(calls) == 7  # the slots that start within the 20 s a caller may wait
    gaps = [later - earlier for earlier, later in pairwise(calls)]
    assert min(gaps) >= 60 / 19 - 1e-9  # one every 3.2 s, never a burst
    for i, start in enumerate(calls):
        assert len([t for t in calls[i:] if t < start + 60]) <= 20


def test_a_slow_limit_defers_a_caller_rather_than_sleeping_past_the_wait():
    ledger, clock = Ledger(), Clock()
    pacer = CallPacer(ledger, {"submit": Rate(2, 60)}.__getitem__, clock=clock, sleep=clock.sleep)
    pacer.wait_turn("submit")  # the next slot starts at 1020: 20 s is within the wait
    assert clock.now == 1020.0
    with pytest.raises(PacingTimeout):  # the one after starts 80 s away
        CallPacer(ledger, {"submit": Rate(2, 60)}.__getitem__, clock=Clock(), sleep=clock.sleep
                  ).wait_turn("submit")


def test_a_rate_that_changes_claims_slots_of_its_own_width():
    # Halved by a RateQuota answer (tryon.capacity): slot numbers of the new width
    # would name instants long past under the old one, and all be taken.
    ledger, clock = Ledger(), Clock()
    rates = {"submit": Rate(10)}
    pacer = CallPacer(ledger, rates.__getitem__, clock=clock, sleep=clock.sleep)
    for _ in range(30):
        pacer.wait_turn("submit")
    rates["submit"] = Rate(10, 2)
    before = clock.now
    pacer.wait_turn("submit")
    assert clock.now - before < 2 * Rate(10, 2).spacing
    assert {op for op, _ in ledger.claimed} == {"submit@0.111", "submit@0.222"}


def test_a_caller_of_a_limit_slower_than_the_wait_may_wait_for_the_next_slot():
    ledger, clock = Ledger(), Clock()
    clock.now = 1021.0  # the 2/min slots start at 1020 and 1080: 59 s to the next
    pacer = CallPacer(ledger, {"submit": Rate(2, 60)}.__getitem__, clock=clock,
                      sleep=clock.sleep)
    pacer.wait_turn("submit")
    assert clock.now == 1080.0


def test_a_turn_is_soon_only_when_a_free_slot_starts_within_the_bound():
    clock, ledger = Clock(), Ledger()
    rates = {"submit": Rate(20, 60), "query": Rate(20)}  # slots 3.16 s and 0.05 s wide
    pacer = CallPacer(ledger, rates.__getitem__, clock=clock, sleep=clock.sleep)
    assert pacer.turn_soon("submit", 1.5)  # the next slot starts in 1.05 s
    pacer.wait_turn("submit")  # taken: the one after is 3.16 s away
    assert not pacer.turn_soon("submit", 1.5) and pacer.turn_soon("submit", 3.2)
    assert len(ledger.claimed) == 1  # a look claims nothing
    before = clock.now
    assert pacer.turn_soon("query", 1.5)
    pacer.wait_turn("query")
    pacer.wait_turn("query")
    clock.now = before  # the two next query slots are taken: a turn within 1.5 s may
    assert not pacer.turn_soon("query", 1.5)  # still be free, but it is not looked for
