"""The Celery app of the IBKR budget tests (not a test module): tasks that drive IBKR requests from real
worker processes through the product's own session and broker, built from the environment as
``tradetrail worker`` builds its app (``worker/tasks.py``), once per pool process after the fork. What is
under test is the budget and the session epoch those processes share; the task bodies only make requests.

Started by ``celery -A tests.integration.ibkr.celery_ibkr_app worker`` (``celery_procs.Procs.start_celery``).
"""

from __future__ import annotations

import os
import threading
import time

import redis
from celery import Celery

from tradetrail.ibkr.errors import IbkrError, RateLimited

_REDIS = os.environ.get("TRADETRAIL_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("ibkr-budget-tests", broker=_REDIS, backend=_REDIS)
app.conf.update(worker_prefetch_multiplier=1, task_acks_late=True, worker_hijack_root_logger=False,
                result_expires=600)
_built = None


def application():
    global _built
    if _built is None:
        from tradetrail.runtime.build import build_app
        from tradetrail.settings import get_settings

        _built = build_app(get_settings(), migrate=False)
    return _built


def _barrier(name: str, parties: int, timeout: float = 120.0) -> None:
    """Wait until ``parties`` tasks reached ``name`` (building an app takes seconds on a busy machine: the
    processes start their requests together however long each took to get ready)."""
    client = redis.Redis.from_url(_REDIS)
    try:
        client.incr(name)
        client.expire(name, 600)
        deadline = time.monotonic() + timeout
        while int(client.get(name) or 0) < parties:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {client.get(name)} of {parties} tasks reached {name}")
            time.sleep(0.005)
    finally:
        client.close()


@app.task(name="ibkr_test.hammer")
def hammer(barrier: str, parties: int, seconds: float, paths: list[str]) -> dict:
    """Once ``parties`` tasks are ready, for ``seconds`` one thread per path asks IBKR for it again and again
    (each request waits for its turn in the budget, as any adapter call would)."""
    session = application().ibkr_session()
    sent: dict[str, int] = {p: 0 for p in paths}
    refused, errors = [0], []
    session.client()  # ibind's client, built on first use: before the start, not in the measured time
    _barrier(barrier, parties)
    until = time.time() + seconds

    def loop(path: str) -> None:
        while time.time() < until:
            try:
                session.get(path)
                sent[path] += 1
            except RateLimited:
                refused[0] += 1
            except IbkrError as exc:
                errors.append(str(exc))
    threads = [threading.Thread(target=loop, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = session.limiter.report()
    return {"pid": os.getpid(), "sent": sent, "refused": refused[0], "errors": errors[:5],
            "budget": report["budget"], "waited_s": report["waited_s"]}


@app.task(name="ibkr_test.read_accounts")
def read_accounts() -> dict:
    """One read through the session (a 401 here reopens the brokerage session); the epoch after it."""
    session = application().ibkr_session()
    session.get("iserver/accounts")
    return {"pid": os.getpid(), "epoch": session.epoch, "reopened": session.info["reopened"],
            "reopened_elsewhere": session.info["reopened_elsewhere"]}


@app.task(name="ibkr_test.live_orders")
def live_orders(account: str) -> dict:
    """The working orders the broker adapter sees at IBKR (what reconciliation trusts)."""
    built = application()
    ids = [bo.broker_order_id for bo in built.broker.orders(account)]
    return {"pid": os.getpid(), "ids": ids, "epoch": built.ibkr_session().epoch}
