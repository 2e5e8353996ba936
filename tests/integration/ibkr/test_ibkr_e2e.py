"""The real executor, the real IBKR adapters (ibind underneath) and a fake CP gateway on a real socket:
search → history → indicators → analysis → a bracket with a confirmation → fills → positions → portfolio,
and the caches that spare IBKR on repeated runs (counted at the gateway)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.fakes.ibkr_gateway import QUESTION_TEXT, FakeGateway
from tests.support.ibkr import (  # noqa: F401
    BIN,
    HISTORY,
    INFO,
    PLACE,
    SCALE,
    SEARCH,
    SPY,
    ibkr_app,
    ibkr_env,
    local_orders,
    posted_tickets,
    steps,
    tt,
)
from tradetrail.db.trading_models import Fill, Position
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import get_execution, run_strategy


@pytest.fixture
def gw():
    with FakeGateway(pacing_scale=SCALE) as gateway:
        yield gateway


def test_a_run_places_a_bracket_through_a_confirmation_and_books_the_fill(settings, gw):
    gw.questions = ["o163"]
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert run["status"] == "succeeded", run["error"]
    st = steps(run)
    assert st["check_broker"]["output"]["healthy"] is True and st["check_broker"]["output"]["paper"] is True
    resolved = st["resolve_contract"]["output"]
    # init resolved SPY through the symbol cache (tests/test_init_symbol_cache.py): the run is served from it
    assert (resolved["contract"]["conid"], resolved["contract"]["exchange"], resolved["cache"]) == (SPY, "ARCA", "hit")
    assert st["fetch_market_data"]["output"]["daily"]["count"] == 1000  # the gateway answers at most 1,000 bars
    assert st["analyze"]["output"]["answer"]["action"] == "BUY"

    placed = st["place_order"]["output"]
    assert placed["status"] == "accepted"
    [question] = placed["questions"]
    assert (question["message_ids"], question["text"], question["answered"]) == (["o163"], QUESTION_TEXT["o163"], "yes")

    # What reached IBKR: one POST; the parent carries our cOID, the children parentId and no cOID of their own.
    entry, stop, target = local_orders(app)
    [[p, s, t]] = posted_tickets(gw)
    assert (p["cOID"], p["orderType"], p["side"], p["tif"]) == (entry.client_order_id, "MKT", "BUY", "DAY")
    assert "parentId" not in p
    for child, ours, price in ((s, stop, stop.stop_price), (t, target, target.limit_price)):
        assert "cOID" not in child and child["parentId"] == entry.client_order_id
        assert (child["orderType"], child["side"], child["price"], child["tif"]) == \
            (ours.order_type, "SELL", price, "GTC")
    assert {x["conid"] for x in (p, s, t)} == {SPY} and {x["acctId"] for x in (p, s, t)} == {gw.account}
    assert p["quantity"] == s["quantity"] == t["quantity"] == entry.quantity > 0

    # Our books equal the gateway's: the entry filled at the last close, the protection works.
    assert [(o.leg, o.state) for o in (entry, stop, target)] == \
        [("entry", "FILLED"), ("stop", "SUBMITTED"), ("target", "SUBMITTED")]
    assert sorted(int(o.broker_order_id) for o in (entry, stop, target)) == sorted(gw.orders)
    assert gw.orders[int(entry.broker_order_id)].coid == entry.client_order_id
    assert gw.orders[int(stop.broker_order_id)].order_type == "STP"
    with app.Session() as db:
        [fill] = db.scalars(select(Fill)).all()
        position = db.scalar(select(Position).where(Position.symbol == "SPY"))
    assert (fill.quantity, fill.price, fill.commission) == (entry.quantity, gw.last_close(SPY), 1.0)
    assert position.quantity == gw.positions[SPY][0] == entry.quantity
    portfolio = st["update_portfolio"]["output"]
    assert portfolio["equity"] == pytest.approx(gw._equity()) and portfolio["cash"] == pytest.approx(gw.cash)
    assert [(x["symbol"], x["quantity"]) for x in portfolio["positions"]] == [("SPY", entry.quantity)]
    assert gw.violations == []

    # Run again (same process, then a fresh one): the symbol and bar caches answer, IBKR is not asked.
    before = {route: gw.count(route) for route in (SEARCH, INFO, HISTORY)}
    for application in (app, ibkr_app(settings, gw)):
        again = get_execution(application, run_strategy(application, user_id, "demo").execution_id)
        assert again["status"] == "succeeded", again["error"]
        assert steps(again)["resolve_contract"]["output"]["cache"] == "hit"
        assert steps(again)["fetch_market_data"]["output"]["daily"]["count"] == 1000
        assert steps(again)["risk_check"]["output"]["denials"][0]["rule"] == "position_open"
    assert {route: gw.count(route) for route in before} == before
    assert len(posted_tickets(gw)) == 1 and gw.violations == []


def test_a_question_off_the_allow_list_declines_the_order_and_is_recorded(settings, gw):
    gw.questions = ["o163", "o354"]  # chained: the first is allowed, the second is not
    app = ibkr_app(settings, gw)
    user_id = init(app)["user_id"]
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert (run["status"], run["failed_step"]) == ("failed", "place_order")
    out = steps(run)["place_order"]["output"]
    assert out["status"] == "declined"
    assert [(q["message_ids"], q["answered"], q["text"]) for q in out["questions"]] == \
        [(["o163"], "yes", QUESTION_TEXT["o163"]), (["o354"], "no", QUESTION_TEXT["o354"])]
    assert "confirmation o354 is not on the allow-list" in run["error"]
    replies = [body for _, route, _, body in gw.log if route == "POST /iserver/reply/{id}"]
    assert replies == [{"confirmed": True}, {"confirmed": False}]
    assert gw.orders == {}  # nothing was booked
    assert {(o.state, o.broker_order_id) for o in local_orders(app)} == {("CANCELLED", None)}
    assert all("o354" in o.reason for o in local_orders(app))


@pytest.mark.once  # what is tested (queues, processes, the CLI) is the same on either backend
def test_the_command_line_demo_places_a_bracket_and_reuses_the_caches(cli_env, gw):
    env = ibkr_env(cli_env, gw)
    assert tt(env, "init").returncode == 0
    first = tt(env, "run", "demo", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    data = json.loads(first.stdout)
    assert data["status"] == "succeeded"
    st = steps(data)
    assert st["resolve_contract"]["output"]["contract"]["conid"] == SPY
    orders = st["place_order"]["output"]["orders"]
    assert len(orders) == 3 and all(state == "SUBMITTED" for state in orders.values())
    [[parent, *_]] = posted_tickets(gw)
    assert parent["cOID"] == next(c for c in orders if c.endswith("-entry"))
    counted = {route: gw.count(route) for route in (SEARCH, INFO, HISTORY)}
    second = tt(env, "run", "demo", "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    assert steps(json.loads(second.stdout))["resolve_contract"]["output"]["cache"] == "hit"
    assert {route: gw.count(route) for route in counted} == counted  # a new process, the same caches
    assert len(posted_tickets(gw)) == 1 and gw.violations == []


def test_a_strategy_trades_at_ibkr_while_the_default_broker_is_the_simulator(settings, gw):
    from tradetrail.runtime.startup import reconcile_all
    from tradetrail.schemas.strategy import MarketDataConfig, StrategyConfig
    from tradetrail.services.strategies.configs import save_strategy

    app = ibkr_app(settings, gw, broker="simulated", market_data="sample")
    user_id = init(app)["user_id"]
    with app.Session() as s:
        save_strategy(s, app, user_id, "spy", StrategyConfig(symbol="SPY", broker="ibkr_web",
                                                             market_data=MarketDataConfig(source="ibkr")))
    run = get_execution(app, run_strategy(app, user_id, "spy").execution_id)
    assert run["status"] == "succeeded", run["error"]
    assert steps(run)["check_broker"]["output"]["broker"] == "ibkr_web"
    assert steps(run)["place_order"]["output"]["status"] == "accepted"
    assert {(o.broker, o.account) for o in local_orders(app)} == {("ibkr_web", gw.account)}
    assert len(gw.orders) == 3 and app.broker.name == "simulated"
    reports = reconcile_all(app)
    assert set(reports) == {"demo", "demo@ibkr_web"}
    assert reports["demo@ibkr_web"]["account"] == gw.account and reports["demo"]["account"].startswith("SIM")
    assert reports["demo@ibkr_web"]["resent"] == [] and reports["demo@ibkr_web"]["position_mismatches"] == []
