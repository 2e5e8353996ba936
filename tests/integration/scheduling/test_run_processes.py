"""Embedded mode on several cores: helper processes run the same dispatcher; every slot still runs once.

Real processes throughout: the helper is spawned by the service under test, and `tradetrail serve` runs as
a subprocess for the shutdown and orphan checks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.support.helpers import demo, wait_for
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.types import utcnow
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.scheduling import run_processes, scheduler
from tradetrail.services.scheduling.embedded import EmbeddedScheduler, EmbeddedService
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings

BIN = Path(sys.executable).with_name("tradetrail")


def _due(app, user_id: int, names: list[str], created: datetime, cron: str = "* * * * *") -> None:
    with app.Session() as s:
        for name in names:
            config = StrategyConfig.model_validate({
                "symbol": "SPX", "schedule": {"cron": cron, "timezone": "UTC"},
                "market_data": {"source": "sample", "replay_start": "2010-01-04"}})
            strategy = save_strategy(s, app, user_id, name, config)
            s.execute(update(Strategy).where(Strategy.id == strategy.id).values(created_at=created))
        s.commit()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:  # a zombie has ended; only its parent has not read its status
            return fh.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:  # reaped meanwhile
        return True


def test_a_dispatcher_claims_at_most_its_limit_most_overdue_first_and_leaves_the_rest_due(app):
    user_id, _ = demo(app)
    _due(app, user_id, ["late"], datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC))
    _due(app, user_id, ["later-a", "later-b"], datetime(2026, 11, 23, 12, 4, 30, tzinfo=UTC))
    now = datetime(2026, 11, 23, 12, 5, 10, tzinfo=UTC)
    owned = []
    report = scheduler.dispatch(app, now, lambda st, slot_id: owned.append(st.name), limit=1)
    assert owned == ["late"]  # due since 12:01, the others since 12:05
    assert report == {"claimed": 1, "skipped": 4, "errors": []}  # its missed 12:01-12:04 are skipped
    with app.Session() as s:
        ids = dict(s.execute(select(Strategy.name, Strategy.id)).all())
        assert s.scalar(select(ScheduleSlot.id).where(ScheduleSlot.strategy_id.in_(
            [ids["later-a"], ids["later-b"]]))) is None  # not claimed, so not lost: still due
    assert scheduler.dispatch(app, now, lambda st, slot_id: owned.append(st.name), limit=0)["claimed"] == 0
    assert scheduler.dispatch(app, now, lambda st, slot_id: owned.append(st.name), stopping=lambda: True) == \
        {"claimed": 0, "skipped": 0, "errors": []}
    scheduler.dispatch(app, now, lambda st, slot_id: owned.append(st.name))
    assert sorted(owned) == ["late", "later-a", "later-b"]
    with app.Session() as s:
        slots = s.execute(select(ScheduleSlot.strategy_id, ScheduleSlot.scheduled_for)
                          .where(ScheduleSlot.status == "claimed")).all()
    assert sorted(at.minute for _, at in slots) == [5, 5, 5]


def test_a_slot_left_unclaimed_past_the_grace_window_is_skipped_not_run_late(app):
    user_id, _ = demo(app)
    _due(app, user_id, ["busy"], datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC), cron="1 12 * * *")
    ran = []
    scheduler.dispatch(app, datetime(2026, 11, 23, 12, 1, 5, tzinfo=UTC), lambda *a: ran.append(a), limit=0)
    report = scheduler.dispatch(app, datetime(2026, 11, 23, 12, 12, 0, tzinfo=UTC), lambda *a: ran.append(a))
    assert ran == [] and report["skipped"] == 1
    with app.Session() as s:
        slot = s.scalar(select(ScheduleSlot))
    assert slot.status == "skipped" and "more than the grace window" in slot.reason


def _this_minute() -> tuple[str, datetime]:
    """A daily cron whose only fire time in reach is the current minute, and a creation time before it."""
    minute = utcnow().replace(second=0, microsecond=0)
    return f"{minute.minute} {minute.hour} * * *", minute - timedelta(seconds=30)


def test_two_processes_share_the_due_slots_and_run_each_exactly_once(settings):
    app = build_app(Settings(home=settings.home, database_url=settings.database_url, embedded_processes=2,
                             embedded_workers=2, scheduler_interval_s=0.2), migrate=False)
    user_id, _ = demo(app)
    service = EmbeddedService(app)
    service.start()
    helpers = service.helpers.processes()
    try:
        assert service.helpers.wait_ready(120), "the helper process did not start"
        assert service.status()["processes"] == 2 and service.status()["ok"]
        names = [f"s{i:02d}" for i in range(24)]
        cron, created = _this_minute()
        _due(app, user_id, names, created, cron=cron)

        def settled():
            with app.Session() as s:
                slots = s.execute(select(ScheduleSlot.status, ScheduleSlot.claimed_by)).all()
            return slots if len(slots) == len(names) and all(st in ("done", "failed") for st, _ in slots) else None
        slots = wait_for(settled, 240, "every slot to settle")
    finally:
        service.stop()
    assert [p.exitcode for p in helpers] == [0]  # it stopped when told, cleanly
    assert Counter(st for st, _ in slots) == {"done": len(names)}
    claimers = Counter(by for _, by in slots)
    assert len(claimers) == 2, claimers  # both processes ran some
    with app.Session() as s:
        per_strategy = Counter(s.scalars(select(Execution.strategy_id).where(Execution.trigger == "schedule")))
        statuses = Counter(s.scalars(select(Execution.status).where(Execution.trigger == "schedule")))
    assert len(per_strategy) == len(names) and set(per_strategy.values()) == {1}  # exactly once each
    assert statuses == {"succeeded": len(names)}


def test_a_helper_that_dies_is_logged_and_started_again(settings, monkeypatch, caplog):
    monkeypatch.setattr(run_processes, "RESTART_AFTER_S", 0.0)
    helpers = run_processes.RunProcesses(Settings(home=settings.home, database_url=settings.database_url), 1)
    helpers.start()
    try:
        assert helpers.wait_ready(120)
        [first] = helpers.pids()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: helpers.ready() == 0, 30, "the helper to be seen dead")
        helpers.check()
        [second] = helpers.pids()
        assert second != first and helpers.restarts == 1
        assert "ended unexpectedly (exit code -9)" in caplog.text
        assert helpers.wait_ready(120) and helpers.ready() == 1
    finally:
        helpers.stop()
    assert all(p.exitcode == 0 for p in helpers.processes())


def test_helpers_leave_ibkr_strategies_to_the_serving_process(app):
    user_id, _ = demo(app)
    cron, created = _this_minute()
    _due(app, user_id, ["sim"], created, cron=cron)
    with app.Session() as s:
        config = StrategyConfig.model_validate({"symbol": "SPX", "broker": "ibkr_web",
                                                "schedule": {"cron": cron, "timezone": "UTC"}})
        ibkr = save_strategy(s, app, user_id, "ibkr", config)
        s.execute(update(Strategy).where(Strategy.id == ibkr.id).values(created_at=created))
        s.commit()
    here = []
    scheduler.dispatch(app, utcnow(), lambda st, slot_id: here.append(st.name),
                       accept=lambda c: not run_processes.uses_ibkr(app.settings, c))
    assert here == ["sim"]
    scheduler.dispatch(app, utcnow(), lambda st, slot_id: here.append(st.name))  # the serving process
    assert here == ["sim", "ibkr"]


def _claimed(app, user_id: int, names: list[str]) -> list[tuple[Strategy, int]]:
    cron, created = _this_minute()
    _due(app, user_id, names, created, cron=cron)
    owned = []
    scheduler.dispatch(app, utcnow(), lambda st, slot_id: owned.append((st, slot_id)))
    return sorted(owned, key=lambda o: o[0].name)


def _slot(app, slot_id: int) -> ScheduleSlot:
    with app.Session() as s:
        return s.get(ScheduleSlot, slot_id)


def test_a_claimed_slot_that_waited_past_the_grace_window_or_behind_a_later_one_is_not_started(app):
    user_id, _ = demo(app)
    [(strategy, slot_id)] = _claimed(app, user_id, ["waited"])
    at = _slot(app, slot_id).scheduled_for
    assert scheduler.run_slot(app, strategy, slot_id, now=at + timedelta(minutes=11)) == "skipped"
    slot = _slot(app, slot_id)
    assert slot.status == "skipped" and "more than the grace window" in slot.reason and slot.execution_id is None

    [(other, old_slot)] = _claimed(app, user_id, ["overtaken"])
    old_at = _slot(app, old_slot).scheduled_for
    with app.engine.begin() as conn:  # another dispatcher claimed its next slot meanwhile
        conn.execute(ScheduleSlot.__table__.insert().values(strategy_id=other.id, status="claimed", claimed_by="x",
                                                           scheduled_for=old_at + timedelta(minutes=1)))
    assert scheduler.run_slot(app, other, old_slot, now=old_at + timedelta(seconds=70)) == "skipped"
    assert "a later slot of this strategy" in _slot(app, old_slot).reason
    with app.Session() as s:
        assert s.scalar(select(Execution.id).where(Execution.strategy_id.in_([strategy.id, other.id]))) is None


def test_the_sweep_settles_a_slot_claimed_by_a_process_that_died_before_starting_it(app):
    from tradetrail.services.scheduling.sweep import sweep_interrupted

    user_id, _ = demo(app)
    [(_, fresh)] = _claimed(app, user_id, ["fresh"])
    [(_, orphan)] = _claimed(app, user_id, ["orphan"])
    with app.engine.begin() as conn:  # claimed eleven minutes ago by a process that is gone
        conn.execute(update(ScheduleSlot).where(ScheduleSlot.id == orphan).values(
            scheduled_for=utcnow() - timedelta(minutes=11)))
    sweep_interrupted(app)
    assert _slot(app, fresh).status == "claimed"  # within the grace window: a worker may still start it
    settled = _slot(app, orphan)
    assert settled.status == "skipped" and "claimed but not started within the grace window" in settled.reason


def test_stopping_finishes_what_runs_and_releases_what_has_not_started(app, settings):
    user_id, _ = demo(app)
    local = replace(app, settings=Settings(home=settings.home, database_url=settings.database_url,
                                           embedded_workers=1, embedded_cpu_slots=1))
    embedded = EmbeddedScheduler(local, sweep=False)
    [(first, first_slot), (second, second_slot)] = _claimed(app, user_id, ["a-first", "b-second"])
    embedded.gate.__enter__()  # hold the only CPU slot: the first run waits at the gate, the second is queued
    embedded._submit(first, first_slot)
    embedded._submit(second, second_slot)
    assert embedded.pending == 2
    stopping = threading.Thread(target=embedded.stop)
    stopping.start()
    try:
        wait_for(lambda: embedded.pool._shutdown, 10, "the pool to shut down")
    finally:
        embedded.gate.__exit__(None, None, None)
    stopping.join(120)
    assert not stopping.is_alive()
    assert _slot(app, first_slot).status == "done"  # it had started: it finished
    released = _slot(app, second_slot)
    assert released.status == "skipped" and "stopped before this slot started" in released.reason
    [(third, third_slot)] = _claimed(app, user_id, ["c-third"])
    embedded._submit(third, third_slot)  # a pass still finishing after the pool closed
    assert _slot(app, third_slot).status == "skipped" and embedded.pending == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except OSError:
        return None


@contextmanager
def _serving(cli_env, processes: int):
    """`tradetrail serve` with ``processes`` - 1 helper processes, once /health reports them all: yields the
    server and its scheduler report; ends serve's process group if the test left it running."""
    env = {**cli_env, "TRADETRAIL_EMBEDDED_PROCESSES": str(processes), "TRADETRAIL_SCHEDULER_INTERVAL_S": "0.5"}
    assert subprocess.run([str(BIN), "init"], env=env, capture_output=True, timeout=120).returncode == 0
    port = _free_port()
    server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def ready():
            assert server.poll() is None, "serve exited"
            sched = ((_health(port) or {}).get("checks", {})).get("scheduler", {})
            return sched if sched.get("processes") == processes else None
        yield server, wait_for(ready, 120, "serve and its helper processes")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=20)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_serve_runs_its_helper_and_no_helper_outlives_serve(cli_env, how):
    with _serving(cli_env, 2) as (server, sched):
        assert sched["ok"] and sched["processes_configured"] == 2
        [helper] = sched["helper_pids"]
        assert not _gone(helper)
        os.kill(server.pid, getattr(signal, how))  # only serve: the helper is not signalled by us
        server.wait(timeout=60)
        wait_for(lambda: _gone(helper), 30, f"the helper to end after serve got {how}")


def test_the_dispatcher_wakes_at_each_minute_boundary_so_a_slot_is_claimed_at_its_time():
    from tradetrail.services.scheduling.embedded import MINUTE_SLACK_S, next_pass_in

    minute = 29_000_000 * 60.0  # a whole minute, as epoch seconds
    assert next_pass_in(minute + 10.0, 5.0) == 5.0  # mid-minute: the usual interval
    assert next_pass_in(minute + 57.0, 5.0) == pytest.approx(3.0 + MINUTE_SLACK_S)  # the minute turns first
    assert next_pass_in(minute + 59.99, 0.5) == pytest.approx(0.01 + MINUTE_SLACK_S)
    assert next_pass_in(minute + 30.0, 60.0) == pytest.approx(30.0 + MINUTE_SLACK_S)


@pytest.mark.skipif(os.environ.get("TRADETRAIL_TEST_DB", "sqlite") != "postgresql", reason="PostgreSQL sessions")
def test_serve_and_each_helper_process_open_their_own_database_connections(cli_env):
    """The helpers are spawned (a fresh interpreter each), so none can inherit the serving process's
    connections the way a forked pool process did (#11 item 12): checked as `ss -tnp` would show it."""
    from tests.support.celery_procs import group_pids, sockets_to

    with _serving(cli_env, 3) as (server, sched):
        helpers = sched["helper_pids"]

        def connected():  # every process has opened its connection (each dispatcher polls the database)
            held = sockets_to(5432, group_pids(server.pid))
            owners = {pid for pids in held.values() for pid in pids}
            return held if {server.pid, *helpers} <= owners else None
        held = wait_for(connected, 60, "each process to connect")
        assert all(len(pids) == 1 for pids in held.values()), held  # no connection shared by two processes
