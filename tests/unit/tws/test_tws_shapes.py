"""ib_async's own objects read into the ports' types, and our order specs written as ib_async orders."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from ib_async import AccountValue, BarData, CommissionReport, Contract, ContractDetails, Execution, Fill, Trade
from ib_async.order import Order, OrderStatus, TradeLogEntry
from ib_async.util import UNSET_DOUBLE

from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side
from tradetrail.marketdata.port import MarketDataError
from tradetrail.tws import shapes
from tradetrail.tws.errors import TwsError

SPY = Contract(conId=756733, symbol="SPY", secType="STK", exchange="SMART", primaryExchange="ARCA", currency="USD")


def test_every_leg_carries_its_client_order_id_and_only_the_last_transmits():
    entry = OrderSpec("tt-a-entry", Leg.ENTRY, Side.BUY, OrderType.MKT, 10)
    stop = OrderSpec("tt-a-stop", Leg.STOP, Side.SELL, OrderType.STP, 10, stop_price=95.5, tif="GTC",
                     parent_client_order_id="tt-a-entry")
    target = OrderSpec("tt-a-target", Leg.TARGET, Side.SELL, OrderType.LMT, 10, limit_price=120.25, tif="GTC",
                       parent_client_order_id="tt-a-entry")
    orders = [shapes.ib_order(entry, "DU1", order_id=7, parent_id=0, transmit=False),
              shapes.ib_order(stop, "DU1", order_id=8, parent_id=7, transmit=False),
              shapes.ib_order(target, "DU1", order_id=9, parent_id=7, transmit=True)]
    assert [(o.orderRef, o.orderId, o.parentId, o.transmit, o.account) for o in orders] == [
        ("tt-a-entry", 7, 0, False, "DU1"), ("tt-a-stop", 8, 7, False, "DU1"), ("tt-a-target", 9, 7, True, "DU1")]
    assert [(o.orderType, o.action, o.totalQuantity, o.tif) for o in orders] == [
        ("MKT", "BUY", 10, "DAY"), ("STP", "SELL", 10, "GTC"), ("LMT", "SELL", 10, "GTC")]
    assert (orders[1].auxPrice, orders[2].lmtPrice) == (95.5, 120.25)


def _trade(status: str, *, filled: float = 0.0, avg: float = 0.0, **order) -> Trade:
    o = Order(orderId=3, clientId=1, permId=1300000001, action="BUY", totalQuantity=10, orderType="LMT",
              lmtPrice=101.0, orderRef="tt-a-entry", account="DU1", **order)
    return Trade(SPY, o, OrderStatus(orderId=3, status=status, filled=filled, remaining=10 - filled,
                                     avgFillPrice=avg, permId=1300000001), [], [])


def test_an_open_order_reads_as_a_broker_order_with_its_permid_and_orderref():
    bo = shapes.broker_order(_trade("Submitted", filled=4, avg=100.5))
    assert (bo.broker_order_id, bo.client_order_id, bo.symbol, bo.side, bo.order_type) == \
        ("1300000001", "tt-a-entry", "SPY", "BUY", "LMT")
    assert (bo.quantity, bo.filled_quantity, bo.avg_fill_price, bo.status, bo.limit_price, bo.stop_price) == \
        (10.0, 4.0, 100.5, "PARTIALLY_FILLED", 101.0, None)


@pytest.mark.parametrize(("tws", "ours"), [("PendingSubmit", "SUBMITTED"), ("PreSubmitted", "SUBMITTED"),
                                           ("ApiPending", "SUBMITTED"), ("ValidationError", "SUBMITTED"),
                                           ("PendingCancel", "SUBMITTED"), ("Filled", "FILLED"),
                                           ("Cancelled", "CANCELLED"), ("ApiCancelled", "CANCELLED"),
                                           ("Inactive", "REJECTED")])
def test_tws_statuses_map_to_ours(tws, ours):
    assert shapes.status(tws, 0.0) == ours


def test_an_unknown_status_or_side_is_an_error_not_a_guess():
    with pytest.raises(TwsError, match="unknown order status 'Weird'"):
        shapes.status("Weird", 0.0)
    with pytest.raises(TwsError, match="unknown order side"):
        shapes.side("HOLD")


def test_a_refused_order_carries_tws_error_text_and_a_completed_one_takes_its_fills():
    refused = _trade("Inactive")
    refused.log.append(TradeLogEntry(datetime.now(UTC), "Inactive", "Order rejected - reason:margin", 201))
    assert (shapes.broker_order(refused).status, shapes.broker_order(refused).reason) == \
        ("REJECTED", "Order rejected - reason:margin")
    done = _trade("Filled")  # a completed order: no filled quantity or average of its own
    fills = [Fill(SPY, Execution(execId=f"e{i}", permId=1300000001, shares=5, price=price, side="BOT"),
                  CommissionReport(), datetime.now(UTC)) for i, price in ((1, 100.0), (2, 102.0))]
    bo = shapes.broker_order(done, "tt-parent", fills)
    assert (bo.filled_quantity, bo.avg_fill_price, bo.status, bo.parent_client_order_id) == \
        (10.0, 101.0, "FILLED", "tt-parent")


def test_an_execution_reads_as_a_fill_with_its_orderref_permid_and_commission_in_utc():
    when = datetime(2026, 3, 2, 10, 0, tzinfo=shapes.EXCHANGE_TZ)
    fill = Fill(SPY, Execution(execId="0001.01", time=when, acctNumber="DU1", side="SLD", shares=3, price=99.5,
                               permId=1300000002, clientId=1, orderId=4, orderRef="tt-a-stop"),
                CommissionReport(execId="0001.01", commission=1.25, currency="USD"), when)
    f = shapes.broker_fill(fill)
    assert (f.exec_id, f.broker_order_id, f.client_order_id, f.symbol, f.side, f.quantity, f.price, f.commission) == \
        ("0001.01", "1300000002", "tt-a-stop", "SPY", "SELL", 3.0, 99.5, 1.25)
    assert f.time == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    manual = Fill(SPY, Execution(execId="x", time=when, side="BOT", shares=1, price=1.0, permId=5), CommissionReport(),
                  when)
    assert shapes.broker_fill(manual).client_order_id is None  # placed elsewhere: no orderRef


def test_account_values_come_from_the_summary_in_the_base_currency_and_missing_tags_are_named():
    summary = [AccountValue("DU1", "NetLiquidation", "100250.50", "USD", ""),
               AccountValue("DU1", "TotalCashValue", "80000.00", "USD", ""),
               AccountValue("DU2", "NetLiquidation", "5.00", "USD", ""),
               AccountValue("DU1", "AccountType", "INDIVIDUAL", "", "")]
    values = shapes.account_values(summary, "DU1")
    assert (values.equity, values.cash, values.currency, values.paper) == (100250.5, 80000.0, "USD", True)
    with pytest.raises(TwsError, match="DU2 has no TotalCashValue"):
        shapes.account_values(summary, "DU2")
    assert shapes.paper("U1234567") is False


def test_unset_markers_are_none_not_numbers():
    assert shapes.num(UNSET_DOUBLE) is None and shapes.num("") is None and shapes.num(float("nan")) is None
    assert shapes.num("12.5") == 12.5


def test_daily_bars_are_stamped_at_the_new_york_close_of_their_session():
    bars = [BarData(date=date(2026, 3, 2), open=1, high=2, low=0.5, close=1.5, volume=100),
            BarData(date=date(2026, 7, 1), open=1.5, high=2, low=1, close=1.8, volume=50)]
    frame = shapes.bars_frame(bars, 1)
    assert list(frame.index) == [datetime(2026, 3, 2, 21, 0, tzinfo=UTC), datetime(2026, 7, 1, 20, 0, tzinfo=UTC)]
    assert list(frame["close"]) == [1.5, 1.8] and list(frame["volume"]) == [100.0, 50.0]
    with pytest.raises(MarketDataError, match="TWS conid 1"):
        shapes.bars_frame([BarData(date=date(2026, 3, 2), open=1, high=0.5, low=2, close=1, volume=1)], 1)


def test_contract_details_read_as_a_listing_with_the_primary_exchange():
    details = ContractDetails(contract=SPY, longName="SPDR S&P 500 ETF TRUST", validExchanges="SMART,ARCA",
                              timeZoneId="US/Eastern", minTick=0.01)
    listing = shapes.listing(details)
    assert (listing["conid"], listing["symbol"], listing["name"], listing["exchange"], listing["is_us"]) == \
        (756733, "SPY", "SPDR S&P 500 ETF TRUST", "ARCA", True)
    assert listing["details"]["valid_exchanges"] == "SMART,ARCA"
    with pytest.raises(MarketDataError, match="without a contract id"):
        shapes.listing(ContractDetails(contract=Contract(symbol="X")))
