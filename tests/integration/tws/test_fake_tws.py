"""The fake TWS (tests/fakes/tws_server.py) driven by ib_async 2.1.0 itself, so the adapter's tests stand on a
fake whose frames ib_async decodes to what the fake meant.

How ib_async runs here: its synchronous API (``IB().connect``, ``ib.qualifyContracts``, ``ib.sleep``) on this
thread's event loop, which ib_async creates and drives itself; the fake serves on its own thread and loop.
Every wait is bounded: ``_run`` wraps a coroutine in ``util.run(..., timeout=...)`` and ``_until`` polls with
``ib.sleep`` to a deadline, so a missing answer fails the test instead of hanging it. Every IB is disconnected
and every fake closed at teardown, and a fake that met a frame it could not handle fails the test.
"""

from __future__ import annotations

import time
from datetime import date

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock, util
from ib_async.contract import Contract, ContractDetails
from ib_async.decoder import Decoder
from ib_async.objects import Execution
from ib_async.order import Order, OrderState

from tests.fakes.tws import wire
from tests.fakes.tws_server import FakeTWS

WAIT = 10.0  # seconds: generous for a loaded CI machine; a healthy run answers in milliseconds


@pytest.fixture
def tws():
    with FakeTWS() as fake:
        yield fake
        assert fake.problems == []


@pytest.fixture
def connect():
    opened: list[IB] = []

    def _connect(fake: FakeTWS, client_id: int, **kw) -> IB:
        ib = IB()
        opened.append(ib)
        ib.connect(fake.host, fake.port, clientId=client_id, timeout=kw.pop("timeout", WAIT), **kw)
        return ib

    yield _connect
    for ib in opened:
        ib.disconnect()


def _run(aw, timeout: float = WAIT):
    return util.run(aw, timeout=timeout)


def _until(ib: IB, predicate, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the expected state was not reached in time"
        ib.sleep(0.01)


def _spy(ib: IB) -> Contract:
    [c] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    return c


# -- the layouts, field by field -------------------------------------------------------------------------------
class _Recorder:
    """Stands in for ib_async's Wrapper: keeps what the Decoder hands over."""

    def __init__(self):
        self.got: dict = {}
        self.ib = type("IBStub", (), {"TimezoneTWS": None})()
        self.defaultTimezone = None

    def openOrder(self, order_id, contract, order, state):
        self.got = {"o": order, "c": contract, "st": state}

    def completedOrder(self, contract, order, state):
        self.got = {"o": order, "c": contract, "st": state}

    def execDetails(self, req_id, contract, execution):
        self.got = {"ex": execution, "c": contract, "reqId": req_id}

    def contractDetails(self, req_id, details):
        self.got = {"cd": details, "c": details.contract, "reqId": req_id}


_PROTOTYPES = {"o": Order(), "c": Contract(), "st": OrderState(), "ex": Execution(), "cd": ContractDetails()}


def _distinct_values(layout: tuple[str, ...]) -> tuple[dict, dict]:
    """A distinct wire value for every named field of ``layout`` and what ib_async should decode it to."""
    sent, expected = {}, {}
    for i, name in enumerate(layout):
        if name[0] in "#-" or name in ("reqId", "time", "lastTimes"):
            continue
        head, *path = name.split(".")
        default = _PROTOTYPES[head]
        for part in path:
            default = getattr(default, part)
        if isinstance(default, bool):
            sent[name], expected[name] = "1", True
        elif isinstance(default, int):
            sent[name], expected[name] = str(1000 + i), 1000 + i
        elif isinstance(default, float):
            sent[name], expected[name] = f"{i}.25", i + 0.25
        else:
            sent[name], expected[name] = f"s{i}", f"s{i}"
    for name in set(sent) & {"o.trailStopPrice"}:  # written twice in these layouts: one value for both
        sent[name], expected[name] = "77.25", 77.25
    return sent, expected


@pytest.mark.parametrize("layout, handler", [(wire.OPEN_ORDER, "openOrder"),
                                             (wire.COMPLETED_ORDER, "completedOrder"),
                                             (wire.EXEC_DETAILS, "execDetails"),
                                             (wire.CONTRACT_DETAILS, "contractDetails")])
def test_every_field_of_the_long_messages_decodes_to_what_the_fake_meant(layout, handler):
    sent, expected = _distinct_values(layout)
    sent.update({"reqId": "42", "time": "20240105 10:30:00 US/Eastern", "lastTimes": ""})
    fields = wire.split(wire.frame(wire.encode(layout, sent))[4:])
    recorder = _Recorder()
    Decoder(recorder, wire.SERVER_VERSION).interpret(fields)
    assert recorder.got, f"ib_async's decoder could not unpack the {handler} layout"
    for name, want in expected.items():
        head, *path = name.split(".")
        got = recorder.got[head]
        for part in path:
            got = getattr(got, part)
        assert got == want, f"{name}: sent {sent[name]!r}, ib_async decoded {got!r}"
    if "reqId" in layout:
        assert recorder.got["reqId"] == 42


# -- connect, contracts, bars ----------------------------------------------------------------------------------
def test_connect_answers_the_handshake_and_every_sync_request(tws, connect):
    seen: list[int] = []
    ib = IB()
    ib.errorEvent += lambda req_id, code, text, contract: seen.append(code)
    ib.connect(tws.host, tws.port, clientId=7, timeout=WAIT)
    try:
        assert ib.isConnected() and ib.managedAccounts() == ["DU1234567"]
        assert tws.connections == 1 and tws.client_ids == [7] and tws.next_valid_ids == [1]
        for name in ("startApi", "reqPositions", "reqOpenOrders", "reqCompletedOrders", "reqAccountUpdates",
                     "reqAccountUpdatesMulti", "reqExecutions"):
            assert tws.count(name) == 1, name
        assert {2104, 2106, 2158} <= set(seen)
        assert abs(ib.reqCurrentTime().timestamp() - time.time()) < 60
        assert {v.tag for v in ib.accountValues()} >= {"NetLiquidation", "TotalCashValue", "BuyingPower"}
    finally:
        ib.disconnect()
    tws.wait_until(lambda f: f.connections == 0)


def test_contracts_qualify_like_ib(tws, connect):
    ib = connect(tws, 1)
    spy, aapl = ib.qualifyContracts(Stock("SPY", "SMART", "USD"), Stock("AAPL", "SMART", "USD"))
    assert (spy.conId, spy.primaryExchange, spy.exchange) == (756733, "ARCA", "SMART")
    assert (aapl.conId, aapl.primaryExchange) == (265598, "NASDAQ")
    [details] = ib.reqContractDetails(Contract(conId=265598))
    assert details.longName == "APPLE INC" and details.contract.symbol == "AAPL" and details.minTick == 0.01
    assert ib.qualifyContracts(Stock("NOSUCH", "SMART", "USD")) == [None]  # error 200
    assert ib.qualifyContracts(Stock("TWIN", "SMART", "USD")) == [None]  # ambiguous: two listings
    [twin] = ib.qualifyContracts(Stock("TWIN", "SMART", "USD", primaryExchange="NYSE"))
    assert twin.conId == 1001
    assert [d.contract.symbol for d in ib.reqMatchingSymbols("AAP")] == ["AAPL"]


def test_daily_bars_for_a_year_are_the_fakes_series(tws, connect):
    ib = connect(tws, 1)
    bars = ib.reqHistoricalData(_spy(ib), "", "1 Y", "1 day", "TRADES", True, timeout=WAIT)
    series = tws.bars("SPY")
    assert len(series) >= 400 and 240 <= len(bars) <= 262
    assert all(isinstance(b.date, date) and b.date.weekday() < 5 for b in bars)
    assert bars[-1].date == tws.last_session and bars[-1].close == tws.last_close("SPY")
    by_day = {b["date"]: b for b in series}
    for b in bars:
        want = by_day[b.date]
        assert (b.open, b.high, b.low, b.close, b.volume) == (want["open"], want["high"], want["low"],
                                                              want["close"], want["volume"])
    assert [b.date for b in bars] == sorted(b.date for b in bars)


# -- orders ----------------------------------------------------------------------------------------------------
def test_a_market_order_fills_with_its_order_ref_and_commission(tws, connect):
    ib = connect(tws, 3)
    spy = _spy(ib)
    trade = ib.placeOrder(spy, MarketOrder("BUY", 10, orderRef="tt-mkt-1"))
    _until(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills
           and trade.fills[-1].commissionReport.commission > 0)
    booked = tws.order_by_ref("tt-mkt-1")
    close = tws.last_close("SPY")
    assert booked is not None and booked.status == "Filled" and booked.client_id == 3
    assert booked.order_id == trade.order.orderId and trade.order.permId == booked.perm_id
    [fill] = trade.fills
    assert (fill.execution.orderRef, fill.execution.permId, fill.execution.side) == ("tt-mkt-1", booked.perm_id,
                                                                                     "BOT")
    assert (fill.execution.shares, fill.execution.price, fill.execution.orderId) == (10, close, booked.order_id)
    assert fill.commissionReport.commission == tws.executions[-1].commission == 1.0
    assert trade.orderStatus.avgFillPrice == close
    _until(ib, lambda: [(p.contract.conId, p.position) for p in ib.positions()] == [(756733, 10)])
    assert ib.positions()[0].avgCost == close and tws.positions == {"SPY": (10, close)}
    summary = {v.tag: v.value for v in ib.accountSummary()}
    assert float(summary["NetLiquidation"]) == pytest.approx(tws.net_liquidation(), abs=0.01)
    assert float(summary["TotalCashValue"]) == pytest.approx(100_000 - 10 * close - 1.0, abs=0.01)
    assert tws.cash == pytest.approx(100_000 - 10 * close - 1.0)


def test_a_bracket_goes_live_on_its_last_leg_and_every_field_reads_back(tws, connect):
    ib = connect(tws, 4)
    spy = _spy(ib)
    close = tws.last_close("SPY")
    entry, target, stop = round(close * 1.01, 2), round(close * 1.1, 2), round(close * 0.95, 2)
    parent, take, loss = ib.bracketOrder("BUY", 5, entry, target, stop)
    for leg, ref in ((parent, "br-1-entry"), (take, "br-1-target"), (loss, "br-1-stop")):
        leg.orderRef = ref
    trades = [ib.placeOrder(spy, parent), ib.placeOrder(spy, take)]
    _until(ib, lambda: tws.count("placeOrder") == 2)
    assert [o.status for o in tws.orders] == ["PendingSubmit", "PendingSubmit"]  # not transmitted yet
    trades.append(ib.placeOrder(spy, loss))
    _until(ib, lambda: [t.orderStatus.status for t in trades] == ["Filled", "Submitted", "PreSubmitted"])
    # a second client reads the legs back from the wire (not from the objects the first client built)
    other = connect(tws, 5)
    got = {t.order.orderRef: t for t in _run(other.reqAllOpenOrdersAsync())}
    assert set(got) == {"br-1-target", "br-1-stop"}
    tp, sl = got["br-1-target"].order, got["br-1-stop"].order
    booked_parent = tws.order_by_ref("br-1-entry")
    assert booked_parent is not None
    assert (tp.orderId, tp.clientId, tp.parentId, tp.action, tp.orderType, tp.totalQuantity, tp.lmtPrice) == (
        take.orderId, 4, parent.orderId, "SELL", "LMT", 5, target)
    assert (sl.orderId, sl.parentId, sl.action, sl.orderType, sl.totalQuantity, sl.auxPrice) == (
        loss.orderId, parent.orderId, "SELL", "STP", 5, stop)
    assert tp.permId == tws.order_by_ref("br-1-target").perm_id != sl.permId == tws.order_by_ref("br-1-stop").perm_id
    assert got["br-1-target"].orderStatus.status == "Submitted"
    # the target fills: the stop is cancelled (one-cancels-all) and the position is flat again
    tws.fill("br-1-target")
    _until(ib, lambda: [t.orderStatus.status for t in trades] == ["Filled", "Filled", "Cancelled"])
    assert trades[1].fills[-1].execution.price == target and trades[1].fills[-1].execution.orderRef == "br-1-target"
    assert tws.positions == {} and tws.order_by_ref("br-1-stop").status == "Cancelled"
    completed = {t.order.orderRef: t for t in _run(other.reqCompletedOrdersAsync(True))}
    assert completed["br-1-entry"].order.permId == booked_parent.perm_id
    assert completed["br-1-entry"].orderStatus.status == "Filled"
    assert completed["br-1-stop"].orderStatus.status == "Cancelled"
    assert completed["br-1-target"].order.lmtPrice == target


def test_cancel_is_confirmed_with_cancelled_and_202(tws, connect):
    ib = connect(tws, 2)
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    spy = _spy(ib)
    trade = ib.placeOrder(spy, LimitOrder("BUY", 1, round(tws.last_close("SPY") * 0.5, 2), orderRef="tt-lmt"))
    _until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    _until(ib, lambda: trade.orderStatus.status == "Cancelled" and 202 in codes)
    assert tws.order_by_ref("tt-lmt").status == "Cancelled" and tws.count("cancelOrder") == 1
    assert tws.executions == []
