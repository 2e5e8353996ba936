"""A real ``tradetrail worker``: its processes' own database connections (#11 item 12), a slot task that fails
before its run started (item 13), and which process records itself on a slot and under what name (item 15).

Processes are real (``tradetrail worker`` with its pool and control processes, on the local Redis), so is
the database; a fake OpenAI-compatible server holds runs at the model so that they overlap.
"""

from __future__ import annotations

import os
import shutil
import socket
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.fakes.openai_server import Behaviour
from tests.support.celery_procs import group_pids, parent_of, sockets_to, wait_for_log
from tests.support.helpers import demo, wait_for
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.scheduling import scheduler
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings
from tradetrail.worker.celery_app import RUNS_QUEUE, make_celery

pytestmark = pytest.mark.slow
BACKEND = os.environ.get("TRADETRAIL_TEST_DB", "sqlite")
PG_PORT = 5432
HOST = socket.gethostname()


def _due(app, user_id: int, names: list[str], **extra) -> list[Strategy]:
    """Strategies due now (every minute, created a minute ago), their runs asking the fake model."""
    out = []
    with app.Session() as s:
        for name in names:
            config = StrategyConfig.model_validate({
                "symbol": "SPX", "schedule": {"cron": "* * * * *", "timezone": "UTC"}, "analyst": {"kind": "llm"},
                "market_data": {"source": "sample", "replay_start": "2010-01-04"}, **extra})
            strategy = save_strategy(s, app, user_id, name, config)
            s.execute(update(Strategy).where(Strategy.id == strategy.id)
                      .values(created_at=utcnow() - timedelta(seconds=61)))
            out.append(strategy)
        s.commit()
    return out


def _claim(app) -> dict[str, int]:
    owned = {}
    scheduler.dispatch(app, utcnow(), lambda st, slot_id: owned.__setitem__(st.name, slot_id))
    return owned


def _slot(app, slot_id: int) -> ScheduleSlot:
    with app.Session() as s:
        return s.get(ScheduleSlot, slot_id)


def _env(cli_env, redis_url, fake=None, **extra) -> dict:
    env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url, **extra}
    if fake is not None:
        env.update(TRADETRAIL_LLM_BASE_URL=fake.base_url, TRADETRAIL_LLM_TIMEOUT_S="60")
    return env


def _pool(worker_pid: int, concurrency: int) -> tuple[int, list[int]]:
    """(the runs worker's main pid, its pool processes' pids) once all ``concurrency`` are up."""
    def up():
        pids = group_pids(worker_pid)
        for main in pids:
            children = [p for p in pids if parent_of(p) == main]
            if main != worker_pid and len(children) == concurrency:
                return main, sorted(children)
        return None
    return wait_for(up, 60, "the worker's pool processes")


def _shared(pids: list[int]) -> dict[int, set[int]]:
    return {inode: owners for inode, owners in sockets_to(PG_PORT, pids).items() if len(owners) > 1}


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL sessions (connections and advisory locks)")
def test_each_pool_process_has_its_own_connection_and_locks_and_slots_hold(app, settings, cli_env, redis_url,
                                                                           procs, fake):
    user_id, _ = demo(app)
    fake.enqueue(Behaviour.slow(20), Behaviour.slow(20))  # both first runs wait at the model, holding their locks
    _due(app, user_id, ["a", "b"])
    owned = _claim(app)
    worker = procs.start(_env(cli_env, redis_url, fake), "worker", "--concurrency", "3", log="worker.log")
    wait_for_log(procs, "worker.log", " ready.", 120, count=2)  # the runs node and the control node
    main, pool = _pool(worker.pid, 3)
    everyone = group_pids(worker.pid)
    # Idle: no connection of the parent lives on in its pool processes (was: one socket, four pids).
    assert _shared(everyone) == {}, _shared(everyone)

    producer = make_celery(Settings(home=settings.home, database_url=settings.database_url, redis_url=redis_url))
    for name in ("a", "b"):
        producer.send_task("tradetrail.run_slot", args=[owned[name]], queue=RUNS_QUEUE)
    wait_for(lambda: len(fake.chat_requests) == 2, 120, "both runs to reach the model")
    a_slot = _slot(app, owned["a"])
    assert a_slot.status == "running"
    # While "a" runs: its slot delivered again, and a later slot of "a", both reach the third pool process.
    producer.send_task("tradetrail.run_slot", args=[owned["a"]], queue=RUNS_QUEUE)
    with app.engine.begin() as conn:
        later = conn.execute(ScheduleSlot.__table__.insert().values(
            strategy_id=a_slot.strategy_id, scheduled_for=a_slot.scheduled_for + timedelta(minutes=1),
            status="claimed", claimed_by="test", claimed_at=utcnow()).returning(ScheduleSlot.id)).scalar()
    producer.send_task("tradetrail.run_slot", args=[later], queue=RUNS_QUEUE)
    wait_for(lambda: _slot(app, later).status != "claimed", 60, "the later slot to be decided")
    holders = sockets_to(PG_PORT, group_pids(worker.pid))
    assert _shared(group_pids(worker.pid)) == {}, holders
    busy = {p for owners in holders.values() for p in owners}
    assert len(busy & set(pool)) >= 2, (holders, pool)  # the two running processes hold sessions of their own

    def settled():
        return all(_slot(app, owned[n]).status in ("done", "failed") for n in ("a", "b"))
    wait_for(settled, 120, "both runs to finish")
    a_slot, b_slot, later_slot = (_slot(app, i) for i in (owned["a"], owned["b"], later))
    assert (a_slot.status, b_slot.status) == ("done", "done"), (a_slot.reason, b_slot.reason)
    # Never two runs of one strategy at once: the later slot found "a" locked by another process.
    assert later_slot.status == "skipped" and "already running" in later_slot.reason
    with app.Session() as s:
        runs = s.execute(select(Execution.strategy_id, Execution.status)).all()
    assert sorted(st for _, st in runs) == ["succeeded", "succeeded"]  # the redelivery did not run "a" again
    assert len(fake.chat_requests) == 2
    # claimed_by names the pool process that ran each slot (was: the parent's pid for all of them).
    runners = {a_slot.claimed_by, b_slot.claimed_by}
    assert runners <= {f"{HOST}:{p}" for p in pool} and len(runners) == 2, (runners, pool, main)
    log = procs.log("worker.log")
    for trouble in ("already a transaction in progress", "already exists", "lock session ended",
                    "server closed the connection"):
        assert trouble not in log, trouble


def _break_artifacts(settings) -> None:
    folder = settings.home / "artifacts"
    shutil.rmtree(folder)
    folder.write_text("not a folder")


def _mend_artifacts(settings) -> None:
    folder = settings.home / "artifacts"
    folder.unlink()
    folder.mkdir()


def test_a_slot_task_that_fails_before_its_run_starts_is_tried_again(app, settings, cli_env, redis_url, procs):
    user_id, _ = demo(app)
    _due(app, user_id, ["retried"], analyst={"kind": "rules"})
    [slot_id] = _claim(app).values()
    procs.start(_env(cli_env, redis_url), "worker", "--concurrency", "1", log="worker.log")
    wait_for_log(procs, "worker.log", " ready.", 120, count=2)
    _break_artifacts(settings)  # a pool process cannot build its app: nothing of the slot has run
    producer = make_celery(Settings(home=settings.home, database_url=settings.database_url, redis_url=redis_url))
    producer.send_task("tradetrail.run_slot", args=[slot_id], queue=RUNS_QUEUE)
    wait_for_log(procs, "worker.log", f"slot {slot_id} could not start (attempt 1 of 4)", 60)
    assert _slot(app, slot_id).status == "claimed"
    _mend_artifacts(settings)
    wait_for(lambda: _slot(app, slot_id).status == "done", 60, "the next attempt to run the slot")
    with app.Session() as s:
        assert s.scalar(select(func.count(Execution.id))) == 1


def test_a_slot_task_that_cannot_start_at_all_settles_the_slot_with_the_reason(app, settings, cli_env, redis_url,
                                                                               procs):
    user_id, _ = demo(app)
    _due(app, user_id, ["doomed"], analyst={"kind": "rules"})
    [slot_id] = _claim(app).values()
    procs.start(_env(cli_env, redis_url, TRADETRAIL_SLOT_START_ATTEMPTS="2"), "worker", "--concurrency", "1",
                log="worker.log")
    wait_for_log(procs, "worker.log", " ready.", 120, count=2)
    _break_artifacts(settings)
    producer = make_celery(Settings(home=settings.home, database_url=settings.database_url, redis_url=redis_url))
    producer.send_task("tradetrail.run_slot", args=[slot_id], queue=RUNS_QUEUE)
    # Settled within seconds (2 attempts, 2 s apart), not by the sweep after the ten-minute grace window.
    slot = wait_for(lambda: (sl := _slot(app, slot_id)).status != "claimed" and sl, 60, "the slot to be settled")
    assert slot.status == "failed" and slot.execution_id is None
    assert slot.reason.startswith("not started: 2 attempt(s) failed before the run began")
    assert f"artifact folder {settings.home / 'artifacts'} is not a folder" in slot.reason
    with app.Session() as s:
        assert s.scalar(select(func.count(Execution.id))) == 0


def _nodes(producer, expected: int) -> list[str]:
    def answered():
        names = sorted({name for reply in producer.control.ping(timeout=1.0) for name in reply})
        return names if len(names) >= expected else None
    return wait_for(answered, 60, f"{expected} workers to answer a ping")


@pytest.mark.once  # what is tested (queues, processes, the CLI) is the same on either backend
def test_workers_on_one_host_have_their_own_names_and_slots_name_the_process_that_ran_them(
        app, settings, cli_env, redis_url, procs, fake):
    user_id, _ = demo(app)
    fake.enqueue(Behaviour.slow(3), Behaviour.slow(3))  # the two runs overlap: one in each worker
    _due(app, user_id, ["one", "two"])
    owned = _claim(app)
    env = _env(cli_env, redis_url, fake)
    first = procs.start(env, "worker", "--concurrency", "1", log="first.log")
    second = procs.start(env, "worker", "--concurrency", "1", "--name", "alpha", log="second.log")
    for log in ("first.log", "second.log"):
        wait_for_log(procs, log, " ready.", 120, count=2)
    producer = make_celery(Settings(home=settings.home, database_url=settings.database_url, redis_url=redis_url))
    assert _nodes(producer, 4) == sorted([f"tradetrail-{first.pid}@{HOST}", f"tradetrail-{first.pid}-control@{HOST}",
                                          f"alpha@{HOST}", f"alpha-control@{HOST}"])
    pools = [_pool(w.pid, 1)[1][0] for w in (first, second)]
    for slot_id in owned.values():
        producer.send_task("tradetrail.run_slot", args=[slot_id], queue=RUNS_QUEUE)
    wait_for(lambda: all(_slot(app, i).status == "done" for i in owned.values()), 120, "both slots to run")
    runners = sorted(_slot(app, i).claimed_by for i in owned.values())
    assert runners == sorted(f"{HOST}:{pid}" for pid in pools)  # each the pool process that ran it
    assert os.getpid() not in pools
