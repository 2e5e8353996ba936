"""The historical-data pacing IBKR documents for the TWS API, kept before a request is sent.

IBKR's rules for historical bars (a "pacing violation" is error 162, and the gateway then refuses more for a
while): at most 60 requests in any 10 minutes; no identical request within 15 s; at most 5 requests for one
contract within 2 s; at most 50 open at once. A request waits for its turn here rather than being refused at
the gateway; one that would wait longer than ``max_wait_s`` fails at once with the reason (a run does not hang
for minutes). One request is in flight at a time, and each counts from when its answer came: the gateway
counts from when the request reached it, which lies between our sending and our reading the answer, so
spacing from the answers keeps to its windows whatever the network and the loop delayed. A 162 that still
comes holds every historical request back (15 s, doubling per violation in a row, at most 10 minutes) and is
recorded in ``events``. ``scale`` shrinks the intervals for tests against the fake TWS; it is 1 in production.
``share`` divides the budget when several processes hold connections to one gateway and cannot see each
other's requests (IBKR counts them together).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

log = logging.getLogger(__name__)

WINDOW_S, WINDOW_REQUESTS = 600.0, 60
IDENTICAL_S = 15.0
CONTRACT_S, CONTRACT_REQUESTS = 2.0, 5
BACKOFF_START_S, BACKOFF_MAX_S = 15.0, 600.0
MAX_WAIT_S = 60.0


class PacingHeldBack(Exception):
    """The request's turn is further away than the caller may wait; nothing was sent."""


class _Stamp:
    """When a request counts: its booked start, then the moment its answer came."""

    __slots__ = ("t",)

    def __init__(self, t: float):
        self.t = t


class HistoryPacer:
    """One process's keeper of the historical-data pacing (thread-safe; requests start in booking order)."""

    def __init__(self, scale: float = 1.0, *, share: int = 1, max_wait_s: float = MAX_WAIT_S,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.scale, self.share, self.max_wait_s = scale, max(1, share), max_wait_s
        self._clock, self._sleep = clock, sleep
        self.window_s, self.window_requests = WINDOW_S * scale, max(1, WINDOW_REQUESTS // self.share)
        self.identical_s, self.contract_s = IDENTICAL_S * scale, CONTRACT_S * scale
        self.contract_requests = max(1, CONTRACT_REQUESTS // self.share)
        self._lock = threading.Lock()
        self._in_flight = threading.Lock()  # one historical request at a time (see the module docstring)
        self._starts: deque[_Stamp] = deque()  # the requests of the last window, ascending
        self._by_contract: dict[Hashable, deque[_Stamp]] = {}
        self._identical: dict[Hashable, _Stamp] = {}
        self._last_start = 0.0
        self._blocked_until = 0.0
        self._strikes = 0
        self.events: deque[dict] = deque(maxlen=50)
        self.requests = 0
        self.waited_s = 0.0

    def _earliest(self, now: float, key: Hashable, contract: Hashable) -> float:
        while self._starts and self._starts[0].t <= now - self.window_s:
            self._starts.popleft()
        recent = self._by_contract.get(contract)
        while recent and recent[0].t <= now - self.contract_s:
            recent.popleft()
        start = max(now, self._last_start, self._blocked_until)
        if len(self._starts) >= self.window_requests:
            start = max(start, self._starts[-self.window_requests].t + self.window_s)
        if recent is not None and len(recent) >= self.contract_requests:
            start = max(start, recent[-self.contract_requests].t + self.contract_s)
        if key in self._identical:
            start = max(start, self._identical[key].t + self.identical_s)
        return start

    def _reserve(self, key: Hashable, contract: Hashable) -> tuple[float, _Stamp]:
        """Book the earliest start the rules allow for a request (``key``: what makes two requests identical;
        ``contract``: its instrument): how long to wait for it, and its stamp; PacingHeldBack if too long."""
        with self._lock:
            now = self._clock()
            start = self._earliest(now, key, contract)
            wait = start - now
            if wait > self.max_wait_s:
                reason = ("held back after a pacing violation" if start == self._blocked_until
                          else "the gateway's historical-data pacing")
                raise PacingHeldBack(f"historical data request not sent: its turn under {reason} is in {wait:.0f} s "
                                     f"(more than {self.max_wait_s:.0f} s)")
            stamp = _Stamp(start)
            self._starts.append(stamp)
            self._by_contract.setdefault(contract, deque()).append(stamp)
            self._identical[key] = stamp
            if len(self._identical) > 4 * WINDOW_REQUESTS:  # forget what no longer constrains anything
                horizon = now - self.identical_s
                self._identical = {k: s for k, s in self._identical.items() if s.t > horizon}
            self._last_start = start
            self.requests += 1
            return wait, stamp

    @contextmanager
    def slot(self, key: Hashable, contract: Hashable) -> Iterator[None]:
        """Wait for the request's turn, let it run, and count it from when it ended."""
        if not self._in_flight.acquire(timeout=2 * self.max_wait_s):
            raise PacingHeldBack(f"historical data request not sent: others held the gateway's historical data "
                                 f"for more than {2 * self.max_wait_s:.0f} s")
        try:
            wait, stamp = self._reserve(key, contract)
            if wait > 0:
                self.waited_s += wait
                self._sleep(wait)
            try:
                yield
            finally:
                with self._lock:
                    stamp.t = max(stamp.t, self._clock())
                    self._last_start = max(self._last_start, stamp.t)
        finally:
            self._in_flight.release()

    def violation(self, request: str, text: str) -> float:
        """A 162 pacing violation: hold every historical request back; return the back-off (recorded)."""
        with self._lock:
            self._strikes += 1
            backoff = min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (self._strikes - 1)) * self.scale
            self._blocked_until = max(self._blocked_until, self._clock() + backoff)
            self.events.append({"at": datetime.now(UTC).isoformat(), "code": 162, "request": request,
                                "text": text[:200], "backoff_s": round(backoff, 3), "strike": self._strikes})
        log.warning("TWS pacing violation (162) on %s: holding historical requests back for %.1f s", request, backoff)
        return backoff

    def succeeded(self) -> None:
        """A request went through: the next violation starts the back-off from the beginning."""
        if self._strikes:
            with self._lock:
                self._strikes = 0

    def report(self) -> dict:
        return {"requests": self.requests, "waited_s": round(self.waited_s, 3), "scale": self.scale,
                "processes_sharing": self.share, "pacing_violations": list(self.events)}
