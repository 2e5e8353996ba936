"""IBKR failure modes, each driven through the real adapter against the fake gateway: an expired session
(401) reopened with ssodh/init, 429 back-off, 503, a competing session, a duplicate cOID, a slow or dropped
answer to an order, ``reply id not found``; every ambiguous order ends UNKNOWN and is settled by
reconciliation with exactly one order at the gateway, never a blind resend."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.ibkr import HISTORY, PLACE, SCALE, SEARCH, SPY, ibkr_app, local_orders, posted_tickets, steps
from tradetrail.catalogue.symbols import resolve_symbol, search_symbols
from tradetrail.db.trading_models import OrderEvent
from tradetrail.domain.orders import OrderType, Side, bracket
from tradetrail.ibkr.client import SessionKeeper
from tradetrail.marketdata.port import MarketDataError
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.trading.broker_status import broker_status, start_session_keeper
from tradetrail.trading.orders import save_intents, send
from tradetrail.trading.reconcile import reconcile

SSODH = "POST /iserver/auth/ssodh/init"


@pytest.fixture
def gw():
    with FakeGateway(pacing_scale=SCALE) as gateway:
        yield gateway


def run(app, user_id: int) -> dict:
    return get_execution(app, run_strategy(app, user_id, "demo").execution_id)


def one_bracket_at_the_gateway(gw: FakeGateway, app) -> None:
    """Exactly one bracket (three orders, one parent with our cOID) at IBKR, and our legs name them."""
    assert len(gw.orders) == 3
    parents = [o for o in gw.orders.values() if o.parent is None]
    assert len(parents) == 1 and sum(1 for o in gw.orders.values() if o.parent == parents[0].order_id) == 2
    legs = local_orders(app)
    assert parents[0].coid == legs[0].client_order_id
    assert sorted(int(o.broker_order_id) for o in legs) == sorted(gw.orders)


# -- the session ------------------------------------------------------------------------------------------
def test_a_401_after_idle_reopens_the_brokerage_session_once_and_the_call_goes_on(settings, gw):
    app = ibkr_app(settings, gw)
    gw.expire_session()
    found = search_symbols(app, "SPY")
    assert [x["conid"] for x in found] == [SPY]
    assert gw.count(SSODH) == 1 and gw.count(SEARCH) == 2  # 401, ssodh/init, the same read again
    assert broker_status(app)["session"]["reopened"] == 1

    gw.idle_timeout_s = 0.2  # idle long enough and the session is gone again: the health check reopens it
    time.sleep(0.3)
    assert app.broker.health().healthy and gw.count(SSODH) == 2
    gw.idle_timeout_s = None
    user_id = init(app)["user_id"]
    assert run(app, user_id)["status"] == "succeeded"
    assert gw.count(SSODH) == 2


def test_a_session_that_cannot_be_reopened_fails_check_broker_with_a_clear_message(settings, gw):
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    gw.expire_session()
    gw.fail_next(SSODH, 401)
    execution = run(app, user_id)
    assert (execution["status"], execution["failed_step"]) == ("failed", "check_broker")
    assert "not authenticated" in execution["error"] and "log in to the gateway" in execution["error"]
    assert gw.orders == {}


def test_a_competing_session_fails_check_broker_and_is_not_kicked_out(settings, gw):
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    gw.competing = True
    execution = run(app, user_id)
    assert execution["failed_step"] == "check_broker"
    assert "competing session" in execution["error"]
    assert gw.count(SSODH) == 0  # TRADETRAIL_IBKR_COMPETE is off: never take over someone's session


def test_the_keepalive_tickles_and_reopens_a_dropped_session(settings, gw):
    app = ibkr_app(settings, gw)
    assert start_session_keeper(ibkr_app(settings, gw, broker="simulated", market_data="sample")) is None
    keeper = SessionKeeper(app.ibkr_session(), 0.1).start()
    try:
        gw.expire_session()
        deadline = time.monotonic() + 5
        while gw.count(SSODH) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        keeper.stop()
    assert gw.count("POST /tickle") >= 1 and gw.count(SSODH) == 1 and gw.authenticated
    assert not keeper.running and app.ibkr_session().info["last_tickle"] is not None


# -- pacing -----------------------------------------------------------------------------------------------
def test_a_429_backs_off_for_retry_after_is_recorded_and_not_hammered(settings, gw):
    app = ibkr_app(settings, gw)
    md = app.market_data()
    with app.Session() as s:
        contract = resolve_symbol(s, md, "SPY").contract
    gw.fail_next(HISTORY, 429, {"error": "Too many history charts requests"}, {"Retry-After": "0.5"})
    bars = md.daily_bars(contract, as_of=datetime.now(UTC), lookback=300)
    assert len(bars) == 300
    times = [t for t, route, _, _ in gw.log if route == HISTORY]
    assert len(times) == 2 and times[1] - times[0] >= 0.45  # waited out Retry-After, then asked once more
    [event] = broker_status(app)["session"]["pacing"]["rate_limited"]
    assert (event["endpoint"], event["status"], event["backoff_s"]) == ("history", 429, 0.5)

    gw.fail_next(SEARCH, 429, {"error": "Too Many Requests"}, {"Retry-After": "0.1"}, times=5)
    with pytest.raises(MarketDataError, match="429"):
        search_symbols(app, "AAPL")
    assert gw.count(SEARCH) == 3  # one search above (SPY) + two tries here, not five
    assert gw.violations == []


def test_a_503_on_a_read_is_tried_once_more_then_fails_the_step_clearly(settings, gw):
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    gw.fail_next(HISTORY, 503, times=2)
    execution = run(app, user_id)
    assert execution["failed_step"] == "fetch_market_data"
    assert "503 service unavailable" in execution["error"]
    assert gw.count(HISTORY) == 2
    gw.fail_next(HISTORY, 503)  # once: the retry succeeds
    assert run(app, user_id)["status"] == "succeeded"


# -- ambiguous orders -------------------------------------------------------------------------------------
def assert_unknown_then_settled(app, gw, user_id: int, reason: str, *, resent: bool) -> dict:
    legs = local_orders(app)
    assert [o.state for o in legs] == ["UNKNOWN"] * 3 and all(reason in (o.reason or "") for o in legs)
    report = reconcile(app, user_id)
    assert report["adopted"] == [] and report["position_mismatches"] == []
    assert report["resent"] == ([legs[0].client_order_id] if resent else [])
    one_bracket_at_the_gateway(gw, app)
    assert [(o.leg, o.state) for o in local_orders(app)] == \
        [("entry", "FILLED"), ("stop", "SUBMITTED"), ("target", "SUBMITTED")]
    again = reconcile(app, user_id)
    assert (again["resent"], again["adopted"], again["notes"]) == ([], [], [])
    assert gw.violations == []
    return report


def test_a_slow_answer_leaves_the_order_unknown_and_reconciliation_finds_it(settings, gw):
    app = ibkr_app(settings, gw, ibkr_timeout_s=0.5)
    user_id = init(app)["user_id"]
    gw.slow[PLACE] = 1.5
    execution = run(app, user_id)
    assert execution["failed_step"] == "place_order" and "ambiguous" in execution["error"]
    gw.slow.clear()
    report = assert_unknown_then_settled(app, gw, user_id, "no answer within 0.5 s", resent=False)
    assert any("found at the broker" in n for n in report["notes"])
    assert len(posted_tickets(gw)) == 1


def test_a_connection_dropped_after_the_gateway_booked_the_order_is_reconciled_without_a_resend(settings, gw):
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    gw.drop_after_accept = True
    execution = run(app, user_id)
    assert execution["failed_step"] == "place_order"
    gw.drop_after_accept = False
    assert_unknown_then_settled(app, gw, user_id, "dropped", resent=False)
    assert len(posted_tickets(gw)) == 1


def test_a_503_on_the_order_post_is_ambiguous_and_the_provably_absent_order_is_sent_once(settings, gw):
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    gw.fail_next(PLACE, 503)
    assert run(app, user_id)["failed_step"] == "place_order"
    assert gw.orders == {}  # the gateway never booked it; only a complete read may prove that
    assert_unknown_then_settled(app, gw, user_id, "503", resent=True)
    assert len(posted_tickets(gw)) == 2  # the refused one, and the one reconciliation sent


@pytest.mark.parametrize("mode", ["discard", "live"])
def test_reply_id_not_found_is_ambiguous_and_settled_by_what_the_gateway_holds(settings, gw, mode):
    gw.questions = ["o163"]
    gw.void_next_reply = mode  # the question expired; on paper the order has been seen to go live anyway
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    execution = run(app, user_id)
    assert execution["failed_step"] == "place_order" and "reply id not found" in execution["error"]
    assert_unknown_then_settled(app, gw, user_id, "reply id not found", resent=mode == "discard")


def test_a_duplicate_client_order_id_is_recognised_as_already_placed(settings, gw):
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    account = app.broker.account(user_id)
    with app.Session() as s:
        contract = resolve_symbol(s, app.market_data(), "SPY").contract
    specs = bracket("dup-exec", Side.BUY, 10, entry_type=OrderType.LMT, entry_price=100.0, stop_price=90.0,
                    target_price=300.0)
    assert app.broker.place(account, contract, specs).status == "accepted"  # an earlier, forgotten placement
    rows = save_intents(app, user_id=user_id, strategy_id=None, execution_id=None, account=account,
                        contract=contract, specs=specs)
    outcome = send(app, rows)
    assert outcome.status == "ambiguous" and "already registered" in outcome.reason
    assert {o.state for o in local_orders(app)} == {"UNKNOWN"}
    report = reconcile(app, user_id)
    assert report["resent"] == [] and report["adopted"] == []
    assert sorted(report["notes"]) == sorted(f"{s.client_order_id}: found at the broker, now SUBMITTED" for s in specs)
    assert [o.state for o in local_orders(app)] == ["SUBMITTED"] * 3  # the limit is below the market: working
    one_bracket_at_the_gateway(gw, app)
    with app.Session() as s:
        trail = [e.detail for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id == rows[0].id)
                                             .order_by(OrderEvent.id))]
    assert any("already registered" in d for d in trail) and trail[-1] == "the broker has it"


def test_cancel_is_accepted_first_and_done_later(settings, gw):
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    assert run(app, user_id)["status"] == "succeeded"
    stop = local_orders(app)[1]
    gw.cancel_delay_s = 0.3
    assert app.broker.cancel(stop.account, stop.broker_order_id) is True
    assert {bo.status for bo in app.broker.orders(stop.account)
            if bo.broker_order_id == stop.broker_order_id} == {"SUBMITTED"}  # PendingCancel: not yet
    time.sleep(0.4)
    statuses = {bo.client_order_id: bo.status for bo in app.broker.orders(stop.account)}
    assert statuses[stop.client_order_id] == "CANCELLED"
    assert statuses[local_orders(app)[2].client_order_id] == "CANCELLED"  # its sibling, one-cancels-other
    assert app.broker.cancel(stop.account, stop.broker_order_id) is False  # nothing left to cancel
    assert steps(run(app, user_id))["risk_check"]["status"] == "succeeded"
