"""A scheduled run that does not happen is news for a trader away from the screen: a slot recorded skipped or
failed without a run of its own is a ``slot_missed`` event, once per strategy and exchange day; a run the sweep
finds dead (its process ended) is an ``execution_failed`` event like any failed run, and its slot adds nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from tests.support.helpers import demo
from tradetrail.db.models import Execution, ScheduleSlot, Strategy
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.runs.executions import create_execution
from tradetrail.services.scheduling import scheduler
from tradetrail.services.scheduling.sweep import NEVER_STARTED, REASON, sweep_interrupted
from tradetrail.services.strategies.configs import save_strategy


def _strategy(app, user_id: int, name: str, cron: str = "* * * * *", age_s: int = 600) -> Strategy:
    config = StrategyConfig.model_validate({"symbol": "SPX", "schedule": {"cron": cron},
                                            "market_data": {"source": "sample", "replay_start": "2010-01-04"}})
    with app.Session() as s:
        strategy = save_strategy(s, app, user_id, name, config)
        s.execute(update(Strategy).where(Strategy.id == strategy.id).values(
            created_at=utcnow() - timedelta(seconds=age_s)))
        s.commit()
        return strategy


def _events(app) -> list[tuple[str, str]]:
    with app.Session() as s:
        return [tuple(r) for r in s.execute(select(NotifyEvent.kind, NotifyEvent.text).order_by(NotifyEvent.id))]


def _slots(app, strategy_id: int) -> list[ScheduleSlot]:
    with app.Session() as s:
        return list(s.scalars(select(ScheduleSlot).where(ScheduleSlot.strategy_id == strategy_id)
                              .order_by(ScheduleSlot.scheduled_for)))


def test_missed_slots_are_one_event_a_strategy_and_day_and_the_run_that_goes_ahead_none(app):
    user_id, _ = demo(app)
    strategy = _strategy(app, user_id, "minutely")  # ten minutes old, due every minute: nine slots were missed
    ran = []
    scheduler.dispatch(app, utcnow(), lambda s, slot_id: ran.append(slot_id))
    slots = _slots(app, strategy.id)
    assert len(ran) == 1 and [s.status for s in slots].count("skipped") >= 8
    assert _events(app) == [("slot_missed", "Scheduled run of strategy minutely not made: missed (the service was "
                                            "down or too busy to start it); only the latest missed slot runs")]
    scheduler.release_slot(app, ran[0], "the dispatcher is stopping")  # another one the same day: no new event
    assert [kind for kind, _ in _events(app)] == ["slot_missed"]

    other = _strategy(app, user_id, "other")  # another strategy's misses are heard of on their own
    scheduler.dispatch(app, utcnow(), lambda s, slot_id: None)
    assert [text.split(" not made")[0] for _, text in _events(app)] == [
        "Scheduled run of strategy minutely", "Scheduled run of strategy other"]
    assert {s.status for s in _slots(app, other.id)} >= {"skipped"}


def test_a_slot_claimed_and_never_started_is_settled_by_the_sweep_with_an_event(app):
    user_id, _ = demo(app)
    strategy = _strategy(app, user_id, "stalled", age_s=0)
    with app.engine.begin() as conn:  # claimed by a dispatcher that ended before starting it
        conn.execute(ScheduleSlot.__table__.insert().values(
            strategy_id=strategy.id, scheduled_for=utcnow() - timedelta(minutes=30), status="claimed",
            claimed_by="gone", claimed_at=utcnow() - timedelta(minutes=30)))
    sweep_interrupted(app)
    [slot] = _slots(app, strategy.id)
    assert slot.status == "skipped" and slot.reason == NEVER_STARTED
    assert _events(app) == [("slot_missed", f"Scheduled run of strategy stalled not made: {NEVER_STARTED}")]


def test_a_run_found_dead_by_the_sweep_is_a_failed_execution_event_and_its_slot_adds_none(app):
    user_id, _ = demo(app)
    strategy = _strategy(app, user_id, "dead", age_s=0)
    execution_id = create_execution(app, strategy, trigger="schedule").execution_id
    with app.engine.begin() as conn:  # its process ended mid-run: the slot and the execution stay running
        conn.execute(ScheduleSlot.__table__.insert().values(
            strategy_id=strategy.id, scheduled_for=utcnow() - timedelta(minutes=5), status="running",
            claimed_by="gone", claimed_at=utcnow() - timedelta(minutes=5), execution_id=execution_id))
        conn.execute(ScheduleSlot.__table__.insert().values(  # and one that died before its execution existed
            strategy_id=strategy.id, scheduled_for=utcnow() - timedelta(minutes=4), status="running",
            claimed_by="gone", claimed_at=utcnow() - timedelta(minutes=4)))
    assert sweep_interrupted(app) == [execution_id]
    with app.Session() as s:
        assert s.get(Execution, execution_id).status == "failed"
    assert _events(app) == [
        ("execution_failed", f"Execution of strategy dead failed at step ?: {REASON}"),
        ("slot_missed", f"Scheduled run of strategy dead not made: {REASON}")]
