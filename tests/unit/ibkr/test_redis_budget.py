"""The shared IBKR budget's Lua scripts against a real Redis (127.0.0.1:6379, or TRADETRAIL_TEST_REDIS): the
arithmetic of the global rate, the per-endpoint intervals, the 429 back-off, the history leases, the epoch
and the reopen lock, each test under a key prefix of its own that it deletes afterwards.

Sleeps are recorded, not slept (the budget's ``sleep``), so a booking's wait is what the script computed from
Redis's clock; the few milliseconds Redis's clock moves between two calls are the tolerance.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from contextlib import ExitStack

import pytest
import redis

from tradetrail.ibkr.errors import BudgetUnavailable, RateLimited
from tradetrail.ibkr.pacing import RateLimiter, make_limiter
from tradetrail.ibkr.redis_budget import HOLD, RedisBudget, redacted
from tradetrail.settings import Settings

REDIS = os.environ.get("TRADETRAIL_TEST_REDIS", "redis://127.0.0.1:6379")
TOL = 0.02


@pytest.fixture
def client():
    c = redis.Redis.from_url(f"{REDIS}/0")
    yield c
    c.close()


@pytest.fixture
def prefix(client):
    p = f"test:ibkr-budget:{{{uuid.uuid4().hex}}}"
    yield p
    keys = list(client.scan_iter(match=f"{p}:*"))
    if keys:
        client.delete(*keys)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def budget(client, prefix, scale=1.0, **kw) -> tuple[RedisBudget, Sleeps]:
    sleeps = Sleeps()
    return RedisBudget(client, prefix, scale, sleep=sleeps, **kw), sleeps


def waits(b: RedisBudget, sleeps: Sleeps, endpoint: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        before = len(sleeps)
        with b.slot(endpoint):
            out.append(sleeps[-1] if len(sleeps) > before else 0.0)
    return out


def near(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(abs(g - w) <= TOL for g, w in zip(got, want, strict=True))


def test_eight_per_second_overall_and_one_per_five_seconds_for_live_orders(client, prefix):
    b, sleeps = budget(client, prefix, max_wait_s=1000)
    assert near(waits(b, sleeps, "other", 3), [0.0, 0.125, 0.25])  # 8/s: a fifth under the gateway's 10/s
    assert near(waits(b, sleeps, "live_orders", 2), [0.375, 5.375])  # its own interval, after the global turn
    assert near(waits(b, sleeps, "trades", 1), [0.5])  # the gap before the next live orders read is free
    assert near(waits(b, sleeps, "snapshot", 3), [0.625, 0.75, 0.875])  # 10/s of its own, and 8/s overall
    assert near(waits(b, sleeps, "other", 1), [1.0])
    # Every key the budget wrote expires a second after its time has passed (the latest: 5.375 + 5 s).
    assert all(0 < client.pttl(k) <= 11_400 for k in client.scan_iter(match=f"{prefix}:next:*"))


def test_two_budgets_on_one_prefix_are_one_budget_and_other_prefixes_are_not(client, prefix):
    a, a_sleeps = budget(client, prefix, max_wait_s=1000)
    b, b_sleeps = budget(client, prefix, max_wait_s=1000)
    other, other_sleeps = budget(client, prefix + "x", max_wait_s=1000)
    assert near(waits(a, a_sleeps, "live_orders", 1), [0.0])
    assert near(waits(b, b_sleeps, "live_orders", 1), [5.0])  # the other process's call counts
    # A request booked 5 s ahead holds back no other class (was: the next request of any kind after it).
    assert near(waits(a, a_sleeps, "other", 1), [0.125])
    assert near(waits(b, b_sleeps, "other", 1), [0.25])
    assert near(waits(other, other_sleeps, "live_orders", 1), [0.0])  # another gateway's budget
    for k in client.scan_iter(match=f"{prefix}x:*"):
        client.delete(k)


def test_no_two_bookings_closer_than_an_eighth_of_a_second_whatever_the_order(client, prefix):
    b, sleeps = budget(client, prefix, max_wait_s=1000)
    b.penalize("other", 0.35)  # every request starts at 0.35 s or later
    assert near(waits(b, sleeps, "live_orders", 2), [0.35, 5.35])
    assert near(waits(b, sleeps, "other", 2), [0.475, 0.6])
    bookings = sorted(score for _, score in client.zrange(f"{prefix}:bookings", 0, -1, withscores=True))
    assert min(y - x for x, y in zip(bookings, bookings[1:], strict=False)) >= 0.125 - 1e-6


def test_the_scale_shrinks_every_interval(client, prefix):
    b, sleeps = budget(client, prefix, scale=0.02, max_wait_s=1000)
    assert near(waits(b, sleeps, "live_orders", 3), [0.0, 0.1, 0.2])
    assert near(waits(b, sleeps, "other", 1), [0.0025])


def test_a_wait_longer_than_the_most_fails_and_books_nothing(client, prefix):
    b, sleeps = budget(client, prefix, max_wait_s=1.0)
    assert near(waits(b, sleeps, "live_orders", 1), [0.0])
    with pytest.raises(RateLimited, match=r"next live_orders request would wait 5\.0 s"):
        with b.slot("live_orders"):
            pass
    assert near(waits(b, sleeps, "other", 1), [0.125])  # the refused request took no turn


def test_a_429_holds_back_every_process_with_shared_strikes_until_a_request_succeeds(client, prefix):
    a, a_sleeps = budget(client, prefix, max_wait_s=1000)
    b, b_sleeps = budget(client, prefix, max_wait_s=1000)
    assert a.penalize("history", 2.5) == 2.5  # Retry-After wins
    assert near(waits(b, b_sleeps, "other", 1), [2.5])  # the other process waits it out too
    assert b.penalize("other", None) == 10.0  # the second strike in a row, whoever got it: 5 s doubled
    assert near(waits(a, a_sleeps, "other", 1), [10.0])  # from the 429 (nothing was really slept)
    a.succeeded()  # a request went through after the strikes: the next 429 starts from 5 s again
    assert client.get(f"{prefix}:strikes") is None
    assert b.penalize("other", None) == 5.0
    assert [(e["endpoint"], e["backoff_s"], e["strike"]) for e in b.report()["rate_limited"]] == \
        [("history", 2.5, 1), ("other", 10.0, 2), ("other", 5.0, 1)]
    assert a.report()["rate_limited"] == b.report()["rate_limited"]


def test_a_back_off_longer_than_the_most_wait_fails_at_once(client, prefix):
    b, sleeps = budget(client, prefix, max_wait_s=60)
    b.penalize("other", 600.0)  # IBKR's penalty box
    started = time.monotonic()
    with pytest.raises(RateLimited, match=r"every process holds its requests back for another 6\d\d\.\d s"):
        with b.slot("other"):
            pass
    assert time.monotonic() - started < 1 and sleeps == []


def test_at_most_five_history_requests_at_once_across_budgets(client, prefix):
    a, _ = budget(client, prefix, max_wait_s=0.3)
    b, _ = budget(client, prefix, max_wait_s=0.3)
    b._sleep = time.sleep  # the sixth really polls until its deadline
    with ExitStack() as held:
        for i in range(5):
            held.enter_context((a if i % 2 else b).slot("history"))
        assert client.zcard(f"{prefix}:history") == 5
        with pytest.raises(RateLimited, match="5 history requests"):
            with b.slot("history"):
                pass
    assert client.zcard(f"{prefix}:history") == 0  # released on leaving
    with b.slot("history"):
        assert client.zcard(f"{prefix}:history") == 1


def test_a_history_lease_of_a_dead_process_expires(client, prefix):
    hold = client.register_script(HOLD)
    key = f"{prefix}:history"
    assert [hold(keys=[key], args=[5, f"dead{i}", 0.05]) for i in range(6)] == [1, 1, 1, 1, 1, 0]
    time.sleep(0.1)
    assert hold(keys=[key], args=[5, "alive", 10]) == 1
    assert client.zrange(key, 0, -1) == [b"alive"]


def test_the_epoch_is_shared_and_seen_with_every_booking(client, prefix):
    a, _ = budget(client, prefix)
    b, _ = budget(client, prefix)
    assert a.epoch() == b.epoch() == 0
    reopening = a.begin_reopen()  # a reopen in flight: odd, and seen by the other process at once
    assert reopening % 2 == 1 and b.epoch() == reopening
    reopened = a.end_reopen()
    assert reopened % 2 == 0 and reopened > reopening
    with b.slot("other") as epoch:
        assert epoch == reopened and b.last_epoch == reopened
    assert b.epoch() == reopened


def test_the_epoch_never_comes_back_to_a_value_handed_out_before(client, prefix):
    """A Redis that restarts keeps nothing: the epoch starts again from Redis's clock, not from 0, so a process
    that counted reads of an earlier session never takes a new session for it (review of #15, M1)."""
    a, _ = budget(client, prefix)
    first = a.end_reopen()
    assert first % 2 == 0 and first > 10**15  # microseconds of Redis's clock
    client.delete(f"{prefix}:epoch")  # the restart
    again = a.end_reopen()
    assert again % 2 == 0 and again > first
    failed_begin = a.begin_reopen()  # a process died between the two steps: the next reopen still ends even
    assert a.begin_reopen() % 2 == 1 and a.end_reopen() % 2 == 0 and a.end_reopen() > failed_begin


def test_one_reopen_at_a_time_across_budgets(client, prefix):
    a, _ = budget(client, prefix)
    b, _ = budget(client, prefix)
    b._sleep = time.sleep
    order = []
    with a.reopen_guard():
        t = threading.Thread(target=lambda: (b.reopen_guard().__enter__(), order.append("b")))
        t.start()
        time.sleep(0.2)
        order.append("a done")
    t.join(5)
    assert order == ["a done", "b"]


def test_redis_unreachable_fails_the_request_quickly_without_the_password():
    dead = redis.Redis.from_url("redis://user:s3cret@127.0.0.1:1/0", socket_connect_timeout=1, socket_timeout=1)
    b = RedisBudget(dead, "test:dead", where=redacted("redis://user:s3cret@127.0.0.1:1/0"))
    started = time.monotonic()
    with pytest.raises(BudgetUnavailable) as err:
        with b.slot("other"):
            raise AssertionError("a request was let through without the shared budget")
    assert time.monotonic() - started < 5
    assert "redis://127.0.0.1:1/0" in str(err.value) and "s3cret" not in str(err.value)
    assert "no request was sent" in str(err.value)
    assert b.report()["budget_error"]  # a status page still answers


def test_the_budget_follows_the_executor_unless_set():
    assert isinstance(make_limiter(Settings(executor="celery")), RedisBudget)
    assert isinstance(make_limiter(Settings(executor="embedded", ibkr_budget="redis")), RedisBudget)
    local = make_limiter(Settings(executor="embedded"))
    assert isinstance(local, RateLimiter) and local.share == 1
    old = make_limiter(Settings(executor="celery", ibkr_budget="process", worker_concurrency=2))
    assert isinstance(old, RateLimiter) and old.share == 3
    a = make_limiter(Settings(executor="celery", ibkr_url="http://127.0.0.1:5001/v1/api"))
    b = make_limiter(Settings(executor="celery", ibkr_url="http://127.0.0.1:5002/v1/api"))
    assert a.prefix != b.prefix  # one budget per gateway
