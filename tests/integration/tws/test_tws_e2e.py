"""The demo strategy end to end with ``TRADETRAIL_BROKER=ibkr_tws TRADETRAIL_MARKET_DATA=ibkr_tws`` on the real
executor, the real TWS adapters (ib_async underneath) and the fake TWS on a real socket: search → bars →
indicators → analysis → bracket → fill → positions → portfolio, and the caches that spare the gateway on
repeated runs (counted at the fake)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.integration.tws.tws_harness import (  # noqa: F401
    SPY,
    local_orders,
    make_app_fixture,
    steps,
    tt,
    tws_env,
    tws_fixture,
)
from tradetrail.db.trading_models import Fill, Position
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import get_execution, run_strategy


def test_the_demo_places_a_bracket_through_tws_and_books_the_fill(settings, tws, make_app):
    app = make_app(settings, tws)
    user_id = init(app)["user_id"]
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert run["status"] == "succeeded", run["error"]
    st = steps(run)
    assert st["check_broker"]["output"]["broker"] == "ibkr_tws"
    assert st["check_broker"]["output"]["healthy"] is True and st["check_broker"]["output"]["paper"] is True
    resolved = st["resolve_contract"]["output"]
    # init resolved SPY (the demo under IBKR data) through the symbol cache: the run is served from it
    assert (resolved["contract"]["conid"], resolved["contract"]["exchange"], resolved["cache"]) == (SPY, "ARCA", "hit")
    assert resolved["contract"]["source"] == "ibkr_tws"
    assert st["fetch_market_data"]["output"]["daily"]["count"] == 1000
    assert st["fetch_market_data"]["output"]["daily"]["last_close"] == tws.last_close("SPY")
    assert st["analyze"]["output"]["answer"]["action"] == "BUY"
    placed = st["place_order"]["output"]
    assert (placed["status"], placed["questions"]) == ("accepted", [])

    # What reached TWS: one bracket, every leg with its client order id as orderRef, the children under the
    # parent's order id, transmit on the last leg only.
    entry, stop, target = local_orders(app)
    at_tws = tws.orders
    assert [o.order_ref for o in at_tws] == [entry.client_order_id, stop.client_order_id, target.client_order_id]
    parent = at_tws[0]
    assert (parent.order_type, parent.action, parent.parent_id, parent.tif) == ("MKT", "BUY", 0, "DAY")
    assert [(o.order_type, o.action, o.parent_id, o.tif) for o in at_tws[1:]] == \
        [("STP", "SELL", parent.order_id, "GTC"), ("LMT", "SELL", parent.order_id, "GTC")]
    assert (at_tws[1].aux_price, at_tws[2].lmt_price) == (stop.stop_price, target.limit_price)
    assert {o.quantity for o in at_tws} == {entry.quantity} and {o.account for o in at_tws} == {tws.account}
    assert tws.count("placeOrder") == 3

    # Our books equal the fake's: the entry filled at the last close, the protection works; ids are permIds.
    assert [(o.leg, o.state) for o in (entry, stop, target)] == \
        [("entry", "FILLED"), ("stop", "SUBMITTED"), ("target", "SUBMITTED")]
    assert [o.broker_order_id for o in (entry, stop, target)] == [str(o.perm_id) for o in at_tws]
    with app.Session() as db:
        [fill] = db.scalars(select(Fill)).all()
        position = db.scalar(select(Position).where(Position.symbol == "SPY"))
    [execution] = tws.executions
    assert (fill.exec_id, fill.quantity, fill.price, fill.commission) == \
        (execution.exec_id, entry.quantity, tws.last_close("SPY"), execution.commission)
    assert position.quantity == tws.positions["SPY"][0] == entry.quantity
    portfolio = st["update_portfolio"]["output"]
    assert portfolio["broker"] == "ibkr_tws" and portfolio["account"] == tws.account
    assert portfolio["equity"] == pytest.approx(tws.net_liquidation()) and portfolio["cash"] == pytest.approx(tws.cash)
    assert [(x["symbol"], x["quantity"]) for x in portfolio["positions"]] == [("SPY", entry.quantity)]

    # Run again (the same app, then a fresh one: a second connection, clientId 2): the symbol and bar caches
    # answer, TWS is not asked for contracts or bars, and the open position stops a second entry.
    before = {name: tws.count(name) for name in ("reqContractDetails", "reqHistoricalData")}
    for application in (app, make_app(settings, tws)):
        again = get_execution(application, run_strategy(application, user_id, "demo").execution_id)
        assert again["status"] == "succeeded", again["error"]
        assert steps(again)["resolve_contract"]["output"]["cache"] == "hit"
        assert steps(again)["fetch_market_data"]["output"]["daily"]["count"] == 1000
        assert steps(again)["risk_check"]["output"]["denials"][0]["rule"] == "position_open"
    assert {name: tws.count(name) for name in before} == before
    assert tws.count("placeOrder") == 3 and len(tws.orders) == 3
    assert tws.seen_client_ids == [1, 2]


@pytest.mark.once  # what is tested (the command line, a process of its own) is the same on either backend
def test_the_command_line_demo_runs_end_to_end_on_tws(cli_env, tws):
    env = tws_env(cli_env, tws)
    assert tt(env, "init").returncode == 0
    first = tt(env, "run", "demo", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    data = json.loads(first.stdout)
    assert data["status"] == "succeeded"
    orders = steps(data)["place_order"]["output"]["orders"]
    assert len(orders) == 3 and set(orders.values()) == {"SUBMITTED"}
    assert [o.order_ref for o in tws.orders] == sorted(orders, key=lambda c: ("entry", "stop", "target").index(
        c.rsplit("-", 1)[1]))
    bars = tws.count("reqHistoricalData")
    second = tt(env, "run", "demo", "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    assert steps(json.loads(second.stdout))["resolve_contract"]["output"]["cache"] == "hit"
    assert tws.count("reqHistoricalData") == bars and len(tws.orders) == 3
