"""The fake TWS (tests/fakes/tws_server.py) driven by ib_async 2.1.0 itself, so the adapter's tests stand on a
fake whose frames ib_async decodes to what the fake meant.

How ib_async runs here: its synchronous API (``IB().connect``, ``ib.qualifyContracts``, ``ib.sleep``) on this
thread's event loop, which ib_async creates and drives itself; the fake serves on its own thread and loop.
Every wait is bounded: ``_run`` wraps a coroutine in ``util.run(..., timeout=...)`` and ``_until`` polls with
``ib.sleep`` to a deadline, so a missing answer fails the test instead of hanging it. Every IB is disconnected
and every fake closed at teardown, and a fake that met a frame it could not handle fails the test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date

import pytest
from ib_async import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock, util
from ib_async.contract import Contract, ContractDetails
from ib_async.decoder import Decoder
from ib_async.objects import Execution
from ib_async.order import Order, OrderState
from ib_async.wrapper import RequestError

from tests.fakes.tws import wire
from tests.fakes.tws_server import REJECT_TEXT, TEXT, FakeTWS, TwsInstrument

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


def _until_disconnected(ib: IB, timeout: float = WAIT) -> None:
    """ib.sleep raises ConnectionError when the socket closes under it; that is the state waited for."""
    deadline = time.monotonic() + timeout
    while ib.isConnected():
        assert time.monotonic() < deadline, "the client did not see the disconnect in time"
        try:
            ib.sleep(0.01)
        except ConnectionError:
            pass


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


# -- scenarios -------------------------------------------------------------------------------------------------
def _errors(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: seen.append((req_id, code, text))
    return seen


def test_a_rejected_order_reaches_the_client_as_201_and_stays_inactive(tws, connect):
    ib = connect(tws, 2)
    errors = _errors(ib)
    tws.reject_next_order()
    trade = ib.placeOrder(_spy(ib), MarketOrder("BUY", 1, orderRef="tt-rej"))
    _until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert (trade.order.orderId, 201, REJECT_TEXT) in errors
    assert trade.log[-1].errorCode == 201
    booked = tws.order_by_ref("tt-rej")
    assert booked.status == "Inactive" and tws.executions == [] and tws.positions == {}
    [done] = _run(ib.reqCompletedOrdersAsync(True))
    assert (done.order.orderRef, done.order.permId, done.orderStatus.status) == ("tt-rej", booked.perm_id,
                                                                                 "Inactive")


def test_partial_fills_come_in_the_pieces_asked_for(tws, connect):
    ib = connect(tws, 2)
    spy = _spy(ib)
    tws.partial_fills([3, 7])
    trade = ib.placeOrder(spy, MarketOrder("BUY", 10, orderRef="tt-part"))
    _until(ib, lambda: trade.orderStatus.status == "Filled" and len(trade.fills) == 2)
    assert [(f.execution.shares, f.execution.cumQty) for f in trade.fills] == [(3, 3), (7, 10)]
    # a working limit order filled by hand, partly then the rest
    low = round(tws.last_close("SPY") * 0.9, 2)
    lmt = ib.placeOrder(spy, LimitOrder("BUY", 10, low, orderRef="tt-part-lmt"))
    _until(ib, lambda: lmt.orderStatus.status == "Submitted")
    tws.fill("tt-part-lmt", quantity=4)
    _until(ib, lambda: lmt.orderStatus.filled == 4)
    assert (lmt.orderStatus.status, lmt.orderStatus.remaining, lmt.fills[-1].execution.price) == ("Submitted", 6,
                                                                                                  low)
    tws.fill("tt-part-lmt")
    _until(ib, lambda: lmt.orderStatus.status == "Filled")
    assert tws.positions["SPY"][0] == 20
    with pytest.raises(ValueError, match="no working order"):
        tws.fill("tt-part-lmt")


def test_after_a_drop_the_reconnected_client_finds_the_same_perm_ids_and_order_refs(tws, connect):
    ib = connect(tws, 6)
    spy = _spy(ib)
    filled = ib.placeOrder(spy, MarketOrder("BUY", 2, orderRef="tt-keep-mkt"))
    working = ib.placeOrder(spy, LimitOrder("BUY", 1, round(tws.last_close("SPY") * 0.5, 2),
                                            orderRef="tt-keep-lmt"))
    _until(ib, lambda: filled.orderStatus.status == "Filled" and working.orderStatus.status == "Submitted")
    perm_mkt, perm_lmt = filled.order.permId, working.order.permId
    tws.drop_connections()
    assert tws.connections == 0
    _until_disconnected(ib)
    ib.connect(tws.host, tws.port, clientId=6, timeout=WAIT)
    open_ = {t.order.orderRef: t for t in _run(ib.reqAllOpenOrdersAsync())}
    assert list(open_) == ["tt-keep-lmt"]
    assert (open_["tt-keep-lmt"].order.permId, open_["tt-keep-lmt"].order.orderId) == (perm_lmt,
                                                                                       working.order.orderId)
    done = {t.order.orderRef: t for t in _run(ib.reqCompletedOrdersAsync(True))}
    assert done["tt-keep-mkt"].order.permId == perm_mkt and done["tt-keep-mkt"].orderStatus.status == "Filled"
    fills = _run(ib.reqExecutionsAsync(ExecutionFilter(clientId=6)))
    assert [(f.execution.orderRef, f.execution.permId, f.execution.shares) for f in fills] == [
        ("tt-keep-mkt", perm_mkt, 2)]
    # ib_async keeps the commission on the Fill it met first (the connect-time sync's), not on a later
    # reqExecutions' copy: read commissions from ib.fills()
    assert {f.execution.execId: f.commissionReport.commission for f in ib.fills()} == {fills[0].execution.execId: 1.0}
    assert _run(ib.reqExecutionsAsync(ExecutionFilter(clientId=99))) == []
    assert tws.seen_client_ids == [6, 6]


@pytest.mark.parametrize("code", [1100, 1101, 1102])
def test_connectivity_messages_reach_the_error_event(tws, connect, code):
    ib = connect(tws, 1)
    errors = _errors(ib)
    tws.connectivity(code)
    _until(ib, lambda: (-1, code, TEXT[code]) in errors)
    assert ib.isConnected()


def test_a_rolled_back_next_valid_id_never_makes_a_new_order_an_old_one(tws, connect):
    ib = connect(tws, 9)
    spy = _spy(ib)
    old = ib.placeOrder(spy, MarketOrder("BUY", 1, orderRef="tt-old"))
    still = ib.placeOrder(spy, LimitOrder("BUY", 1, round(tws.last_close("SPY") * 0.5, 2), orderRef="tt-still"))
    _until(ib, lambda: old.orderStatus.status == "Filled" and still.orderStatus.status == "Submitted")
    old_id, old_perm = old.order.orderId, old.order.permId
    ib.disconnect()
    tws.wait_until(lambda f: f.connections == 0)
    tws.rollback_next_valid_id(1)
    ib2 = connect(tws, 9)
    errors = _errors(ib2)
    assert tws.next_valid_ids[-1] == 1
    # the same orderId as the filled order: IB (and the fake) take it as a new order with a new permId
    again = MarketOrder("SELL", 1, orderRef="tt-new", orderId=old_id)
    new = ib2.placeOrder(spy, again)
    _until(ib2, lambda: new.orderStatus.status == "Filled")
    booked = [o for o in tws.orders if o.client_id == 9 and o.order_id == old_id]
    assert [(o.order_ref, o.status) for o in booked] == [("tt-old", "Filled"), ("tt-new", "Filled")]
    assert new.order.permId == booked[1].perm_id != old_perm
    assert [f.execution.orderRef for f in new.fills] == ["tt-new"]
    by_perm = {f.execution.permId: f.execution.orderRef for f in _run(ib2.reqExecutionsAsync())}
    assert by_perm == {old_perm: "tt-old", new.order.permId: "tt-new"}
    # the orderId of an order still working, from another connection: 103, and the working order is untouched
    clash = LimitOrder("BUY", 3, 1.0, orderRef="tt-clash", orderId=still.order.orderId)
    ib2.placeOrder(spy, clash)
    _until(ib2, lambda: any(code == 103 for _, code, _ in errors))
    assert tws.order_by_ref("tt-still").status == "Submitted" and tws.order_by_ref("tt-clash") is None


def test_a_second_connection_with_a_client_id_in_use_gets_326_and_is_closed(tws, connect):
    first = connect(tws, 5)
    second = IB()
    errors = _errors(second)
    closed: list[str] = []
    second.client.apiError += closed.append
    # ib_async itself would wait for its connect timeout; the 326 and the close arrive long before
    attempt = asyncio.ensure_future(second.connectAsync(tws.host, tws.port, clientId=5, timeout=WAIT),
                                    loop=util.getLoop())
    _until(first, lambda: (-1, 326, TEXT[326]) in errors and closed)
    assert "already in use" in closed[0]
    attempt.cancel()
    with pytest.raises((asyncio.CancelledError, ConnectionError)):
        _run(attempt)
    second.disconnect()
    assert first.isConnected() and tws.connections == 1 and tws.client_ids == [5]
    assert first.reqCurrentTime() is not None


def test_historical_pacing_is_enforced_with_162(tws, connect):
    ib = connect(tws, 1)
    errors = _errors(ib)
    spy = _spy(ib)
    tws.pacing_violation_next(1)
    assert len(ib.reqHistoricalData(spy, "", "30 D", "1 day", "TRADES", True, timeout=WAIT)) == 0
    assert errors[-1][1:] == (162, TEXT[162])
    assert len(ib.reqHistoricalData(spy, "", "30 D", "1 day", "TRADES", True, timeout=WAIT)) > 0
    # an identical request within 15 s
    ib.RaiseRequestErrors = True
    with pytest.raises(RequestError) as caught:
        ib.reqHistoricalData(spy, "", "30 D", "1 day", "TRADES", True, timeout=WAIT)
    assert caught.value.code == 162
    ib.RaiseRequestErrors = False


def test_more_than_five_requests_for_one_contract_in_two_seconds_get_162(connect):
    with FakeTWS(pacing_scale=0.5) as tws:  # 1 s for "two seconds": six requests sent together fall in it
        ib = connect(tws, 1)
        spy = _spy(ib)
        results = _run(asyncio.gather(*[ib.reqHistoricalDataAsync(spy, "", f"{10 + k} D", "1 day", "TRADES", True,
                                                                   timeout=WAIT) for k in range(6)]))
        assert sorted(len(r) > 0 for r in results) == [False, True, True, True, True, True]
        assert tws.problems == []


def test_more_than_sixty_requests_in_ten_minutes_get_162(connect):
    # 61 instruments, one request each: neither the identical-request nor the one-contract rule can apply,
    # however fast the machine; ten minutes × 0.05 = 30 s, far longer than the 61 requests take
    many = [TwsInstrument(5000 + k, f"S{k:02d}", f"STOCK {k}", "NYSE") for k in range(61)]
    with FakeTWS(instruments=many, pacing_scale=0.05) as tws:
        ib = connect(tws, 1)
        errors = _errors(ib)
        for k, inst in enumerate(many[:60]):
            bars = ib.reqHistoricalData(Contract(conId=inst.conid), "", "30 D", "1 day", "TRADES", True,
                                        timeout=WAIT)
            assert bars, f"request {k + 1} was refused: {errors[-3:]}"
        assert len(ib.reqHistoricalData(Contract(conId=many[60].conid), "", "30 D", "1 day", "TRADES", True,
                                        timeout=WAIT)) == 0
        assert errors[-1][1:] == (162, TEXT[162]) and tws.count("reqHistoricalData") == 61
        assert tws.problems == []


def test_a_held_order_is_booked_and_visible_but_answered_only_on_release(tws, connect):
    ib = connect(tws, 2)
    spy = _spy(ib)
    tws.hold_next_order()
    trade = ib.placeOrder(spy, MarketOrder("BUY", 4, orderRef="tt-held"))
    ib.reqCurrentTime()  # a round trip after placeOrder: an answer to it would have come first
    assert trade.orderStatus.status == "PendingSubmit" and trade.fills == []
    booked = tws.order_by_ref("tt-held")
    assert booked.status == "PreSubmitted" and booked.held and tws.executions == []
    other = connect(tws, 3)
    [seen] = _run(other.reqAllOpenOrdersAsync())
    assert (seen.order.orderRef, seen.order.permId, seen.order.clientId) == ("tt-held", booked.perm_id, 2)
    tws.release_held()
    _until(ib, lambda: trade.orderStatus.status == "Filled" and len(trade.fills) == 1)
    assert trade.order.permId == booked.perm_id and tws.positions["SPY"][0] == 4


def test_an_order_booked_by_another_program_is_in_all_open_orders_only(tws, connect):
    ib = connect(tws, 1)
    booked = tws.book("AAPL", "BUY", 5, order_ref="ext-1", client_id=3)
    assert _run(ib.reqOpenOrdersAsync()) == []
    [seen] = _run(ib.reqAllOpenOrdersAsync())
    assert (seen.order.orderRef, seen.order.permId, seen.order.clientId, seen.order.orderId) == (
        "ext-1", booked.perm_id, 3, booked.order_id)
    assert seen.order.lmtPrice == booked.lmt_price == round(tws.last_close("AAPL") * 0.5, 2)
    assert seen.contract.conId == 265598 and seen.orderStatus.status == "Submitted"


def test_refused_connections_come_back_on_the_same_port(tws, connect):
    ib = connect(tws, 1)
    port = tws.port
    tws.refuse_connections(1.5)  # long enough that a loaded machine still meets the refusal
    _until_disconnected(ib)
    with pytest.raises(ConnectionRefusedError):
        IB().connect(tws.host, port, clientId=1, timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            ib.connect(tws.host, port, clientId=1, timeout=WAIT)
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the fake did not listen again"
            ib.sleep(0.05)
    assert ib.isConnected() and tws.port == port and tws.connections == 1


def test_every_frame_is_logged_at_debug(tws, connect, caplog):
    with caplog.at_level(logging.DEBUG, logger="tests.fakes.tws"):
        ib = connect(tws, 4)
        ib.reqCurrentTime()
    lines = [r.getMessage() for r in caplog.records if r.name == "tests.fakes.tws"]
    assert any(m.startswith("<<< ") and ",71,2,4," in f",{m.split(' ', 2)[2]}," for m in lines)
    assert any(m.startswith(">>> ") and m.endswith(" 15,1,DU1234567") for m in lines)
    assert any(m.startswith("<<< ") and m.endswith(" 49,1") for m in lines)


def test_market_data_comes_live_or_delayed_as_asked(tws, connect):
    ib = connect(tws, 1)
    spy, aapl = ib.qualifyContracts(Stock("SPY", "SMART", "USD"), Stock("AAPL", "SMART", "USD"))
    *_, before, last = tws.bars("SPY")
    ticker = ib.reqMktData(spy, "", snapshot=True)
    _until(ib, lambda: ticker.last == last["close"] and ticker.volume == last["volume"])
    assert (ticker.close, ticker.bid, ticker.ask, ticker.marketDataType) == (
        before["close"], round(last["close"] - 0.01, 2), round(last["close"] + 0.01, 2), 1)
    ib.reqMarketDataType(3)
    delayed = ib.reqMktData(aapl, "", snapshot=True)
    _until(ib, lambda: delayed.last == tws.last_close("AAPL") and delayed.marketDataType == 3)
    assert tws.count("reqMarketDataType") == 1 and tws.count("reqMktData") == 2


@pytest.mark.parametrize("code, answered", [(354, False), (10168, False), (10167, True)])
def test_market_data_errors_end_the_request_or_warn(tws, connect, code, answered):
    ib = connect(tws, 1)
    errors = _errors(ib)
    tws.market_data_error_next(code)
    bars = ib.reqHistoricalData(_spy(ib), "", "30 D", "1 day", "TRADES", True, timeout=WAIT)
    assert (len(bars) > 0) is answered
    assert any(c == code and text == TEXT[code] for _, c, text in errors)
