"""The sweep of executions left ``running`` by a process that died: real processes, killed mid-run.

A run blocks on a model that takes 30 s to answer (the fake OpenAI server), so its execution row is
``running`` while its process lives; one process is then SIGKILLed, the other left alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.fakes.openai_server import Behaviour
from tests.support.helpers import demo, wait_for
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.runs.executions import create_execution
from tradetrail.services.scheduling import scheduler
from tradetrail.services.scheduling.embedded import EmbeddedScheduler
from tradetrail.services.scheduling.sweep import sweep_interrupted
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings
from tradetrail.worker.celery_app import make_celery

BIN = Path(sys.executable).with_name("tradetrail")
pytestmark = pytest.mark.slow

RUN_SLOT = ("import sys; from tradetrail.runtime.build import build_app; from tradetrail.settings import Settings; "
            "from tradetrail.services.scheduling.scheduler import run_claimed_slot; "
            "run_claimed_slot(build_app(Settings(), migrate=False), int(sys.argv[1]))")


def _strategy(app, user_id: int, name: str, **extra) -> Strategy:
    config = StrategyConfig.model_validate({"symbol": "SPX", "analyst": {"kind": "llm"},
                                            "market_data": {"source": "sample", "replay_start": "2010-01-04"},
                                            **extra})
    with app.Session() as s:
        return save_strategy(s, app, user_id, name, config)


def _running(app, strategy_id: int) -> Execution | None:
    with app.Session() as s:
        return s.scalar(select(Execution).where(Execution.strategy_id == strategy_id, Execution.status == "running"))


def _status(app, execution_id: str) -> Execution:
    with app.Session() as s:
        return s.get(Execution, execution_id)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)


def test_the_sweep_marks_a_killed_run_and_its_slot_and_leaves_a_live_run_alone(app, cli_env, fake):
    user_id, _ = demo(app)
    fake.enqueue(Behaviour.slow(30), Behaviour.slow(30))  # both runs wait on the model
    env = {**cli_env, "TRADETRAIL_LLM_BASE_URL": fake.base_url, "TRADETRAIL_LLM_TIMEOUT_S": "60"}
    doomed = _strategy(app, user_id, "doomed", schedule={"cron": "* * * * *"})
    alive = _strategy(app, user_id, "alive")
    with app.Session() as s:
        s.execute(update(Strategy).where(Strategy.id == doomed.id).values(created_at=utcnow() - timedelta(seconds=61)))
        s.commit()
    owned = []
    scheduler.dispatch(app, utcnow(), lambda strategy, slot_id: owned.append(slot_id))
    [slot_id] = owned
    procs = [subprocess.Popen([sys.executable, "-c", RUN_SLOT, str(slot_id)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([str(BIN), "run", "alive"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_for(lambda: len(fake.chat_requests) == 2, 60, "both runs to reach the model")
        killed, live = _running(app, doomed.id), _running(app, alive.id)
        assert killed and live
        assert sweep_interrupted(app) == []  # both processes are alive: nothing is touched
        _kill(procs[0])
        assert sweep_interrupted(app) == [killed.id]
        assert _status(app, live.id).status == "running"  # its process still holds the strategy lock
        row = _status(app, killed.id)
        assert row.status == "failed" and row.error.startswith("interrupted") and "sweep" in row.error
        assert row.finished_at is not None
        with app.Session() as s:
            slot = s.get(ScheduleSlot, slot_id)
        assert slot.status == "failed" and slot.execution_id == killed.id and slot.reason.startswith("interrupted")
        assert sweep_interrupted(app) == []  # settled: a second sweep finds nothing
        _kill(procs[1])
        assert sweep_interrupted(app) == [live.id]  # once its process is gone, it is an orphan too
    finally:
        for proc in procs:
            _kill(proc)


def test_a_run_in_this_process_is_not_swept_while_it_holds_its_lock(app):
    from tradetrail.trading.locks import strategy_lock

    _, strategy = demo(app)
    with strategy_lock(app, strategy.id) as held:
        assert held
        ctx = create_execution(app, strategy)  # a run of this process, in progress
        assert sweep_interrupted(app) == []
    assert sweep_interrupted(app) == [ctx.execution_id]


def test_replays_are_never_swept(app):
    _, strategy = demo(app)
    replay = create_execution(app, strategy, trigger="replay")  # replays run without the strategy lock
    assert sweep_interrupted(app) == []
    assert _status(app, replay.execution_id).status == "running"


def test_the_embedded_dispatcher_sweeps_on_its_first_pass_and_every_sweep_interval(app, settings):
    _, strategy = demo(app)
    orphan = create_execution(app, strategy)  # as if the process died right after creating it
    embedded = EmbeddedScheduler(replace(app, settings=Settings(
        home=settings.home, database_url=settings.database_url, scheduler_interval_s=5, sweep_interval_s=10)))
    try:
        assert embedded.sweep_every == 2
        embedded.tick()
        assert _status(app, orphan.execution_id).status == "failed"
        second = create_execution(app, strategy)
        embedded.tick()  # pass 2: no sweep yet
        assert _status(app, second.execution_id).status == "running"
        embedded.tick()  # pass 3 (20 s of passes): swept
        assert _status(app, second.execution_id).status == "failed"
    finally:
        embedded.pool.shutdown()


def test_celery_beat_sends_the_sweep_and_a_worker_runs_it(app, settings, cli_env, redis_url, procs):

    sweep = make_celery(settings).conf.beat_schedule["sweep"]
    assert (sweep["task"], sweep["schedule"]) == ("tradetrail.sweep", settings.sweep_interval_s)
    _, strategy = demo(app)
    orphan = create_execution(app, strategy)
    env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url,
           "TRADETRAIL_SWEEP_INTERVAL_S": "1", "TRADETRAIL_SCHEDULER_INTERVAL_S": "5"}
    try:
        procs.start(env, "worker", "--concurrency", "1")
        procs.start(env, "beat")
        wait_for(lambda: _status(app, orphan.execution_id).status == "failed", 90, "beat's sweep to run on the worker")
        assert "sweep" in _status(app, orphan.execution_id).error
    finally:
        procs.stop_all()


def test_a_slot_settles_under_its_lock_so_a_sweep_can_never_fail_a_finished_run(app, monkeypatch):
    user_id, _ = demo(app)
    strategy = _strategy(app, user_id, "minutely", analyst={"kind": "rules"}, schedule={"cron": "* * * * *"})
    with app.Session() as s:
        s.execute(update(Strategy).where(Strategy.id == strategy.id)
                  .values(created_at=utcnow() - timedelta(seconds=61)))
        s.commit()
    owned = []
    scheduler.dispatch(app, utcnow(), lambda st, slot_id: owned.append((st, slot_id)))
    [(row, slot_id)] = owned
    settle = scheduler._set
    swept = []

    def sweep_then_settle(app_, slot, expected, **values):  # a sweep in the last instant before the slot settles
        if values.get("status") in ("done", "failed"):
            swept.extend(sweep_interrupted(app_))
        return settle(app_, slot, expected, **values)

    monkeypatch.setattr(scheduler, "_set", sweep_then_settle)
    assert scheduler.run_slot(app, row, slot_id) == "succeeded"
    with app.Session() as s:
        slot = s.get(ScheduleSlot, slot_id)
    assert swept == [] and slot.status == "done", (swept, slot.status, slot.reason)
