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
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.helpers import demo
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services import scheduler
from tradetrail.services.app import build_app
from tradetrail.services.embedded import EmbeddedService
from tradetrail.services.strategies import save_strategy
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


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has ended; only its parent has not read its status
        return fh.read().split(") ", 1)[1].startswith("Z")


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


def test_two_processes_share_the_due_slots_and_run_each_exactly_once(settings):
    app = build_app(Settings(home=settings.home, database_url=settings.database_url, embedded_processes=2,
                             embedded_workers=2, scheduler_interval_s=0.2), migrate=False)
    user_id, _ = demo(app)
    service = EmbeddedService(app)
    service.start()
    try:
        assert service.helpers.wait_ready(120), "the helper process did not start"
        assert service.status()["processes"] == 2 and service.status()["ok"]
        names = [f"s{i:02d}" for i in range(24)]
        _due(app, user_id, names, utcnow() - timedelta(seconds=61))

        def settled():
            with app.Session() as s:
                slots = s.execute(select(ScheduleSlot.status, ScheduleSlot.claimed_by)).all()
            return slots if len(slots) == len(names) and all(st in ("done", "failed") for st, _ in slots) else None
        slots = _wait(settled, 240, "every slot to settle")
    finally:
        service.stop()
    assert not any(p.is_alive() for p in service.helpers.procs)
    assert Counter(st for st, _ in slots) == {"done": len(names)}
    claimers = Counter(by for _, by in slots)
    assert len(claimers) == 2, claimers  # both processes ran some
    with app.Session() as s:
        per_strategy = Counter(s.scalars(select(Execution.strategy_id).where(Execution.trigger == "schedule")))
        statuses = Counter(s.scalars(select(Execution.status).where(Execution.trigger == "schedule")))
    assert len(per_strategy) == len(names) and set(per_strategy.values()) == {1}  # exactly once each
    assert statuses == {"succeeded": len(names)}


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


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_serve_runs_its_helper_and_no_helper_outlives_serve(cli_env, how):
    env = {**cli_env, "TRADETRAIL_EMBEDDED_PROCESSES": "2", "TRADETRAIL_SCHEDULER_INTERVAL_S": "0.5"}
    assert subprocess.run([str(BIN), "init"], env=env, capture_output=True, timeout=120).returncode == 0
    port = _free_port()
    server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def ready():
            report = _health(port)
            assert server.poll() is None, "serve exited"
            sched = (report or {}).get("checks", {}).get("scheduler", {})
            return sched if sched.get("processes") == 2 else None
        sched = _wait(ready, 120, "serve and its helper process")
        assert sched["ok"] and sched["processes_configured"] == 2
        [helper] = sched["helper_pids"]
        assert not _gone(helper)
        os.kill(server.pid, getattr(signal, how))  # only serve: the helper is not signalled by us
        server.wait(timeout=60)
        _wait(lambda: _gone(helper), 30, f"the helper to end after serve got {how}")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
