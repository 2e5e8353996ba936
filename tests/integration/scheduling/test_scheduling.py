"""Schedules in exchange time, exactly-once slots, the catch-up policy, and never two runs at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from tests.support.helpers import demo
from tradetrail.catalogue.calendars import calendar
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.domain.schedule import next_runs
from tradetrail.schemas.strategy import ScheduleConfig, StrategyConfig
from tradetrail.services.runs.executions import AlreadyRunning, create_execution, get_execution, run_strategy
from tradetrail.services.scheduling import scheduler
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.trading.locks import strategy_lock

NY = "America/New_York"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_cron_is_evaluated_in_new_york_time_across_the_dst_change():
    # 2026-03-08: clocks go forward; 09:35 EST = 14:35 UTC before, 09:35 EDT = 13:35 UTC after.
    times = next_runs("35 9 * * mon-fri", NY, utc(2026, 3, 5), 4)
    assert times == [utc(2026, 3, 5, 14, 35), utc(2026, 3, 6, 14, 35), utc(2026, 3, 9, 13, 35),
                     utc(2026, 3, 10, 13, 35)]
    # 2026-11-01: clocks go back.
    assert next_runs("35 9 * * mon-fri", NY, utc(2026, 10, 30), 2) == [utc(2026, 10, 30, 13, 35),
                                                                      utc(2026, 11, 2, 14, 35)]


def test_sessions_only_skips_holidays_and_minutes_after_an_early_close():
    cal = calendar()
    # Thanksgiving 2026-11-26 is a holiday; 2026-11-27 closes at 13:00 New York.
    assert next_runs("35 9 * * mon-fri", NY, utc(2026, 11, 25, 15), 2, calendar=cal) == [
        utc(2026, 11, 27, 14, 35), utc(2026, 11, 30, 14, 35)]
    assert next_runs("50 15 * * mon-fri", NY, utc(2026, 11, 25, 21), 1, calendar=cal) == [utc(2026, 11, 30, 20, 50)]
    assert next_runs("35 9 * * *", NY, utc(2026, 11, 27, 15), 1) == [utc(2026, 11, 28, 14, 35)]  # weekend


@pytest.mark.parametrize("cron, message", [
    ("61 * * * *", "invalid cron"), ("* * * *", "5 fields"), ("* * * * * *", "5 fields"),
    ("0 9 31 2 *", "never fires"), ("", None)])
def test_cron_input_is_validated_with_the_reason(cron, message):
    if message is None:
        assert ScheduleConfig(cron=cron).cron is None
        return
    with pytest.raises(ValidationError, match=message):
        ScheduleConfig(cron=cron)


def test_unknown_time_zone_is_rejected():
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        ScheduleConfig(timezone="Mars/Olympus")


def _every_minute(app, user_id: int, name: str, created: datetime, cron: str = "* * * * *") -> Strategy:
    config = StrategyConfig.model_validate({"symbol": "SPX", "schedule": {"cron": cron, "timezone": NY},
                                            "market_data": {"source": "sample", "replay_start": "2010-01-04"}})
    with app.Session() as s:
        strategy = save_strategy(s, app, user_id, name, config)
        s.execute(update(Strategy).where(Strategy.id == strategy.id).values(created_at=created))
        s.commit()
        return strategy


def test_catch_up_runs_only_the_latest_missed_slot_within_the_grace_window(app):
    user_id, _ = demo(app)
    strategy = _every_minute(app, user_id, "minutely", utc(2026, 11, 23, 12, 0))
    claimed = []
    now = utc(2026, 11, 23, 12, 10, 30)
    report = scheduler.dispatch(app, now, lambda st, slot: claimed.append((st.name, slot)))
    with app.Session() as s:
        slots = s.scalars(select(ScheduleSlot).where(ScheduleSlot.strategy_id == strategy.id)
                          .order_by(ScheduleSlot.scheduled_for)).all()
    assert [sl.scheduled_for for sl in slots] == [utc(2026, 11, 23, 12, m) for m in range(1, 11)]
    assert [sl.status for sl in slots] == ["skipped"] * 9 + ["claimed"]
    assert "only the latest missed slot runs" in slots[0].reason
    assert claimed == [("minutely", slots[-1].id)] and report["claimed"] == 1
    # Nothing is due again until the next minute; never before its time.
    assert scheduler.dispatch(app, utc(2026, 11, 23, 12, 10, 59), lambda *a: claimed.append(a))["claimed"] == 0



def test_a_slot_later_than_the_grace_window_is_skipped_with_the_reason(app):
    user_id, _ = demo(app)
    strategy = _every_minute(app, user_id, "hourly", utc(2026, 11, 23, 11, 30), cron="0 * * * *")
    report = scheduler.dispatch(app, utc(2026, 11, 23, 13, 30), lambda *a: pytest.fail("must not run"))
    assert report == {"claimed": 0, "skipped": 2, "errors": []}
    with app.Session() as s:
        slots = s.scalars(select(ScheduleSlot).where(ScheduleSlot.strategy_id == strategy.id)
                          .order_by(ScheduleSlot.scheduled_for)).all()
    assert [(sl.scheduled_for, sl.status) for sl in slots] == [(utc(2026, 11, 23, 12), "skipped"),
                                                               (utc(2026, 11, 23, 13), "skipped")]
    assert "more than the grace window of 0:10:00" in slots[-1].reason


def test_racing_dispatchers_claim_every_slot_exactly_once(app):
    user_id, _ = demo(app)
    start = utc(2026, 11, 23, 12, 0)
    strategies = [_every_minute(app, user_id, f"s{i}", start) for i in range(50)]
    claims: list[tuple[int, int]] = []
    lock = threading.Lock()

    def record(strategy, slot_id):
        with lock:
            claims.append((strategy.id, slot_id))

    def dispatcher():
        for minute in range(1, 11):  # ten passes, one per minute: 50 strategies x 10 minutes = 500 slots
            scheduler.dispatch(app, start + timedelta(minutes=minute, seconds=1), record)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with app.Session() as s:
        rows = s.scalar(select(func.count(ScheduleSlot.id)).where(
            ScheduleSlot.strategy_id.in_([st.id for st in strategies])))
    assert rows == 500
    assert len(claims) == len(set(claims)) == 500  # every slot handed to exactly one runner


def test_a_claimed_slot_runs_the_strategy_and_records_the_execution(app):
    user_id, _ = demo(app)
    _every_minute(app, user_id, "minutely", utc(2026, 11, 23, 12, 0))
    owned = []
    scheduler.dispatch(app, utc(2026, 11, 23, 12, 1, 5), lambda st, slot: owned.append((st, slot)))
    [(st, slot_id)] = owned
    assert scheduler.run_slot(app, st, slot_id, now=utc(2026, 11, 23, 12, 1, 6)) == "succeeded"
    with app.Session() as s:
        slot = s.get(ScheduleSlot, slot_id)
    assert slot.status == "done" and get_execution(app, slot.execution_id)["trigger"] == "schedule"


def test_a_slot_is_skipped_while_the_previous_run_still_holds_the_strategy(app):
    user_id, _ = demo(app)
    strategy = _every_minute(app, user_id, "minutely", utc(2026, 11, 23, 12, 0))
    owned = []
    scheduler.dispatch(app, utc(2026, 11, 23, 12, 1, 5), lambda st, slot: owned.append((st, slot)))
    held, release = threading.Event(), threading.Event()

    def hold():
        with strategy_lock(app, strategy.id) as got:
            assert got
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        assert scheduler.run_slot(app, *owned[0], now=utc(2026, 11, 23, 12, 1, 6)) == "skipped"
        with pytest.raises(AlreadyRunning):
            run_strategy(app, user_id, "minutely")
    finally:
        release.set()
        holder.join()
    with app.Session() as s:
        slot = s.get(ScheduleSlot, owned[0][1])
        assert slot.status == "skipped" and "already running" in slot.reason
        assert s.scalar(select(func.count(Execution.id)).where(Execution.strategy_id == strategy.id)) == 0


def test_an_execution_left_running_by_a_dead_process_is_marked_interrupted(app):
    user_id, strategy = demo(app)
    orphan = create_execution(app, strategy)  # as if the process died right after creating it
    summary = run_strategy(app, user_id, "demo")
    assert summary.status == "succeeded"
    with app.Session() as s:
        row = s.get(Execution, orphan.execution_id)
    assert row.status == "failed" and row.error.startswith("interrupted")


def test_the_cpu_gate_lets_few_runs_compute_at_once_and_any_number_wait_on_the_model():
    from tradetrail.services.scheduling.embedded import CpuGate

    gate = CpuGate(2)
    lock, inside, peak = threading.Lock(), {"cpu": 0, "model": 0}, {"cpu": 0, "model": 0}

    def step(kind, seconds):
        def run(ctx):
            with lock:
                inside[kind] += 1
                peak[kind] = max(peak[kind], inside[kind])
            time.sleep(seconds)
            with lock:
                inside[kind] -= 1
        return run

    steps = gate.steps([("fetch_market_data", step("cpu", 0.02)), ("analyze", step("model", 0.3)),
                        ("risk_check", step("cpu", 0.02))])

    class Ctx:
        step_meta: dict

    def execution():
        with gate:
            for _, run in steps:
                ctx = Ctx()
                ctx.step_meta = {}
                run(ctx)

    threads = [threading.Thread(target=execution) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak["cpu"] == 2  # never more than the gate's slots in the CPU steps
    assert peak["model"] >= 6  # while the model answers, the slot is free for others


def test_a_changed_schedule_takes_effect_at_the_next_pass(app):
    user_id, _ = demo(app)
    strategy = _every_minute(app, user_id, "hourly", utc(2026, 11, 23, 11, 30), cron="0 * * * *")
    ran = []
    scheduler.dispatch(app, utc(2026, 11, 23, 12, 0, 5), lambda st, slot: ran.append(slot))
    assert len(ran) == 1
    assert scheduler.dispatch(app, utc(2026, 11, 23, 12, 30, 5), lambda st, slot: ran.append(slot))["claimed"] == 0
    _every_minute(app, user_id, "hourly", utc(2026, 11, 23, 11, 30), cron="30 * * * *")  # a new version
    scheduler.dispatch(app, utc(2026, 11, 23, 12, 30, 6), lambda st, slot: ran.append(slot))
    with app.Session() as s:
        times = s.scalars(select(ScheduleSlot.scheduled_for).where(ScheduleSlot.strategy_id == strategy.id)
                          .order_by(ScheduleSlot.scheduled_for)).all()
    assert times == [utc(2026, 11, 23, 12, 0), utc(2026, 11, 23, 12, 30)] and len(ran) == 2


def test_many_strategy_locks_at_once_need_no_connection_each(app):
    """A hundred runs in the embedded pool hold a hundred strategy locks; on PostgreSQL they share one
    session (a pooled connection each exhausted the pool and the server's connection limit)."""
    holding, release = threading.Barrier(41), threading.Event()
    got = []

    def hold(strategy_id):
        with strategy_lock(app, strategy_id) as held:
            got.append(held)
            holding.wait(30)
            release.wait(30)

    threads = [threading.Thread(target=hold, args=(1000 + i,)) for i in range(40)]
    for t in threads:
        t.start()
    holding.wait(30)
    try:
        assert got == [True] * 40
        if app.engine.dialect.name == "postgresql":
            assert app.engine.pool.checkedout() <= 1
        with strategy_lock(app, 1000) as again:  # still exclusive
            assert not again
    finally:
        release.set()
        for t in threads:
            t.join()
    with strategy_lock(app, 1000) as free:
        assert free
