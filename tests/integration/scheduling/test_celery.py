"""Distributed mode with real processes: Celery beat and workers on the local Redis, the real database."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.support.celery_procs import Procs
from tests.support.helpers import demo
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.trading_models import Order
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.scheduling import scheduler
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings
from tradetrail.worker.celery_app import RUNS_QUEUE, make_celery

pytestmark = pytest.mark.slow


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _minutely(app, user_id, name="minutely", **config) -> Strategy:
    cfg = StrategyConfig.model_validate({"symbol": "SPX", "schedule": {"cron": "* * * * *"},
                                         "market_data": {"source": "sample", "replay_start": "2010-01-04"},
                                         **config})
    with app.Session() as s:
        strategy = save_strategy(s, app, user_id, name, cfg)
        s.execute(update(Strategy).where(Strategy.id == strategy.id).values(created_at=utcnow() - timedelta(minutes=3)))
        s.commit()
        return strategy


def test_beat_and_a_worker_run_each_due_slot_once(app, cli_env, redis_url, procs):
    user_id, _ = demo(app)
    strategy = _minutely(app, user_id)
    env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url,
           "TRADETRAIL_SCHEDULER_INTERVAL_S": "1"}
    procs.start(env, "worker", "--concurrency", "2")
    procs.start(env, "beat")

    def done():
        with app.Session() as s:
            return s.scalar(select(ScheduleSlot).where(ScheduleSlot.strategy_id == strategy.id,
                                                       ScheduleSlot.status == "done"))
    slot = _wait(done, 90, "beat to dispatch and a worker to run the due slot")
    time.sleep(3)  # a few more beat ticks: nothing is due again within this minute, nothing runs twice
    procs.stop_all()
    with app.Session() as s:
        execution = s.get(Execution, slot.execution_id)
        runs = s.scalar(select(func.count(Execution.id)).where(Execution.strategy_id == strategy.id))
        slots = s.scalars(select(ScheduleSlot).where(ScheduleSlot.strategy_id == strategy.id)).all()
    assert execution.status == "succeeded" and execution.trigger == "schedule"
    assert runs == len([sl for sl in slots if sl.execution_id])
    assert len({sl.scheduled_for for sl in slots}) == len(slots)


def test_a_worker_killed_mid_execution_is_detected_and_nothing_runs_twice(app, settings, cli_env, redis_url,
                                                                          procs):
    user_id, _ = demo(app)
    with FakeOpenAIServer() as fake:
        fake.enqueue(Behaviour.slow(30))  # the analysis hangs: the worker is killed while waiting on the model
        strategy = _minutely(app, user_id, analyst={"kind": "llm"})
        env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url,
               "TRADETRAIL_LLM_BASE_URL": fake.base_url, "TRADETRAIL_LLM_TIMEOUT_S": "60",
               "TRADETRAIL_CELERY_VISIBILITY_TIMEOUT_S": "3"}
        producer = make_celery(Settings(home=settings.home, database_url=settings.database_url,
                                        redis_url=redis_url))
        owned = []
        scheduler.dispatch(app, utcnow(), lambda st, slot_id: owned.append(slot_id))
        [slot_id] = owned
        producer.send_task("tradetrail.run_slot", args=[slot_id], queue=RUNS_QUEUE)
        first = procs.start(env, "worker", "--concurrency", "1")
        _wait(lambda: fake.chat_requests, 60, "the first worker to reach the model")
        with app.Session() as s:
            assert s.get(ScheduleSlot, slot_id).status == "running"
        Procs.stop(first, signal.SIGKILL)  # the whole worker dies: its task stays unacknowledged in Redis
        procs.start(env, "worker", "--concurrency", "1")

        def settled():
            with app.Session() as s:
                return s.get(ScheduleSlot, slot_id).status == "failed"
        _wait(settled, 90, "the redelivered task to detect the lost worker")
        procs.stop_all()
    with app.Session() as s:
        slot = s.get(ScheduleSlot, slot_id)
        executions = s.scalars(select(Execution).where(Execution.strategy_id == strategy.id)).all()
        orders = s.scalar(select(func.count(Order.id)))
    assert "worker running it was lost" in slot.reason
    assert len(executions) == 1 and executions[0].status == "failed"
    assert executions[0].error.startswith("interrupted")
    assert len(fake.chat_requests) == 1 and orders == 0  # not run again: one model call, no order


def test_two_dispatchers_and_two_workers_execute_500_slots_exactly_once(app, settings, cli_env, redis_url, procs):
    import threading

    user_id, _ = demo(app)
    base = StrategyConfig.model_validate({"symbol": "SPX", "schedule": {"cron": "* * * * *"},
                                          "charts": {"enabled": False},
                                          "market_data": {"source": "sample", "replay_start": "2010-01-04"}})
    with app.Session() as s:
        for i in range(500):
            save_strategy(s, app, user_id, f"s{i:03d}", base)
        s.execute(update(Strategy).values(created_at=utcnow() - timedelta(minutes=3)))
        s.commit()
    producer = make_celery(Settings(home=settings.home, database_url=settings.database_url, redis_url=redis_url))
    now = utcnow()
    sent: list[int] = []
    lock = threading.Lock()

    def submit(strategy, slot_id):
        with lock:
            sent.append(slot_id)
        producer.send_task("tradetrail.run_slot", args=[slot_id], queue=RUNS_QUEUE)

    dispatchers = [threading.Thread(target=scheduler.dispatch, args=(app, now, submit)) for _ in range(2)]
    for t in dispatchers:
        t.start()
    for t in dispatchers:
        t.join()
    assert len(sent) == len(set(sent)) == 500
    env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url}
    for _ in range(2):
        procs.start(env, "worker", "--concurrency", "1")

    def finished():
        with app.Session() as s:
            return s.scalar(select(func.count(ScheduleSlot.id)).where(
                ScheduleSlot.status.in_(("done", "failed", "running")), ScheduleSlot.execution_id.is_not(None),
                ScheduleSlot.status != "running")) == 500
    _wait(finished, 600, "two workers to run 500 slots")
    procs.stop_all()
    with app.Session() as s:
        slots = s.scalars(select(ScheduleSlot)).all()
        executions = s.scalars(select(Execution).where(Execution.trigger == "schedule")).all()
    ran = [sl for sl in slots if sl.execution_id]
    assert len(ran) == 500 and {sl.status for sl in ran} == {"done"}, \
        [(sl.status, sl.reason) for sl in ran if sl.status != "done"][:5]
    # Created 3 minutes ago: the two earlier minutes of each strategy were missed and recorded as skipped.
    assert sorted({sl.status for sl in slots if not sl.execution_id}) == ["skipped"]
    assert len(slots) - len(ran) == 1000
    assert len(executions) == 500 and {sl.execution_id for sl in ran} == {e.id for e in executions}
    assert len({e.strategy_id for e in executions}) == 500  # one execution per slot, per strategy
