"""The backtest decides as the live pipeline does: the demo strategy over 60 sessions, once session by session
through the 13 steps on the replay clock (simulated broker, database books) and once through the backtest,
gives the same orders, the same fills and the same equity at every session's close."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from sqlalchemy import func, select

from tests.support.helpers import demo
from tradetrail.backtest.runner import Costs, backtest, session_dates
from tradetrail.db.models import Execution
from tradetrail.db.trading_models import Fill, Order, PortfolioSnapshot
from tradetrail.domain.market_hours import EXCHANGE_TZ
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.accounts.bootstrap import demo_config
from tradetrail.services.backtests.running import BacktestRequest, analyst_for, run_backtest
from tradetrail.services.runs.executions import run_strategy
from tradetrail.services.strategies.configs import save_strategy

SESSIONS = 60


def _config(start: date, **changes):
    """The demo, without charts (the rules analyst reads none), on a replay clock from ``start``. Its
    lookback (1,500 bars) reaches the first bundled session throughout, so every live run seeds its
    indicators on the same bar as the backtest."""
    cfg = demo_config().to_json()
    cfg["charts"]["enabled"] = False
    cfg["market_data"]["replay_start"] = start.isoformat()
    for path, value in changes.items():
        section, key = path.split("__")
        cfg[section][key] = value
    return cfg


def _session(moment) -> str:
    return moment.astimezone(EXCHANGE_TZ).date().isoformat()


def _live(app, uid: int) -> dict:
    with app.Session() as s:
        as_of = dict(s.execute(select(Execution.id, Execution.as_of).where(Execution.user_id == uid)).all())
        orders = s.scalars(select(Order).where(Order.user_id == uid).order_by(Order.id)).all()
        fills = s.execute(select(Fill, Order.leg).join(Order, Order.id == Fill.order_id)
                          .where(Order.user_id == uid).order_by(Fill.filled_at, Fill.id)).all()
        snaps = s.scalars(select(PortfolioSnapshot).where(PortfolioSnapshot.kind == "execution")
                          .order_by(PortfolioSnapshot.at)).all()
        return {
            "orders": [(_session(as_of[o.execution_id]), o.leg, o.side, o.order_type, o.quantity, o.limit_price,
                        o.stop_price, o.tif, o.state, o.avg_fill_price) for o in orders],
            "fills": [(_session(f.filled_at), leg, f.side, f.quantity, f.price, f.commission) for f, leg in fills],
            "equity": {_session(p.at): p.equity for p in snaps},
        }


def _backtested(run_) -> dict:
    dates = [d.date().isoformat() for d in session_dates(run_.series.times)]
    account = run_.account
    return {
        "orders": [(dates[o.placed], o.leg, o.side, o.order_type, o.quantity, o.limit_price, o.stop_price, o.tif,
                    o.state, o.fill_price) for o in account.orders],
        "fills": [(dates[f["row"]], f["leg"], f["side"], f["quantity"], f["price"], f["commission"])
                  for f in account.fills],
        "equity": dict(zip(dates[run_.first:], [float(v) for v in run_.equity], strict=True)),
    }


@pytest.mark.parametrize("start", [date(2004, 3, 1), date(2004, 8, 2)])
def test_sixty_sessions_live_and_backtested_give_the_same_orders_fills_and_equity(app, start):
    uid, _ = demo(app)
    config = StrategyConfig.model_validate(_config(start))
    with app.Session() as s:
        strategy_id = save_strategy(s, app, uid, "parity", config).id
    for _ in range(SESSIONS):
        summary = run_strategy(app, uid, "parity", trigger="test")
        assert summary.status == "succeeded", summary
    with app.Session() as s:
        last = s.scalar(select(Execution.as_of).where(Execution.strategy_id == strategy_id)
                        .order_by(Execution.as_of.desc()).limit(1)).astimezone(EXCHANGE_TZ).date()
    live = _live(app, uid)
    assert live["orders"], "the period was chosen so that the strategy trades"

    source = app.market_data("sample")
    bars = source.daily_bars(source.resolve("SPX"), as_of=datetime.combine(last, time(23, 59), tzinfo=EXCHANGE_TZ),
                             lookback=100_000)
    costs = Costs(app.settings.sim_initial_cash, app.settings.sim_commission, app.settings.sim_slippage_bps)
    outcome = backtest(config, "SPX", bars, start, last, analyst_for(app, config), execution_id="parity", costs=costs)
    tested = _backtested(outcome.run)

    assert outcome.report["sessions"] == SESSIONS and outcome.report["warmup_sessions"] == 0
    assert tested["orders"] == live["orders"]
    assert tested["fills"] == live["fills"]
    assert tested["equity"] == live["equity"]

    # The recorded backtest (the service) reports the same trades, and writes nothing to the user's books.
    with app.Session() as s:
        orders_before = s.scalar(select(func.count(Order.id)))
    _, report = run_backtest(app, uid, BacktestRequest("parity", start, last))
    assert report["trades"] == outcome.report["trades"] and report["stats"] == outcome.report["stats"]
    with app.Session() as s:
        assert s.scalar(select(func.count(Order.id))) == orders_before
