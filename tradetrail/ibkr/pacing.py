"""IBKR's documented limits, and the in-process rate limiter that keeps to them.

CP Gateway: about 10 requests/s in all (we keep to 8: ``GLOBAL_RATE``); ``/iserver/account/orders``,
``/iserver/account/trades``, ``/portfolio/accounts`` and P&L at most once per 5 s; ``/tickle`` once per
second, snapshots 10/s, and the other per-endpoint limits IBKR lists (``INTERVALS``); at most 5 history
requests at once. A 429 holds every
request back (Retry-After when given, else an exponential back-off from 5 s) and is recorded; nothing is sent
again before the back-off ends, so IBKR is never hammered. ``scale`` shrinks the intervals for tests against a
fake gateway; it is 1 in production.

Two budgets keep to these limits (:func:`make_limiter` picks one):
- :class:`RateLimiter` here, in this process's memory: right when one process talks to the gateway (the
  embedded mode, where helper processes leave IBKR strategies to the serving one). ``share`` divides the
  budget statically between processes that cannot see each other (the old Celery behaviour, kept for
  ``TRADETRAIL_IBKR_BUDGET=process``): each keeps its own clock, so two may still call a once-per-5-s endpoint
  close together, and a 429 holds back only the process that got it.
- :class:`tradetrail.ibkr.redis_budget.RedisBudget`: one budget in Redis for every process of a deployment
  (the Celery mode), with the 429 back-off and the session epoch shared too.

Both also keep the brokerage session's *epoch* (how many times it was reopened): state that is valid for
one brokerage session only (IBKR's pre-flight calls, the empty first read of live orders) is keyed by it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from tradetrail.ibkr import metrics

log = logging.getLogger(__name__)

GATEWAY_RATE = 10.0  # requests per second the CP Gateway takes in all (IBKR's "Pacing Limitations")
# What we keep to: a fifth under it. Turns are booked where the request leaves; network and thread jitter move
# its arrival by milliseconds, and at exactly 10/s that put 11 or 12 into one of the gateway's seconds (a
# violation is a 429 and may cost a 10-minute penalty box for the whole IP, every strategy stopped).
GLOBAL_RATE = 8.0
# Seconds between two calls of one pacing class (IBKR's "Pacing Limitations", shared/reference/ibkr-apis.md 2.1).
INTERVALS = {"live_orders": 5.0, "trades": 5.0, "portfolio_accounts": 5.0, "pnl": 5.0, "tickle": 1.0,
             "sso_validate": 60.0, "snapshot": 0.1, "scanner_run": 1.0, "scanner_params": 900.0,
             "pa_performance": 900.0, "pa_summary": 900.0, "pa_transactions": 900.0, "fyi": 1.0}
HISTORY_CONCURRENCY = 5
BACKOFF_START_S, BACKOFF_MAX_S = 5.0, 600.0
MAX_WAIT_S = 60.0  # a request that would wait longer than this for its turn fails instead (shared budget)


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
    if p.startswith("iserver/marketdata/snapshot"):
        return "snapshot"
    if p == "tickle":
        return "tickle"
    if p.startswith("sso/validate"):
        return "sso_validate"
    if p.startswith("iserver/scanner/run"):
        return "scanner_run"
    if p.startswith("iserver/scanner/params"):
        return "scanner_params"
    for kind in ("performance", "summary", "transactions"):
        if p.startswith(f"pa/{kind}"):
            return f"pa_{kind}"
    if p.startswith("fyi/"):
        return "fyi"
    return "other"


def retry_after_s(header: str | None) -> float | None:
    """A 429's ``Retry-After`` in seconds, at most :data:`BACKOFF_MAX_S`; None when absent or not a number of
    seconds (an HTTP date, "inf", "nan", a negative number): the exponential back-off applies then. An infinite
    or huge value would hold every request back for ever."""
    try:
        value = float(header) if header is not None else None
    except ValueError:
        return None
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return min(value, BACKOFF_MAX_S)


def backoff_for(strike: int, retry_after: float | None, scale: float) -> float:
    """A 429's back-off: the gateway's Retry-After when given, else 5 s doubling per strike in a row (≤ 600 s)."""
    if retry_after is not None and retry_after >= 0:
        return retry_after
    return min(BACKOFF_MAX_S, BACKOFF_START_S * 2 ** (strike - 1)) * scale


def make_limiter(settings):
    """The budget this process keeps to: in Redis when ``TRADETRAIL_IBKR_BUDGET`` says so (``auto``: whenever
    the executor is Celery), else this process's own."""
    if settings.ibkr_budget == "redis" or (settings.ibkr_budget == "auto" and settings.executor == "celery"):
        from tradetrail.ibkr.redis_budget import RedisBudget

        return RedisBudget.for_settings(settings)
    share = settings.processes_sharing_gateway if settings.ibkr_budget == "process" else 1
    return RateLimiter(settings.ibkr_pacing_scale, share=share)


class RateLimiter:
    shared = False

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
        self._reopen = threading.Lock()
        self._epoch = 0
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
    def slot(self, endpoint: str) -> Iterator[int]:
        """Wait until ``endpoint`` may be called, and hold a history slot while a history request runs.
        Yields the session epoch the request is sent in."""
        if endpoint == "history":
            self._history.acquire()
        try:
            wait = self._reserve(endpoint)
            if wait > 0:
                self.waited_s += wait
                metrics.PACING_WAIT.labels(endpoint).inc(wait)
                self._sleep(wait)
                self._started(endpoint)
            yield self._epoch
        finally:
            if endpoint == "history":
                self._history.release()

    def penalize(self, endpoint: str, retry_after: float | None) -> float:
        """A 429: hold every request back; return the back-off in seconds (recorded in ``events``)."""
        with self._lock:
            self._strikes += 1
            backoff = backoff_for(self._strikes, retry_after, self.scale)
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

    # -- the brokerage session's epoch ---------------------------------------------------------------------
    def epoch(self) -> int:
        return self._epoch

    @property
    def last_epoch(self) -> int:
        """The epoch last seen, without asking anyone (for status pages)."""
        return self._epoch

    def begin_reopen(self) -> int:
        """The epoch turns odd before a reopen is sent: while it is odd, or once it has changed, an empty read
        of live orders proves nothing (the gateway may already be in the new session)."""
        with self._lock:
            self._epoch += 1 if self._epoch % 2 == 0 else 2
            return self._epoch

    def end_reopen(self) -> int:
        """The epoch turns even again, to a value never used before, whether the reopen succeeded or not: a
        new session may be in place either way."""
        with self._lock:
            self._epoch += 1 if self._epoch % 2 else 2
            return self._epoch

    @contextmanager
    def reopen_guard(self) -> Iterator[None]:
        """One reopen at a time (threads of this process)."""
        with self._reopen:
            yield

    def report(self) -> dict:
        return {"budget": "process", "requests": self.requests, "waited_s": round(self.waited_s, 3),
                "scale": self.scale, "processes_sharing": self.share, "rate_limited": list(self.events)}
