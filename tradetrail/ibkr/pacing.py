"""One rate limiter per process for every IBKR request, honouring the documented limits.

CP Gateway: about 10 requests/s in all; ``/iserver/account/orders``, ``/iserver/account/trades``,
``/portfolio/accounts`` and P&L at most once per 5 s; ``/tickle`` once per second; at most 5 history
requests at once. A 429 holds every request back (Retry-After when given, else an exponential back-off
from 5 s) and is recorded; nothing is sent again before the back-off ends, so IBKR is never hammered.
``scale`` shrinks the intervals for tests against a fake gateway; it is 1 in production. ``share``: how
many processes of ours use the gateway at once (a Celery worker's processes and the serving one); each
keeps to its share of the budget (intervals that many times longer, fewer history requests at once).
Each process still keeps its own clock, so two may call a once-per-5-s endpoint close together, and a
429 holds back only the process that got it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

log = logging.getLogger(__name__)

GLOBAL_RATE = 10.0
INTERVALS = {"live_orders": 5.0, "trades": 5.0, "portfolio_accounts": 5.0, "pnl": 5.0, "tickle": 1.0,
             "sso_validate": 60.0}
HISTORY_CONCURRENCY = 5
BACKOFF_START_S, BACKOFF_MAX_S = 5.0, 600.0


def endpoint_of(method: str, path: str) -> str:
    """The pacing class of a request path (relative to ``/v1/api``)."""
    p = path.strip("/")
    if p.startswith("iserver/account/orders") and method == "GET":
        return "live_orders"
    if p.startswith("iserver/account/trades"):
        return "trades"
    if p in ("portfolio/accounts", "portfolio/subaccounts"):
        return "portfolio_accounts"
    if p.startswith("iserver/account/pnl"):
        return "pnl"
    if p.startswith("iserver/marketdata/history"):
        return "history"
    if p == "tickle":
        return "tickle"
    if p.startswith("sso/validate"):
        return "sso_validate"
    return "other"


class RateLimiter:
    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, share: int = 1):
        self.scale, self._clock, self._sleep, self.share = scale, clock, sleep, share
        self._spacing = scale * share  # what this process keeps to: its share of the gateway's budget
        self._lock = threading.Lock()
        self._next_global = 0.0
        self._next: dict[str, float] = {}
        self._blocked_until = 0.0
        self._strikes = 0
        self._history = threading.BoundedSemaphore(max(1, HISTORY_CONCURRENCY // share))
        self.events: deque[dict] = deque(maxlen=50)
        self.requests = 0
        self.waited_s = 0.0

    def _reserve(self, endpoint: str) -> float:
        """Book the earliest start allowed for ``endpoint``; return how long to wait for it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_global, self._next.get(endpoint, 0.0), self._blocked_until)
            self._next_global = start + self._spacing / GLOBAL_RATE
            if endpoint in INTERVALS:
                self._next[endpoint] = start + INTERVALS[endpoint] * self._spacing
            self.requests += 1
            return start - now

    def _started(self, endpoint: str) -> None:
        """A sleep may overshoot: count the intervals from when the request really starts."""
        with self._lock:
            now = self._clock()
            self._next_global = max(self._next_global, now + self._spacing / GLOBAL_RATE)
            if endpoint in INTERVALS:
                self._next[endpoint] = max(self._next.get(endpoint, 0.0), now + INTERVALS[endpoint] * self._spacing)

    @contextmanager
    def slot(self, endpoint: str) -> Iterator[None]:
        """Wait until ``endpoint`` may be called, and hold a history slot while a history request runs."""
        if endpoint == "history":
            self._history.acquire()
        try:
            wait = self._reserve(endpoint)
            if wait > 0:
                self.waited_s += wait
                self._sleep(wait)
                self._started(endpoint)
            yield
        finally:
            if endpoint == "history":
                self._history.release()

    def penalize(self, endpoint: str, retry_after: float | None) -> float:
        """A 429: hold every request back; return the back-off in seconds (recorded in ``events``)."""
        with self._lock:
            self._strikes += 1
            backoff = retry_after if retry_after is not None and retry_after >= 0 else \
                min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (self._strikes - 1)) * self.scale
            self._blocked_until = max(self._blocked_until, self._clock() + backoff)
            self.events.append({"at": datetime.now(UTC).isoformat(), "endpoint": endpoint, "status": 429,
                                "backoff_s": round(backoff, 3), "strike": self._strikes})
        log.warning("IBKR answered 429 on %s: holding every request back for %.1f s", endpoint, backoff)
        return backoff

    def succeeded(self) -> None:
        """A request went through: the next 429 starts the back-off from the beginning again."""
        if self._strikes:
            with self._lock:
                self._strikes = 0

    def report(self) -> dict:
        return {"requests": self.requests, "waited_s": round(self.waited_s, 3), "scale": self.scale,
                "processes_sharing": self.share,
                "rate_limited": list(self.events)}
