"""A commission the broker reports after the fill was booked (TWS's report after the wait, a Web API trade
listed without one yet) is charged once: to the fill, the position's realized P&L, the trade, with an event."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import select, text

from tests.support.helpers import demo, demo_account
from tradetrail.broker.port import BrokerFill
from tradetrail.db.trading_models import Fill, Order, OrderEvent, Position, Trade
from tradetrail.domain.orders import OrderType, Side, bracket
from tradetrail.marketdata.sample import load_sample_daily
from tradetrail.runtime.build import build_app
from tradetrail.trading.books import charge_late_commission, record_fill
from tradetrail.trading.orders import save_intents, send
from tradetrail.trading.reconcile import sync_account

BARS = load_sample_daily("SPX")
D0 = BARS.index.get_loc(pd.Timestamp("2005-01-03 21:00", tz="UTC"))


def at(i: int):
    return BARS.index[D0 + i].to_pydatetime()


@pytest.fixture
def booked(settings):
    """A filled entry booked with no commission (the simulator charging none, as a broker whose commission
    has not come yet reports 0)."""
    app = build_app(settings.model_copy(update={"sim_commission": "none"}), migrate=False)
    user_id, strategy = demo(app)
    account = demo_account(app, user_id, strategy)
    spx = app.market_data("sample").resolve("SPX")
    app.broker.sync(account, at(0), (spx,))
    close = float(BARS.iloc[D0]["close"])
    specs = bracket("late", Side.BUY, 10, entry_type=OrderType.MKT, entry_price=close, stop_price=close * 0.5,
                    target_price=close * 2)
    rows = save_intents(app, user_id=user_id, strategy_id=strategy.id, execution_id=None, account=account,
                        contract=spx, specs=specs, risk_per_unit=close * 0.5)
    assert send(app, rows).status == "accepted"
    app.broker.sync(account, at(1), (spx,))
    first = sync_account(app, user_id, account)
    assert [f["commission"] for f in first["fills"]] == [0.0]
    return app, user_id, account, rows[0]


def _broker_reports(app, commission: float) -> None:
    """The broker's report of the fill now carries ``commission``."""
    with app.engine.begin() as conn:
        conn.execute(text("UPDATE sim_fills SET commission = :c"), {"c": commission})


def _books(app, account):
    with app.Session() as s:
        fill = s.scalars(select(Fill)).one()
        pos = s.scalars(select(Position).where(Position.account == account)).one()
        trade = s.scalars(select(Trade).where(Trade.account == account)).one()
        events = s.scalars(select(OrderEvent.detail).where(OrderEvent.detail.like("%reported after%"))).all()
        return fill.commission, pos.realized_pnl, trade.pnl, events


def test_a_commission_reported_after_the_booking_is_charged_once(booked) -> None:
    app, user_id, account, entry = booked
    assert _books(app, account) == (0.0, 0.0, 0.0, [])
    _broker_reports(app, 1.25)
    synced = sync_account(app, user_id, account)
    assert synced["fills"] == []  # no new fill: the booked one is charged
    assert [n for n in synced["notes"] if "commission 1.25 reported after the fill was booked" in n], synced
    commission, realized, pnl, events = _books(app, account)
    assert (commission, realized, pnl) == (1.25, -1.25, -1.25) and len(events) == 1
    assert sync_account(app, user_id, account)["notes"] == []  # charged once
    assert _books(app, account)[:3] == (1.25, -1.25, -1.25)


def test_a_charged_commission_reported_again_otherwise_is_not_followed(booked) -> None:
    app, user_id, account, _ = booked
    _broker_reports(app, 1.25)
    sync_account(app, user_id, account)
    _broker_reports(app, 2.0)
    assert sync_account(app, user_id, account)["notes"] == []
    assert _books(app, account)[:3] == (1.25, -1.25, -1.25)


def test_a_rebate_reported_late_raises_the_pnl(booked) -> None:
    app, user_id, account, _ = booked
    _broker_reports(app, -0.35)
    sync_account(app, user_id, account)
    assert _books(app, account)[:3] == (-0.35, 0.35, 0.35)


@pytest.mark.parametrize("leg", ["entry", "external"])
def test_the_commission_goes_to_the_trade_the_fill_was_booked_to_when_trades_share_a_timestamp(app, leg) -> None:
    """One trade opens and closes at t and the next opens at t (TWS stamps executions to the second): a
    commission reported late for the first trade's opening fill is that trade's, whatever its order's leg."""
    user_id, strategy = demo(app)
    strategy_id = strategy.id if leg == "entry" else None
    t = datetime(2025, 1, 2, 15, 31, tzinfo=UTC)
    with app.Session() as s:
        def order(coid, order_leg, side, qty):
            row = Order(user_id=user_id, strategy_id=strategy_id, execution_id=None, broker="simulated",
                        account="A1", client_order_id=coid, leg=order_leg, symbol="SPY", side=side,
                        order_type="MKT", quantity=qty, tif="DAY", state="SUBMITTED", filled_quantity=0.0,
                        risk_per_unit=1.0)
            s.add(row)
            s.flush()
            return row

        def fill(exec_id, side, qty, price, commission):
            return BrokerFill(exec_id=exec_id, broker_order_id=exec_id, client_order_id=None, symbol="SPY",
                              side=side, quantity=qty, price=price, commission=commission, time=t)

        first, out, second = order("e1", leg, "BUY", 10), order("x1", "stop", "SELL", 10), order("e2", leg, "BUY", 5)
        record_fill(s, first, fill("E1", "BUY", 10, 100.0, 0.0))  # its commission comes later
        record_fill(s, out, fill("X1", "SELL", 10, 101.0, 1.0))  # closes the first trade at t
        record_fill(s, second, fill("E2", "BUY", 5, 101.0, 0.0))  # opens the next at t; its commission too
        s.commit()
        notes = [charge_late_commission(s, first, s.scalar(select(Fill).where(Fill.exec_id == "E1")), 2.0),
                 charge_late_commission(s, second, s.scalar(select(Fill).where(Fill.exec_id == "E2")), 0.5)]
        s.commit()
        trades = [(tr.status, tr.pnl, tr.r_multiple) for tr in s.scalars(select(Trade).order_by(Trade.id))]
    assert None not in notes
    assert trades == [("closed", 7.0, 0.7), ("open", -0.5, None)]  # were 9.0 / 0.9 and 0.0 before the charges
