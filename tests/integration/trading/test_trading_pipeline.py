"""The thirteen steps trading on the simulated broker: fills, books, reconciliation, the live gate, halts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.support.cli import tt
from tests.support.helpers import demo, demo_account
from tradetrail.broker.simulated import SimulatedBroker
from tradetrail.db.sim_models import SimPosition
from tradetrail.db.trading_models import Fill, Order, Position, Trade
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side
from tradetrail.domain.risk import TradingState
from tradetrail.marketdata.sample import SampleMarketData
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.trading import portfolio
from tradetrail.trading.reconcile import reconcile
from tradetrail.trading.trading_state import account_scope, get_state, scope_for, set_state


def _hand_books(fills, initial=100_000.0):
    """Cash, quantity, average cost and realized P&L recomputed from the fills, by hand."""
    cash, qty, avg, realized = initial, 0.0, 0.0, 0.0
    for f in fills:
        cash -= (f.quantity if f.side == "BUY" else -f.quantity) * f.price + f.commission
        realized -= f.commission
        if f.side == "BUY":
            avg = (qty * avg + f.quantity * f.price) / (qty + f.quantity)
            qty += f.quantity
        else:
            realized += f.quantity * (f.price - avg)
            qty -= f.quantity
            avg = avg if qty else 0.0
    return cash, qty, avg, realized


def test_twenty_demo_runs_trade_and_the_books_match_a_hand_check(app):
    user_id, strategy = demo(app)
    results = [get_execution(app, run_strategy(app, user_id, "demo").execution_id) for _ in range(20)]
    assert all(r["status"] == "succeeded" for r in results), [r["error"] for r in results]
    assert [s["name"] for s in results[0]["steps"]][-5:] == ["risk_check", "place_order", "track_order",
                                                             "update_portfolio", "complete"]
    assert len({r["as_of"] for r in results}) == 20  # the market moved every run
    with app.Session() as s:
        fills = s.scalars(select(Fill).order_by(Fill.filled_at, Fill.id)).all()
        position = s.scalar(select(Position).where(Position.strategy_id == strategy.id))
        trades = s.scalars(select(Trade)).all()
    assert fills, "at least one order must fill in twenty sessions"
    cash, qty, avg, realized = _hand_books(fills)
    account = demo_account(app, user_id, strategy)
    assert app.broker.account_values(account).cash == pytest.approx(cash, abs=1e-6)
    assert position.quantity == qty and position.avg_cost == pytest.approx(avg)
    assert position.realized_pnl == pytest.approx(realized, abs=1e-6)
    assert sum(t.pnl for t in trades) == pytest.approx(realized, abs=1e-6)  # open trades carry entry commissions
    assert all(t.r_multiple is not None for t in trades if t.status == "closed")
    now = portfolio.current(app, user_id, datetime.fromisoformat(results[-1]["as_of"]))
    assert now["cash"] == pytest.approx(cash, abs=1e-6)
    assert sum(p["quantity"] for p in now["positions"]) == qty
    last = results[-1]["steps"][11]["output"]  # update_portfolio
    mark = last["positions"][0]["market_price"] if last["positions"] and qty else 0.0
    assert last["equity"] == pytest.approx(cash + qty * mark, abs=1e-6)
    assert last["realized_pnl"] + last["unrealized_pnl"] == pytest.approx(last["equity"] - 100_000, abs=1e-6)


def test_cli_portfolio_is_consistent_with_cli_orders(cli_env):
    tt(cli_env, "init")
    for _ in range(6):
        tt(cli_env, "run", "demo")
    orders = json.loads(tt(cli_env, "orders", "--json").stdout)
    book = json.loads(tt(cli_env, "portfolio", "--json").stdout)
    fills = orders["fills"]
    assert fills and {o["state"] for o in orders["orders"]} <= {"SUBMITTED", "FILLED", "CANCELLED"}
    spent = sum((f["quantity"] if f["side"] == "BUY" else -f["quantity"]) * f["price"] + f["commission"]
                for f in fills)
    assert book["cash"] == pytest.approx(100_000 - spent, abs=1e-6)
    held = sum(f["quantity"] if f["side"] == "BUY" else -f["quantity"] for f in fills)
    assert sum(p["quantity"] for p in book["positions"]) == held
    assert book["equity"] == pytest.approx(book["cash"] + book["positions_value"], abs=1e-6)
    assert book["realized_pnl"] + book["unrealized_pnl"] == pytest.approx(book["equity"] - 100_000, abs=1e-6)


def test_reconcile_adopts_an_order_placed_elsewhere_and_flags_a_position_mismatch(app):
    user_id, _ = demo(app)
    account = app.broker.account(user_id)
    contract = SampleMarketData().resolve("COMP")
    as_of = datetime.fromisoformat(get_execution(app, run_strategy(app, user_id, "demo").execution_id)["as_of"])
    app.broker.sync(account, as_of, (contract,))
    app.broker.place(account, contract, [OrderSpec("manual-1", Leg.ENTRY, Side.BUY, OrderType.LMT, 1,
                                                   limit_price=1.0, tif="GTC")])
    with app.Session() as s:  # a position the broker has and we do not
        s.add(SimPosition(account=account, symbol="QQQ", source="sample", quantity=5, avg_cost=40.0))
        s.commit()
    report = reconcile(app, user_id)
    assert report["adopted"] == ["manual-1"]
    assert {"account": account, "symbol": "QQQ", "ours": 0.0, "broker": 5.0} in report["position_mismatches"]
    with app.Session() as s:
        adopted = s.scalar(select(Order).where(Order.client_order_id == "manual-1"))
    assert adopted.external and adopted.strategy_id is None and adopted.state == "SUBMITTED"
    assert reconcile(app, user_id)["adopted"] == []  # adopted once
    state, row = get_state(app, user_id, account_scope(account))  # books differ from the broker: no new entries
    assert state == TradingState.REDUCING and "QQQ ours 0 broker 5" in row.reason
    assert get_state(app, user_id, "global")[0] == TradingState.ACTIVE  # there; the user's other accounts trade on


class _LiveSimulatedBroker(SimulatedBroker):
    """The simulator reporting a live (non-paper) account, to exercise the live-trading gate."""

    def account_state(self, account):  # account_values reads through it too
        values, positions = super().account_state(account)
        return replace(values, paper=False), positions


def test_live_account_needs_live_mode_and_the_global_switch(app):
    user_id, strategy = demo(app)
    app.broker = _LiveSimulatedBroker(app.engine, app.market_data)
    data = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert data["failed_step"] == "place_order"
    assert "live mode" in data["error"] and "TRADETRAIL_ALLOW_LIVE_TRADING=true" in data["error"]
    with app.Session() as s:
        assert s.scalar(select(Order)) is None
    assert app.broker.orders(demo_account(app, user_id, strategy)) == []


@pytest.mark.parametrize("state, scope", [(TradingState.HALTED, "global"), (TradingState.REDUCING, "strategy")])
def test_halted_or_reducing_denies_entries_with_the_rule(app, state, scope):
    user_id, strategy = demo(app)
    set_state(app, user_id, scope_for(None if scope == "global" else strategy.id), state, "drill")
    data = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    risk = data["steps"][8]["output"]
    assert data["status"] == "succeeded" and risk["approved"] is False
    assert risk["denials"][0]["rule"] == "trading_state" and state.value in risk["denials"][0]["detail"]
    assert data["steps"][9]["status"] == "skipped"
    assert app.broker.orders(demo_account(app, user_id, strategy)) == []


def test_an_order_finished_long_ago_at_the_broker_is_still_settled_locally(app):
    """A protective leg cancelled at the broker weeks before we look must not stay SUBMITTED in our books."""
    user_id, strategy = demo(app)
    first = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert first["steps"][9]["output"]["status"] == "accepted"
    account = demo_account(app, user_id, strategy)
    with app.Session() as s:
        target = s.scalar(select(Order).where(Order.leg == "target"))
    app.broker.cancel(account, target.broker_order_id)
    contract = SampleMarketData().resolve("SPX")
    app.broker.sync(account, datetime(2005, 3, 1, 21, tzinfo=UTC), (contract,))
    assert target.client_order_id not in {o.client_order_id for o in app.broker.orders(account)}
    reconcile(app, user_id, account)
    with app.Session() as s:
        assert s.scalar(select(Order.state).where(Order.id == target.id)) == "CANCELLED"
