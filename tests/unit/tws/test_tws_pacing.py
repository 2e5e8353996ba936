"""The historical-data pacing limiter on a clock the test moves: IBKR's three rules (60 in 10 min, no identical
request within 15 s, at most 5 for one contract in 2 s), the back-off after a 162, and the refusal to wait
longer than allowed."""

from __future__ import annotations

import pytest

from tradetrail.tws.pacing import HistoryPacer, PacingHeldBack


class Clock:
    """A clock that only moves when told (sleeping moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(clock: Clock, **kw) -> HistoryPacer:
    return HistoryPacer(clock=clock, sleep=clock.sleep, **kw)


def run(p: HistoryPacer, key, contract) -> None:
    with p.slot(key, contract):
        pass


def test_an_identical_request_waits_fifteen_seconds_and_another_does_not():
    clock = Clock()
    p = pacer(clock)
    run(p, ("SPY", "1 Y"), 1)
    run(p, ("SPY", "30 D"), 1)
    assert clock.slept == []
    run(p, ("SPY", "1 Y"), 1)
    assert clock.slept == [pytest.approx(15.0)]


def test_the_sixth_request_for_one_contract_within_two_seconds_waits_and_other_contracts_do_not():
    clock = Clock()
    p = pacer(clock)
    for n in range(5):
        run(p, ("SPY", n), 1)
    assert clock.slept == []
    run(p, ("AAPL", 0), 2)
    assert clock.slept == []
    run(p, ("SPY", 5), 1)
    assert clock.slept == [pytest.approx(2.0)]


def test_the_sixty_first_request_in_ten_minutes_waits_for_the_first_to_leave_the_window():
    clock = Clock()
    p = pacer(clock, max_wait_s=700)
    for n in range(60):
        run(p, ("X", n), n)  # a contract each: only the 10-minute rule applies
        clock.now += 1.0
    assert clock.slept == []
    run(p, ("X", 60), 60)
    assert clock.slept == [pytest.approx(600.0 - 60.0)]


def test_a_turn_further_away_than_allowed_is_refused_without_booking_it():
    clock = Clock()
    p = pacer(clock, max_wait_s=10)
    run(p, ("SPY", "1 Y"), 1)
    with pytest.raises(PacingHeldBack, match="in 15 s"):
        run(p, ("SPY", "1 Y"), 1)
    assert p.requests == 1
    clock.now += 15.0
    run(p, ("SPY", "1 Y"), 1)
    assert p.requests == 2 and clock.slept == []


def test_a_pacing_violation_holds_every_request_back_doubling_and_is_recorded():
    clock = Clock()
    p = pacer(clock, max_wait_s=100)
    assert p.violation("conid 1 (1 Y)", "Historical data request pacing violation") == 15.0
    run(p, ("other", 1), 2)
    assert clock.slept == [pytest.approx(15.0)]
    assert p.violation("conid 1 (1 Y)", "again") == 30.0
    p.succeeded()
    assert p.violation("conid 1 (1 Y)", "after a success") == 15.0
    events = p.report()["pacing_violations"]
    assert [(e["code"], e["strike"], e["backoff_s"]) for e in events] == \
        [(162, 1, 15.0), (162, 2, 30.0), (162, 1, 15.0)]
    assert events[0]["request"] == "conid 1 (1 Y)"


def test_scale_shrinks_the_intervals_and_share_divides_the_budget():
    clock = Clock()
    p = pacer(clock, scale=0.01, share=2)
    assert (p.window_requests, p.contract_requests) == (30, 2)
    run(p, ("SPY", 0), 1)
    run(p, ("SPY", 1), 1)
    run(p, ("SPY", 2), 1)
    assert clock.slept == [pytest.approx(0.02)]
    run(p, ("SPY", 0), 1)
    assert clock.slept[-1] == pytest.approx(0.15 - 0.02)


def test_a_request_counts_from_when_its_answer_came_not_from_when_it_was_sent():
    clock = Clock()
    p = pacer(clock)
    with p.slot(("SPY", "1 Y"), 1):
        clock.now += 4.0  # the answer takes 4 s: the gateway may have seen the request at any moment of them
    run(p, ("SPY", "1 Y"), 1)
    assert clock.slept == [pytest.approx(15.0)]  # 15 s after the answer, not 11 s after the sending
