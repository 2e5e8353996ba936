"""The simulated broker's fill rules against real S&P 500 bars, its books in the real database."""

from __future__ import annotations

import pandas as pd
import pytest

from tradetrail.broker.simulated import SimulatedBroker
from tradetrail.domain.commissions import commission
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side, bracket, client_order_id
from tradetrail.marketdata.sample import SampleMarketData, load_sample_daily

SPX = SampleMarketData().resolve("SPX")
BARS = load_sample_daily("SPX")
D0 = BARS.index.get_loc(pd.Timestamp("2005-01-03 21:00", tz="UTC"))
SLIP = 5 / 10_000


def bar(i: int):
    return BARS.iloc[D0 + i]


def at(i: int):
    return BARS.index[D0 + i].to_pydatetime()


@pytest.fixture
def sim(app):
    broker = app.broker
    account = broker.account(1)
    broker.sync(account, at(0), (SPX,))
    return broker, account


def _orders(broker, account):
    return {o.client_order_id: o for o in broker.orders(account)}


def test_market_order_fills_at_the_next_open_with_slippage_and_commission(sim):
    broker, account = sim
    spec = OrderSpec(client_order_id("e1", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.MKT, 10)
    assert broker.place(account, SPX, [spec]).status == "accepted"
    broker.sync(account, at(0), (SPX,))
    assert _orders(broker, account)[spec.client_order_id].status == "SUBMITTED"  # no bar after placement yet
    broker.sync(account, at(1), (SPX,))
    [fill] = broker.fills(account)
    price = round(bar(1)["open"] * (1 + SLIP), 4)
    assert fill.price == price and fill.quantity == 10 and fill.time == at(1)
    assert fill.commission == commission("fixed", 10, price) == 1.0  # IBKR fixed: the USD 1.00 minimum
    values = broker.account_values(account)
    assert values.cash == pytest.approx(100_000 - 10 * price - 1.0)
    assert values.equity == pytest.approx(values.cash + 10 * bar(1)["close"])
    [pos] = broker.positions(account)
    assert pos.quantity == 10 and pos.avg_cost == price and pos.market_price == bar(1)["close"]


def test_day_limit_below_the_range_expires_and_gtc_keeps_working(sim):
    broker, account = sim
    low = float(bar(1)["low"]) - 50
    day = OrderSpec(client_order_id("e2", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.LMT, 5, limit_price=low)
    gtc = OrderSpec(client_order_id("e3", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.LMT, 5, limit_price=low,
                    tif="GTC")
    broker.place(account, SPX, [day])
    broker.place(account, SPX, [gtc])
    broker.sync(account, at(1), (SPX,))
    orders = _orders(broker, account)
    assert orders[day.client_order_id].status == "CANCELLED" and "expired" in orders[day.client_order_id].reason
    assert orders[gtc.client_order_id].status == "SUBMITTED" and broker.fills(account) == []


def test_limit_above_the_open_fills_at_the_open(sim):
    broker, account = sim
    spec = OrderSpec(client_order_id("e4", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.LMT, 3,
                     limit_price=float(bar(1)["open"]) + 20)
    broker.place(account, SPX, [spec])
    broker.sync(account, at(1), (SPX,))
    assert broker.fills(account)[0].price == round(bar(1)["open"], 4)


def test_bracket_stop_fills_and_cancels_the_target(sim):
    broker, account = sim
    # Entry at the next open; a stop that a later bar trades through; a target far away.
    lows = [float(bar(i)["low"]) for i in range(1, 8)]
    stop = min(lows) + 0.01
    hit = 1 + lows.index(min(lows))
    legs = bracket("x1", Side.BUY, 7, entry_type=OrderType.MKT, entry_price=bar(0)["close"], stop_price=stop,
                   target_price=float(bar(0)["close"]) + 500)
    assert broker.place(account, SPX, legs).status == "accepted"
    broker.sync(account, at(8), (SPX,))
    entry, stop_leg, target = (broker.order(account, leg.client_order_id) for leg in legs)
    assert entry.status == "FILLED" and stop_leg.status == "FILLED"
    assert target.status == "CANCELLED" and "one-cancels-other" in target.reason
    fills = {f.client_order_id: f for f in broker.fills(account)}
    expected = round(min(float(bar(hit)["open"]), stop) * (1 - SLIP), 4)
    assert fills[stop_leg.client_order_id].price == expected and fills[stop_leg.client_order_id].time == at(hit)
    assert broker.positions(account) == []


def test_stop_and_target_touched_in_the_same_bar_assumes_the_stop(sim):
    broker, account = sim
    b = bar(1)
    legs = bracket("x2", Side.BUY, 4, entry_type=OrderType.MKT, entry_price=b["open"],
                   stop_price=float(b["low"]) + 0.01, target_price=float(b["high"]) - 0.01)
    broker.place(account, SPX, legs)
    broker.sync(account, at(1), (SPX,))
    orders = _orders(broker, account)
    assert orders[legs[1].client_order_id].status == "FILLED"
    assert orders[legs[2].client_order_id].status == "CANCELLED"


def test_cancelling_the_parent_cancels_the_children(sim):
    broker, account = sim
    legs = bracket("x3", Side.BUY, 2, entry_type=OrderType.LMT, entry_price=1.0, stop_price=0.5, target_price=2.0,
                   tif="GTC")
    ids = broker.place(account, SPX, legs).broker_order_ids
    assert broker.cancel(account, ids[legs[0].client_order_id]) is True
    assert {o.status for o in broker.orders(account)} == {"CANCELLED"}
    assert broker.cancel(account, ids[legs[0].client_order_id]) is False  # nothing left to cancel


def test_duplicate_client_order_id_is_rejected_in_ibkr_words(sim):
    broker, account = sim
    spec = OrderSpec(client_order_id("e5", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.MKT, 1)
    assert broker.place(account, SPX, [spec]).status == "accepted"
    again = broker.place(account, SPX, [spec])
    assert again.status == "rejected" and f"Local order ID={spec.client_order_id} is already registered" in again.reason
    assert len(broker.orders(account)) == 1


def test_books_survive_a_restart_and_time_never_runs_backwards(app, sim):
    broker, account = sim
    spec = OrderSpec(client_order_id("e6", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.MKT, 2)
    broker.place(account, SPX, [spec])
    broker.sync(account, at(2), (SPX,))
    restarted = SimulatedBroker(app.engine, app.market_data)
    assert [f.exec_id for f in restarted.fills(account)] == [f.exec_id for f in broker.fills(account)]
    before = restarted.account_values(account)
    restarted.sync(account, at(1), (SPX,))
    assert restarted.account_values(account) == before


def test_tiered_commission_schedule(app):
    broker = SimulatedBroker(app.engine, app.market_data, commission_schedule="tiered")
    account = broker.account(7)
    broker.sync(account, at(0), (SPX,))
    broker.place(account, SPX, [OrderSpec(client_order_id("e7", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.MKT,
                                           200)])
    broker.sync(account, at(1), (SPX,))
    assert broker.fills(account)[0].commission == pytest.approx(0.0035 * 200)


def test_order_list_is_recent_but_any_order_can_be_looked_up(sim):
    broker, account = sim
    spec = OrderSpec(client_order_id("e8", Leg.ENTRY), Leg.ENTRY, Side.BUY, OrderType.MKT, 1)
    broker.place(account, SPX, [spec])
    broker.sync(account, at(1), (SPX,))
    assert spec.client_order_id in _orders(broker, account)
    broker.sync(account, at(10), (SPX,))  # two weeks later: settled history, like IBKR's live-orders list
    assert spec.client_order_id not in _orders(broker, account)
    assert broker.order(account, spec.client_order_id).status == "FILLED"
    assert broker.order(account, "no-such-id") is None
