"""One IBKR pacing budget for every process of a deployment, kept in Redis (the Celery mode).

Each Celery pool process, the serving process and a command-line run talk to the same gateway; IBKR's limits
are the gateway's (per username), not per process. Every request therefore books its start in Redis with one
atomic Lua script, on Redis's clock (``TIME``), so processes on several hosts agree:

- *global rate and per-endpoint intervals*: a schedule of bookings. A request's earliest start is the one
  its pacing class allows (``start + interval`` after the class's last booking, ``pacing.INTERVALS``); from
  there it takes the first time at least ``1/rate`` away from every other booking, so at most 10 start
  in any second, and a request booked seconds ahead (the next live-orders read) leaves the time before it
  to the others. The script returns how long to wait;
- *429*: the back-off (Retry-After, else 5 s doubling per strike in a row) holds back every process, and the
  strikes are counted in Redis; the last 50 are kept for status pages;
- *history*: at most 5 requests at once across processes, as leases in a sorted set that expire on their own
  when a process dies holding one;
- *session epoch*: a counter bumped by whoever reopens the brokerage session; every process reads it before
  deciding what a session allows (pre-flight calls, the empty first read of live orders) and with every
  booking, and a process that met a 401 does not reopen again when someone already did since its request
  was sent. Reopening itself is serialised across processes by a lock with a lease.

Redis unreachable: the request fails (:class:`BudgetUnavailable`) and nothing is sent. Falling back to a
private budget would let each process spend the whole budget, which is what this module exists to prevent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis

from tradetrail.ibkr import metrics
from tradetrail.ibkr.errors import BudgetUnavailable, NotAuthenticated, RateLimited
from tradetrail.ibkr.pacing import (
    BACKOFF_MAX_S,
    BACKOFF_START_S,
    GLOBAL_RATE,
    HISTORY_CONCURRENCY,
    INTERVALS,
    MAX_WAIT_S,
)

log = logging.getLogger(__name__)

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function f(x) return string.format('%.6f', x) end
local function put(key, at) redis.call('SET', key, f(at), 'PX', math.max(1, math.ceil((at - now) * 1000)) + 1000) end
"""

# KEYS: the bookings of every class (sorted set: member -> start), next-of-class, blocked-until, strikes, epoch.
# ARGV: spacing s, class interval s (0: none), most wait s, member. The earliest start allowed by the class's
# interval and a running back-off, then the earliest time from there at least ``spacing`` away from every
# other booking: requests booked far ahead (a once-per-5-s class) do not hold back the others, which fill the
# gaps. Returns {booked 1|0, wait s, epoch, strikes, back-off still running s}; nothing is booked when the
# wait would exceed the most.
ACQUIRE = _NOW + """
local spacing, interval, most = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
local t = math.max(now, blocked)
if interval > 0 then t = math.max(t, tonumber(redis.call('GET', KEYS[2]) or '0')) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. f(now - spacing))
local near = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. f(t - spacing), '+inf', 'WITHSCORES')
for i = 2, #near, 2 do
  local b = tonumber(near[i])
  if b >= t + spacing then break end
  if b > t - spacing then t = b + spacing end
end
local epoch = redis.call('GET', KEYS[5]) or '0'
local strikes = redis.call('GET', KEYS[4]) or '0'
local held = f(math.max(0, blocked - now))
if t - now > most then return {0, f(t - now), epoch, strikes, held} end
redis.call('ZADD', KEYS[1], f(t), ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil((most + spacing) * 1000) + 1000)
if interval > 0 then put(KEYS[2], t + interval) end
return {1, f(t - now), epoch, strikes, held}
"""

# After a wait (a sleep can overshoot): the booking moves to the real start and the class's interval counts
# from there. KEYS/ARGV as ACQUIRE's (first two of each, and the member).
STARTED = _NOW + """
redis.call('ZADD', KEYS[1], 'XX', 'GT', f(now), ARGV[3])
if tonumber(ARGV[2]) > 0 and now + tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[2]) or '0') then
  put(KEYS[2], now + tonumber(ARGV[2]))
end
return 1
"""

# A 429. KEYS: blocked-until, strikes, events. ARGV: Retry-After s (-1: none), back-off start s, most s, scale,
# wall time, pacing class, pid. Returns {back-off s, strike}.
PENALIZE = _NOW + """
local strike = redis.call('INCR', KEYS[2])
local retry, first, most, scale = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local backoff = retry
if retry < 0 then backoff = math.min(most, first * 2 ^ (strike - 1)) * scale end
redis.call('PEXPIRE', KEYS[2], math.ceil((backoff + 2 * most * scale) * 1000) + 1000)
local untl = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now + backoff)
put(KEYS[1], untl)
redis.call('LPUSH', KEYS[3], cjson.encode({at = ARGV[5], endpoint = ARGV[6], status = 429, backoff_s = backoff,
                                           strike = strike, pid = tonumber(ARGV[7])}))
redis.call('LTRIM', KEYS[3], 0, 49)
return {f(backoff), strike}
"""

# A history lease. KEYS: the leases (sorted set: token -> expiry). ARGV: most at once, token, lease s.
HOLD = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', f(now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], f(now + tonumber(ARGV[3])), ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000) + 1000)
return 1
"""

# Release a lock only if it is still ours. KEYS: the lock. ARGV: our token.
# The session epoch as a seqlock: odd while a reopen is in flight, even otherwise. A missing key (a Redis that
# restarted keeps nothing) starts from Redis's clock in microseconds, so no value handed out before comes back.
EPOCH_STEP = """
local v = tonumber(redis.call('GET', KEYS[1]))
if not v then
  local t = redis.call('TIME')
  v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if v % 2 == 1 then v = v + 1 end
end
local odd = v % 2 == 1
if ARGV[1] == 'begin' then
  if odd then v = v + 2 else v = v + 1 end
else
  if odd then v = v + 1 else v = v + 2 end
end
redis.call('SET', KEYS[1], string.format('%d', v))
return v
"""

UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def redacted(url: str) -> str:
    """``redis://host:port/db`` without user or password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class RedisBudget:
    """The pacing budget and session epoch of one gateway, shared through Redis (see the module docstring).
    Same interface as :class:`tradetrail.ibkr.pacing.RateLimiter`."""

    shared = True

    def __init__(self, client: redis.Redis, prefix: str, scale: float = 1.0, *, where: str = "redis",
                 request_timeout_s: float = 15.0, max_wait_s: float = MAX_WAIT_S,
                 sleep: Callable[[float], None] = time.sleep):
        self.client, self.prefix, self.scale, self.where = client, prefix, scale, where
        self.max_wait_s, self._sleep = max_wait_s, sleep
        # A history lease outlives its request: the wait for the pacing turn, then the request's own timeout.
        self.lease_s = max_wait_s + request_timeout_s + 5.0
        self.reopen_lease_s = 2 * request_timeout_s + 10.0
        self._acquire = client.register_script(ACQUIRE)
        self._started = client.register_script(STARTED)
        self._penalize = client.register_script(PENALIZE)
        self._hold = client.register_script(HOLD)
        self._unlock = client.register_script(UNLOCK)
        self._epoch_step = client.register_script(EPOCH_STEP)
        self._strikes_seen = 0
        self._last_epoch = 0
        self.requests = 0
        self.waited_s = 0.0

    @classmethod
    def for_settings(cls, settings) -> RedisBudget:
        """The budget of the gateway ``settings`` name (keys named after its URL, so two gateways on one Redis
        keep two budgets), on ``TRADETRAIL_REDIS_URL``, with short socket timeouts (a wait is bounded)."""
        gateway = settings.ibkr_oauth_rest_url if settings.ibkr_oauth else settings.ibkr_url
        digest = hashlib.sha256(gateway.encode()).hexdigest()[:16]
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2.0, socket_timeout=2.0)
        # The braces keep every key of one budget in one hash slot (a Lua script's keys must share one on a cluster).
        return cls(client, f"tradetrail:ibkr:{{{digest}}}", settings.ibkr_pacing_scale,
                   where=redacted(settings.redis_url), request_timeout_s=settings.ibkr_timeout_s)

    # -- keys ----------------------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def _run(self, what: str, call):
        try:
            return call()
        except redis.RedisError as exc:
            raise BudgetUnavailable(
                f"the shared IBKR pacing budget in Redis ({self.where}) cannot be reached while {what} "
                f"({type(exc).__name__}: {exc}); no request was sent: a budget of this process alone could "
                "exceed the gateway's limits together with the others") from None

    # -- pacing --------------------------------------------------------------------------------------------
    @contextmanager
    def slot(self, endpoint: str) -> Iterator[int]:
        """Wait for ``endpoint``'s turn in the shared budget (and a history lease for a history request);
        yields the session epoch the request is sent in."""
        token = self._hold_history() if endpoint == "history" else None
        try:
            epoch = self._book(endpoint)
            yield epoch
        finally:
            if token is not None:
                try:
                    self.client.zrem(self.key("history"), token)
                except redis.RedisError as exc:  # the lease expires by itself
                    log.warning("IBKR budget: could not release a history lease (%s); it expires in %.0f s",
                                exc, self.lease_s)

    def _book(self, endpoint: str) -> int:
        interval = INTERVALS.get(endpoint, 0.0) * self.scale
        pair = [self.key("bookings"), self.key(f"next:{endpoint}")]
        keys = [*pair, self.key("blocked"), self.key("strikes"), self.key("epoch")]
        spacing, member = self.scale / GLOBAL_RATE, f"{os.getpid()}:{uuid.uuid4().hex}"
        booked, wait, epoch, strikes, held = self._run("booking a request", lambda: self._acquire(
            keys=keys, args=[spacing, interval, self.max_wait_s, member]))
        wait, held, epoch = float(wait), float(held), int(epoch)
        self._strikes_seen, self._last_epoch = int(strikes), epoch
        if not booked:
            if held > 0:
                raise RateLimited(f"IBKR rate limit (429): every process holds its requests back for another "
                                  f"{held:.1f} s; not sent")
            raise RateLimited(f"IBKR pacing: the next {endpoint} request would wait {wait:.1f} s for its turn "
                              f"(more than {self.max_wait_s:g} s) in the budget all processes share; not sent")
        self.requests += 1
        if wait > 0:
            self.waited_s += wait
            metrics.PACING_WAIT.labels(endpoint).inc(wait)
            self._sleep(wait)
            self._run("booking a request", lambda: self._started(keys=pair, args=[spacing, interval, member]))
        return epoch

    def _hold_history(self) -> str:
        """A lease on one of the 5 history requests IBKR serves at once, waiting up to ``max_wait_s``."""
        token = f"{os.getpid()}:{uuid.uuid4().hex}"
        deadline = time.monotonic() + self.max_wait_s
        waited = 0.0
        while not self._run("taking a history slot", lambda: self._hold(
                keys=[self.key("history")], args=[HISTORY_CONCURRENCY, token, self.lease_s])):
            if time.monotonic() > deadline:
                raise RateLimited(f"IBKR pacing: {HISTORY_CONCURRENCY} history requests have been running in "
                                  f"other processes for {self.max_wait_s:g} s; not sent")
            pause = 0.02 + random.random() * 0.03  # noqa: S311 - spreads the pollers, nothing secret
            self._sleep(pause)
            waited += pause
        if waited:
            metrics.PACING_WAIT.labels("history").inc(waited)
            self.waited_s += waited
        return token

    def penalize(self, endpoint: str, retry_after: float | None) -> float:
        """A 429: hold every process's requests back; return the back-off in seconds."""
        keys = [self.key("blocked"), self.key("strikes"), self.key("events")]
        args = [retry_after if retry_after is not None and retry_after >= 0 else -1, BACKOFF_START_S,
                BACKOFF_MAX_S, self.scale, datetime.now(UTC).isoformat(), endpoint, os.getpid()]
        backoff, strike = self._run("recording a 429", lambda: self._penalize(keys=keys, args=args))
        backoff = float(backoff)
        log.warning("IBKR answered 429 on %s: every process holds its requests back for %.1f s (strike %s)",
                    endpoint, backoff, strike)
        return backoff

    def succeeded(self) -> None:
        """A request went through: the next 429 starts the back-off from the beginning again."""
        if self._strikes_seen:
            self._strikes_seen = 0
            try:
                self.client.delete(self.key("strikes"))
            except redis.RedisError as exc:  # the request succeeded; the strikes expire by themselves
                log.warning("IBKR budget: could not reset the 429 strikes (%s)", exc)

    # -- the brokerage session's epoch ---------------------------------------------------------------------
    def epoch(self) -> int:
        """The shared epoch now (asked of Redis)."""
        value = self._run("reading the session epoch", lambda: self.client.get(self.key("epoch")))
        self._last_epoch = int(value or 0)
        return self._last_epoch

    @property
    def last_epoch(self) -> int:
        return self._last_epoch

    def begin_reopen(self) -> int:
        """The shared epoch turns odd before a reopen is sent (see :meth:`RateLimiter.begin_reopen`)."""
        self._last_epoch = int(self._run("recording a reopen in flight",
                                         lambda: self._epoch_step(keys=[self.key("epoch")], args=["begin"])))
        return self._last_epoch

    def end_reopen(self) -> int:
        """The shared epoch turns even again, to a value never used before."""
        self._last_epoch = int(self._run("recording a reopened session",
                                         lambda: self._epoch_step(keys=[self.key("epoch")], args=["end"])))
        return self._last_epoch

    @contextmanager
    def reopen_guard(self) -> Iterator[None]:
        """One reopen at a time across processes: a lock with a lease (a process that dies holding it does
        not block the others for longer than the lease)."""
        token, key = uuid.uuid4().hex, self.key("reopen")
        deadline = time.monotonic() + self.reopen_lease_s + 5.0
        while not self._run("taking the reopen lock", lambda: self.client.set(
                key, token, nx=True, px=int(self.reopen_lease_s * 1000))):
            if time.monotonic() > deadline:
                raise NotAuthenticated(f"IBKR: another process has been reopening the brokerage session for "
                                       f"{self.reopen_lease_s + 5:.0f} s")
            self._sleep(0.05)
        try:
            yield
        finally:
            try:
                self._unlock(keys=[key], args=[token])
            except redis.RedisError as exc:
                log.warning("IBKR budget: could not release the reopen lock (%s); its lease ends it", exc)

    def report(self) -> dict:
        """For status pages; never raises (Redis down is reported as such)."""
        out = {"budget": "redis", "where": self.where, "requests": self.requests, "waited_s": round(self.waited_s, 3),
               "scale": self.scale, "processes_sharing": "all (one budget in Redis)"}
        try:
            out["rate_limited"] = [json.loads(e) for e in self.client.lrange(self.key("events"), 0, 49)][::-1]
        except (redis.RedisError, ValueError) as exc:
            out["rate_limited"] = []
            out["budget_error"] = f"{type(exc).__name__}: {exc}"
        return out
