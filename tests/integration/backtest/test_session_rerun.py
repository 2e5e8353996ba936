"""A backtest session re-run through the 13 live steps decides as the backtest did on that session: the same
signal, the same risk decision (action, approved, quantity) and the same orders, on an account of its own
seeded from the backtest's books, leaving the user's books as they were; asking again opens the same
execution, and another user's backtest is not found."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from sqlalchemy import select

from tests.support.api_client import api_user
from tests.support.backtrader_crossover import crossover_config
from tests.support.cli import tt
from tests.support.helpers import demo
from tests.support.web_http import sign_in, web_client
from tradetrail.backtest.runner import Costs, backtest, session_dates
from tradetrail.db.backtest_models import BacktestSession
from tradetrail.db.models import Execution, LineageStep
from tradetrail.db.sim_models import SimAccount, SimOrder, SimPosition
from tradetrail.db.trading_models import Order, PortfolioSnapshot, Position, Trade
from tradetrail.domain.market_hours import EXCHANGE_TZ
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.accounts.bootstrap import demo_config
from tradetrail.services.backtests.running import BacktestRequest, analyst_for, run_backtest
from tradetrail.services.backtests.sessions import TRIGGER, rerun_session, trade_sessions
from tradetrail.services.errors import InvalidBacktest, NotFound
from tradetrail.services.runs.executions import run_strategy
from tradetrail.services.strategies.configs import save_strategy

pytestmark = pytest.mark.once  # what a re-run does, not how it is stored: the same on either backend

START = date(2004, 3, 1)
SESSIONS = 60
LIVE_SESSIONS = 8  # the replay-clock strategy's own account has books before the re-runs


def _demo(start: date) -> StrategyConfig:
    cfg = demo_config().to_json()
    cfg["charts"]["enabled"] = False
    cfg["market_data"]["replay_start"] = start.isoformat()
    return StrategyConfig.model_validate(cfg)


def _books(app, uid: int) -> dict:
    """Everything the user's own accounts hold (the re-runs' accounts excepted), broker side and ours."""
    with app.Session() as s:
        mine = set(s.scalars(select(BacktestSession.account)))

        def rows(model, *cols):
            return sorted(tuple(getattr(r, c) for c in cols) for r in s.scalars(select(model))
                          if r.account not in mine)
        return {"orders": rows(Order, "account", "client_order_id", "state", "filled_quantity"),
                "positions": rows(Position, "account", "symbol", "quantity", "avg_cost"),
                "trades": rows(Trade, "account", "status", "pnl"),
                "snapshots": rows(PortfolioSnapshot, "account", "at", "equity"),
                "sim_accounts": rows(SimAccount, "account", "cash"),
                "sim_orders": rows(SimOrder, "account", "client_order_id", "status"),
                "sim_positions": rows(SimPosition, "account", "symbol", "quantity")}


def _backtested(app, config: StrategyConfig, start: date, end: date):
    """The backtest of ``config`` over start..end as the engine ran it (its decisions and orders by session)."""
    source = app.market_data(config.market_data.source)
    bars = source.daily_bars(source.resolve(config.symbol), lookback=100_000,
                             as_of=datetime.combine(end, time(23, 59), tzinfo=EXCHANGE_TZ))
    costs = Costs(app.settings.sim_initial_cash, app.settings.sim_commission, app.settings.sim_slippage_bps)
    return backtest(config, config.symbol, bars, start, end, analyst_for(app, config), execution_id="x", costs=costs)


def _expected(outcome) -> tuple[dict, dict]:
    run = outcome.run
    days = [d.date().isoformat() for d in session_dates(run.series.times)]
    decisions = {days[d.row]: d for d in run.decisions}
    orders: dict[str, list] = {}
    for o in run.account.orders:
        orders.setdefault(days[o.placed], []).append((o.leg, o.side, o.order_type, o.quantity, o.limit_price,
                                                     o.stop_price))
    return decisions, orders


def _rerun(app, execution_id: str) -> dict:
    with app.Session() as s:
        execution = s.get(Execution, execution_id)
        steps = {r.step_name: r for r in s.scalars(select(LineageStep).where(LineageStep.execution_id == execution_id))}
        orders = s.scalars(select(Order).where(Order.execution_id == execution_id).order_by(Order.id)).all()
        return {"status": execution.status, "trigger": execution.trigger, "steps": list(steps),
                "signal": steps["decide_signal"].output["action"], "risk": steps["risk_check"].output,
                "account": steps["load_strategy"].output["account"],
                "orders": [(o.leg, o.side, o.order_type, o.quantity, o.limit_price, o.stop_price) for o in orders]}


def _check_session(app, uid: int, backtest_id: str, day: str, decisions: dict, orders: dict) -> dict:
    got = _rerun(app, rerun_session(app, uid, backtest_id, date.fromisoformat(day)))
    assert got["status"] == "succeeded" and got["trigger"] == TRIGGER and len(got["steps"]) == 13, got
    assert got["account"].startswith("BTS")
    decision = decisions.get(day)
    if decision is None:  # not visited by the backtest: a HOLD, or an action the gate could only deny
        assert got["signal"] == "HOLD" or not got["risk"]["approved"], (day, got)
        assert got["orders"] == []
    else:
        assert (got["signal"], got["risk"]["approved"], got["risk"]["quantity"]) == (
            decision.signal, decision.approved, decision.quantity), (day, got, decision)
        assert got["orders"] == orders.get(day, []), day
    return got


def report_sessions(outcome) -> list[str]:
    """The tested sessions past the warm-up, as exchange dates."""
    run = outcome.run
    days = [d.date().isoformat() for d in session_dates(run.series.times)]
    return days[run.first + run.warmup:]


def _end(app, start: date, sessions: int) -> date:
    source = app.market_data("sample")
    days = [d.date() for d in session_dates(source.sessions(source.resolve("SPX"))) if d.date() >= start]
    return days[sessions - 1]


def _listings(app, uid: int) -> dict:
    """What the user's order, fill and trade listings and statistics show (the re-runs' accounts never)."""
    from tradetrail.services.trading.order_lists import list_fills, list_orders
    from tradetrail.trading import portfolio

    return {"orders": list_orders(app, uid, limit=1000), "fills": list_fills(app, uid),
            "trades": portfolio.trades(app, uid), "stats": portfolio.stats(app, uid),
            "curves": portfolio.equity_curves(app, uid)}


def _rerun_trades(app, uid: int, name: str, config: StrategyConfig, start: date, sessions: int) -> str:
    """Backtest ``name`` over ``sessions`` sessions from ``start``, re-run the entry and exit sessions of every
    trade and one quiet session, and compare each with the backtest's decision there; returns its id."""
    end = _end(app, start, sessions)
    backtest_id, report = run_backtest(app, uid, BacktestRequest(name, start, end))
    outcome = _backtested(app, config, start, end)
    assert report["trades"] == outcome.report["trades"] and report["trades"], "the period was chosen to trade"
    decisions, orders = _expected(outcome)
    before, listed = _books(app, uid), _listings(app, uid)
    sessions_ = trade_sessions(app, uid, backtest_id, report["trades"])
    wanted = {d for pair in sessions_ for d in pair.values() if d is not None}
    assert len(wanted) >= 2
    for day in sorted(wanted):
        _check_session(app, uid, backtest_id, day, decisions, orders)
    assert sum(bool(decisions[d].orders) for d in wanted if d in decisions) >= 2, "entries and exits re-run"
    quiet = next(d for d in report_sessions(outcome) if d not in decisions and d not in wanted)
    _check_session(app, uid, backtest_id, quiet, decisions, orders)
    assert _books(app, uid) == before, "the user's own accounts are as they were"
    assert _listings(app, uid) == listed, "nothing of the re-runs in the user's listings and statistics"

    first = sorted(wanted)[0]
    again = rerun_session(app, uid, backtest_id, date.fromisoformat(first))
    with app.Session() as s:
        assert again == s.scalar(select(BacktestSession.id).where(BacktestSession.backtest_id == backtest_id,
                                                                  BacktestSession.session == date.fromisoformat(first)))
        assert len(s.scalars(select(BacktestSession.id).where(BacktestSession.backtest_id == backtest_id)).all()) \
            == len(wanted) + 1
    return backtest_id


def test_demo_entries_and_exits_rerun_through_the_live_steps_decide_as_the_backtest(app):
    uid, _ = demo(app)
    config = _demo(START)
    with app.Session() as s:
        save_strategy(s, app, uid, "parity", config)
    for _ in range(LIVE_SESSIONS):  # the strategy's replay account has books of its own meanwhile
        assert run_strategy(app, uid, "parity", trigger="test").status == "succeeded"
    assert run_strategy(app, uid, "demo", trigger="test").status == "succeeded"  # and the shared account
    with app.Session() as s:
        assert s.scalar(select(Order.id).limit(1)) is not None, "the user's books are not empty"
    _rerun_trades(app, uid, "parity", config, START, SESSIONS)


def test_plugin_crossover_entries_and_exits_rerun_as_the_backtest(app):
    uid, _ = demo(app)
    cfg = crossover_config().to_json()  # with the indicators the bundled prompts name (a live run renders them)
    cfg["indicators"]["sma_periods"] = [20, 50, 200]
    cfg["market_data"]["lookback_days"] = 300
    config = StrategyConfig.model_validate(cfg)
    with app.Session() as s:
        save_strategy(s, app, uid, "cross", config)
    _rerun_trades(app, uid, "cross", config, date(2003, 6, 2), 250)


def test_faces_start_or_open_the_rerun_and_refuse_others(app, cli_env):
    uid, _ = demo(app)
    with app.Session() as s:
        save_strategy(s, app, uid, "parity", _demo(START))
    end = _end(app, START, SESSIONS)
    backtest_id, report = run_backtest(app, uid, BacktestRequest("parity", START, end))
    day = trade_sessions(app, uid, backtest_id, report["trades"])[0]["entry"]
    alice, bob = api_user(app, "demo"), api_user(app, "bob")

    answer = alice.post(f"/api/backtests/{backtest_id}/sessions/{day}/rerun")
    assert answer.status_code == 200, answer.text
    execution_id = answer.json()["execution_id"]
    assert answer.json()["lineage_url"] == f"/api/lineage/execution/{execution_id}"
    lineage = alice.get(f"/api/lineage/execution/{execution_id}").json()
    assert [st["name"] for st in lineage["steps"]][7:9] == ["decide_signal", "risk_check"]
    assert alice.post(f"/api/backtests/{backtest_id}/sessions/{day}/rerun").json()["execution_id"] == execution_id
    assert bob.post(f"/api/backtests/{backtest_id}/sessions/{day}/rerun").status_code == 404
    assert alice.post(f"/api/backtests/{backtest_id}/sessions/2001-01-02/rerun").status_code == 404
    assert alice.post(f"/api/backtests/{backtest_id}/sessions/2004-03-06/rerun").status_code == 404  # a Saturday
    assert alice.post(f"/api/backtests/{backtest_id}/sessions/2004-3-1x/rerun").status_code == 422

    web = web_client(app)
    csrf = sign_in(web)
    page = web.get(f"/backtests/{backtest_id}").text
    assert f'action="/backtests/{backtest_id}/sessions/{day}/rerun"' in page and 'data-testid="why-exit"' in page
    opened = web.post(f"/backtests/{backtest_id}/sessions/{day}/rerun", data={"csrf_token": csrf})
    assert opened.status_code == 303 and opened.headers["location"] == f"/executions/{execution_id}"
    assert web.get(opened.headers["location"]).status_code == 200

    out = tt(cli_env, "backtest-session", backtest_id, report["trades"][0]["exit_date"]).stdout
    assert "decide_signal" in out and "risk_check" in out and "place_order" in out and "execution " in out
    refused = tt(cli_env, "backtest-session", backtest_id, "2001-01-02", check=False)
    assert refused.returncode != 0 and "did not test 2001-01-02" in refused.stderr


def test_the_model_analyst_is_refused_with_the_reason(app):
    uid, _ = demo(app)
    cfg = _demo(START).to_json()
    with app.Session() as s:
        save_strategy(s, app, uid, "parity", StrategyConfig.model_validate(cfg))
    backtest_id, report = run_backtest(app, uid, BacktestRequest("parity", START, _end(app, START, SESSIONS)))
    with app.Session() as s:  # the backtest as if recorded for the model analyst
        step = s.scalar(select(LineageStep).where(LineageStep.execution_id == backtest_id))
        step.input = {**step.input, "strategy": {**step.input["strategy"],
                                                 "analyst": {**step.input["strategy"]["analyst"], "kind": "llm"}}}
        s.commit()
    with pytest.raises(InvalidBacktest, match="model"):
        rerun_session(app, uid, backtest_id, date.fromisoformat(report["trades"][0]["entry_date"]))
    with pytest.raises(NotFound):
        rerun_session(app, uid + 1000, backtest_id, START)
