"""Backtests, backtest session re-runs and replays are not trading: none of them writes an outbox event (no
signal, order, closed position or failure reaches a channel as if it were live), while a live run still does."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select

from tests.support.helpers import demo
from tradetrail.db.backtest_models import SESSION_ACCOUNT_PREFIX
from tradetrail.db.models import Execution, StrategyVersion
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.db.trading_models import Order, Trade
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.backtests.running import BacktestRequest, run_backtest
from tradetrail.services.backtests.sessions import TRIGGER, rerun_session, trade_sessions
from tradetrail.services.runs.executions import get_execution, replay_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.workflow.recorder import LineageRecorder


def _cross(start: str) -> StrategyConfig:
    """The bundled SMA-crossover plug-in on the sample S&P 500: trades within a few weeks, filled by the simulator."""
    return StrategyConfig.model_validate({
        "symbol": "SPX", "charts": {"enabled": False},
        "market_data": {"source": "sample", "replay_start": start},
        "analyst": {"kind": "plugin", "plugin": "tradetrail.analyst.examples.sma_cross:SmaCross",
                    "params": {"fast": 3, "slow": 10}},
        "signal_policy": {"require_confirmation": False},
        "risk": {"sizing": "fixed", "quantity": 5}, "orders": {"protective": "none"}})


def _events(app) -> list[tuple[str, str]]:
    with app.Session() as s:
        return s.execute(select(NotifyEvent.kind, NotifyEvent.text).order_by(NotifyEvent.id)).all()


def test_backtest_session_reruns_and_replays_write_no_event_and_a_live_run_does(app):
    user_id, _ = demo(app)
    with app.Session() as s:
        save_strategy(s, app, user_id, "cross", _cross("2004-04-23"))
    backtest_id, report = run_backtest(app, user_id, BacktestRequest("cross", date(2004, 3, 1), date(2004, 6, 30)))
    assert report["trades"], "the period was chosen to trade"
    days = sorted({d for pair in trade_sessions(app, user_id, backtest_id, report["trades"]) for d in pair.values()
                   if d is not None})
    for day in days:  # entries and exits, through the live steps on the re-runs' own accounts
        run = get_execution(app, rerun_session(app, user_id, backtest_id, date.fromisoformat(day)))
        assert run["status"] == "succeeded" and run["trigger"] == TRIGGER, run["error"]
    with app.Session() as s:  # the re-runs did signal, send and close: what a live run is heard of for
        sent = s.scalars(select(Order.state).where(Order.account.startswith(SESSION_ACCOUNT_PREFIX))).all()
        closed = s.scalar(select(func.count()).select_from(Trade).where(
            Trade.account.startswith(SESSION_ACCOUNT_PREFIX), Trade.status == "closed"))
    assert len(sent) >= 2 and "FILLED" in sent and closed >= 1, (sent, closed)
    assert _events(app) == [], "nothing of the backtest or its session re-runs"

    # a live run: the BUY is sent in the first run and filled at the next session, booked by the next run
    live = [run_strategy(app, user_id, "cross").execution_id for _ in range(2)]
    kinds = [kind for kind, _ in _events(app)]
    assert {"signal", "order_sent", "order_filled"} <= set(kinds), kinds
    replay = replay_execution(app, user_id, live[0])
    assert replay["status"] == "succeeded", replay["error"]
    assert next(s for s in replay["steps"] if s["name"] == "decide_signal")["output"]["action"] == "BUY"
    assert [kind for kind, _ in _events(app)] == kinds, "the replay's BUY is not a signal to hear of"


def test_a_failed_run_is_heard_of_unless_a_backtest_a_session_rerun_or_a_replay(app):
    user_id, strategy = demo(app)
    recorder = LineageRecorder(app.engine, app.artifacts)
    with app.Session() as s:
        version_id = s.scalar(select(StrategyVersion.id).where(StrategyVersion.strategy_id == strategy.id))
    ids = {}
    for trigger in ("backtest", "backtest-session", "replay", "schedule"):
        ids[trigger] = str(uuid.uuid4())
        with app.Session() as s:
            s.add(Execution(id=ids[trigger], user_id=user_id, strategy_id=strategy.id,
                            strategy_version_id=version_id, status="running", trigger=trigger,
                            as_of=utcnow(), started_at=utcnow()))
            s.commit()
        recorder.finish_execution(ids[trigger], status="failed", finished_at=utcnow(), duration_ms=1.0,
                                  failed_step="analyze", error=f"{trigger} broke")
    assert _events(app) == [("execution_failed",
                             f"Execution of strategy {strategy.name} failed at step analyze: schedule broke")]
