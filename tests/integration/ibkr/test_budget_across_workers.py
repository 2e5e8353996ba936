"""Two real Celery workers against one fake gateway (issue #15: "Two Celery workers against the fake gateway
stay within its pacing limits together"; "a reopen observed by one is respected by the other").

The workers are real (``celery worker`` with prefork pools, on the local Redis); their tasks
(``celery_ibkr_app.py``) make requests through the product's IbkrSession and IbkrBroker. Each scenario runs
with the shared budget (``TRADETRAIL_IBKR_BUDGET=auto``: Redis, as the Celery mode does) and with the old
per-process budget (``process``: each process keeps a fixed share, its own clock and its own epoch), which
is how the tests show they can fail: the same requests break the gateway's limits, and the same reopen
leaves the other process trusting the empty first read of a new session.
"""

from __future__ import annotations

import time

import pytest
from celery import Celery

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.celery_procs import Procs, wait_for_log

# the shared budget lives in Redis and the gateway fake: the same on either backend
pytestmark = [pytest.mark.slow, pytest.mark.once]
APP = "tests.integration.ibkr.celery_ibkr_app"
SCALE = 0.1  # the reopen test's intervals (its live orders cache lasts 0.5 s)
LIVE = "GET /iserver/account/orders"
ACCOUNTS = "GET /iserver/accounts"
SSODH = "POST /iserver/auth/ssodh/init"
SPY = 756733


def start_workers(procs: Procs, cli_env: dict, redis_url: str, gw: FakeGateway, budget: str,
                  concurrency: int) -> None:
    env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url,
           "TRADETRAIL_BROKER": "ibkr_web", "TRADETRAIL_MARKET_DATA": "ibkr", "TRADETRAIL_IBKR_URL": gw.url,
           "TRADETRAIL_IBKR_PACING_SCALE": str(gw.scale), "TRADETRAIL_IBKR_TIMEOUT_S": "10",
           "TRADETRAIL_IBKR_BUDGET": budget, "TRADETRAIL_WORKER_CONCURRENCY": str(concurrency)}
    for name in ("a", "b"):
        procs.start_celery(env, APP, "worker", "-Q", name, "-n", f"{name}@%h", "--concurrency", str(concurrency),
                           "--pool", "prefork", "-O", "fair", "--without-gossip", "--without-mingle",
                           "--without-heartbeat", "--loglevel", "INFO", log=f"{name}.log")
    for name in ("a", "b"):
        wait_for_log(procs, f"{name}.log", " ready.", 120)


def producer(redis_url: str) -> Celery:
    return Celery("ibkr-budget-tests", broker=redis_url, backend=redis_url)


@pytest.mark.parametrize("budget", ["auto", pytest.param("process", marks=pytest.mark.xfail(
    strict=True, raises=AssertionError,
    reason="the old per-process budget: four processes each keep to a third of the budget"))])
def test_two_workers_stay_within_the_gateways_limits_together(settings, cli_env, redis_url, procs, budget):
    # IBKR's documented limits themselves, unscaled: 10 requests/s (we keep to 8), live orders once per 5 s
    # (scaled down, the milliseconds of jitter between booking a turn and arriving at the gateway would be a
    # whole turn).
    with FakeGateway(pacing_scale=1.0) as gw:
        within_limits(procs, cli_env, redis_url, gw, budget)


def within_limits(procs, cli_env, redis_url, gw, budget):
    start_workers(procs, cli_env, redis_url, gw, budget, concurrency=2)
    celery = producer(redis_url)
    # Two tasks per worker: four pool processes, each with a thread on a once-per-5-s endpoint and one on
    # the global rate, all starting together; each process alone would be within its limits.
    tasks = [celery.send_task("ibkr_test.hammer", args=["ibkr_test:go", 4, 6.0, ["iserver/account/orders",
                                                                                 "iserver/accounts"]], queue=q)
             for q in ("a", "a", "b", "b")]
    results = [t.get(timeout=120) for t in tasks]
    assert len({r["pid"] for r in results}) == 4, results  # four processes made the requests
    assert all(r["budget"] == ("redis" if budget == "auto" else "process") for r in results), results
    assert all(not r["errors"] for r in results), results
    # Within IBKR's limits at the gateway: no 429 (the fake, at this scale, answers one to more than 10
    # requests within a second, or live orders within half their interval) and no request refused for pacing;
    # 8 requests per second overall across the four seconds in the middle of the run (+5 % for the
    # milliseconds of jitter between a booked turn and the arrival), never more than IBKR's 10 in any second,
    # and live orders never closer than 5 s (less 10 %).
    assert (gw.violations, sum(r["refused"] for r in results)) == ([], 0), (gw.violations[:5], results)
    first = min(t for t, _, _ in gw.stamps)
    middle = [t for t, _, _ in gw.stamps if first + 1.0 <= t < first + 5.0]
    assert len(middle) / 4.0 <= 8.4, len(middle)
    assert gw.most_in_window(1.0) <= 10, gw.most_in_window(1.0)
    closest = gw.closest(LIVE)
    assert closest is not None and closest >= 0.9 * 5.0, closest
    sent = sum(sum(r["sent"].values()) for r in results)
    assert sent >= 40, results  # the load was there: as much as the budget allows


@pytest.mark.parametrize("budget", ["auto", pytest.param("process", marks=pytest.mark.xfail(
    strict=True, raises=AssertionError,
    reason="the old per-process epoch: the other process never learns of the reopen"))])
def test_a_reopen_seen_by_one_worker_is_respected_by_the_other(settings, cli_env, redis_url, procs, budget):
    with FakeGateway(pacing_scale=SCALE) as gw:
        reopen_respected(procs, cli_env, redis_url, gw, budget)


def reopen_respected(procs, cli_env, redis_url, gw, budget):
    start_workers(procs, cli_env, redis_url, gw, budget, concurrency=1)
    celery = producer(redis_url)
    order_id = gw.book(SPY, price=1.0)  # a working order at IBKR
    first = celery.send_task("ibkr_test.live_orders", args=[gw.account], queue="b").get(timeout=60)
    assert first["ids"] == [str(order_id)]  # B read twice: the first read of a session is empty (the quirk)
    a = celery.send_task("ibkr_test.read_accounts", queue="a").get(timeout=60)
    assert a["reopened"] == 0

    gw.expire_session()  # the nightly reset: 401 until ssodh/init
    a = celery.send_task("ibkr_test.read_accounts", queue="a").get(timeout=60)
    assert a["reopened"] == 1 and gw.count(SSODH) == 1  # A met the 401 and reopened the session
    assert a["pid"] != first["pid"]
    time.sleep(2 * 5.0 * SCALE)  # past B's cache of live orders

    accounts_before = gw.count(ACCOUNTS)
    second = celery.send_task("ibkr_test.live_orders", args=[gw.account], queue="b").get(timeout=60)
    # B knew before its next request that the session was new: it did not trust the empty first read of the
    # new session (reading again found the order; the per-process epoch reported the order gone, which
    # reconciliation would act on), and it made IBKR's pre-flight again.
    assert second["ids"] == [str(order_id)], second
    assert second["epoch"] == a["epoch"] and gw.count(ACCOUNTS) == accounts_before + 1
    assert gw.count(SSODH) == 1  # and it did not reopen the session again
