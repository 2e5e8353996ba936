"""A risk denial reaches the outbox once per strategy, signal, rules and exchange day: a strategy running every
few minutes into the same cap is heard of once that day, a new day or another rule is heard of again, and the
gate pausing a strategy is a trading-state event."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.domain.risk import Denial, RiskDecision
from tradetrail.workflow.steps.trading import _notify_denial


def _ctx(app, user_id: int, strategy_id: int, as_of: datetime, action: str = "BUY", trigger: str = "schedule"):
    return SimpleNamespace(app=app, user_id=user_id, strategy_id=strategy_id, strategy_name="demo", trigger=trigger,
                           execution_id=f"run-{as_of.isoformat()}", as_of=as_of,
                           signal=SimpleNamespace(action=action), contract=SimpleNamespace(symbol="SPX"))


def _denied(*rules: str) -> RiskDecision:
    return RiskDecision("enter", False, 0, "denied", tuple(Denial(rule, f"{rule} numbers") for rule in rules))


def test_a_denial_repeated_run_after_run_is_one_event_a_day(app):
    user_id, strategy = demo(app)
    morning = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 10:00 in New York
    for minutes in (0, 5, 10):  # the same cap, three runs the same day
        _notify_denial(_ctx(app, user_id, strategy.id, morning.replace(minute=minutes)), _denied("max_position"))
    _notify_denial(_ctx(app, user_id, strategy.id, morning), _denied("max_position", "max_exposure"))  # more
    _notify_denial(_ctx(app, user_id, strategy.id, morning, action="SELL"), _denied("max_position"))
    _notify_denial(_ctx(app, user_id, strategy.id, morning.replace(day=30)), _denied("max_position"))  # next day
    _notify_denial(_ctx(app, user_id, strategy.id, morning), _denied("consecutive_losses"))
    with app.Session() as s:
        events = s.execute(select(NotifyEvent.kind, NotifyEvent.text).order_by(NotifyEvent.id)).all()
    assert [kind for kind, _ in events] == ["risk_denied"] * 4 + ["trading_state"]
    assert events[0].text == "Risk gate denied BUY SPX (strategy demo): max_position: max_position numbers"
    assert events[-1].text.startswith("Strategy demo paused by the risk gate: consecutive_losses")


def test_a_denial_in_a_session_rerun_or_a_replay_raises_nothing(app):
    user_id, strategy = demo(app)
    at = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    for trigger in ("backtest-session", "replay", "backtest"):
        _notify_denial(_ctx(app, user_id, strategy.id, at, trigger=trigger), _denied("max_position"))
        _notify_denial(_ctx(app, user_id, strategy.id, at, trigger=trigger), _denied("consecutive_losses"))
    with app.Session() as s:
        assert s.scalars(select(NotifyEvent)).all() == []
