"""A commission the broker reports after the fill was booked (TWS's report after the wait, a Web API trade
listed without one yet) is charged once: to the fill, the position's realized P&L, the trade, with an event."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select, text

from tests.support.helpers import demo, demo_account
from tradetrail.db.trading_models import Fill, OrderEvent, Position, Trade
from tradetrail.domain.orders import OrderType, Side, bracket
from tradetrail.marketdata.sample import load_sample_daily
from tradetrail.runtime.build import build_app
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
