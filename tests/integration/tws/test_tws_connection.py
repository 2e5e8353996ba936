"""The process's TWS connection against the fake: health (connected, the managed account, data farms), the
gateway's daily restart failing check_broker with a clear message (never "0 bars") and the connection coming
back by itself, 1100/1101/1102, a drop and the reconnection on the same clientId, a duplicate clientId as a
clear error, and processes sharing one gateway with a clientId each."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from tests.integration.tws.tws_harness import (  # noqa: F401
    local_orders,
    make_app_fixture,
    steps,
    tt,
    tws_env,
    tws_fixture,
    until,
)
from tradetrail.db.trading_models import Position
from tradetrail.runtime.health import health_report
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.trading.broker_status import broker_status, start_session_keeper

pytestmark = pytest.mark.once  # the connection to the gateway: the same on either backend


def test_health_reports_the_connection_the_managed_account_and_the_data_farms(settings, tws, make_app):
    app = make_app(settings, tws)
    health = app.broker.health()
    assert (health.broker, health.healthy, health.paper, health.message) == ("ibkr_tws", True, True, "")
    status = broker_status(app)
    assert status["healthy"] is True and status["account"] == tws.account
    session = status["session"]
    assert (session["api"], session["client_id"], session["port"], session["accounts"]) == \
        ("tws", 1, tws.port, [tws.account])
    assert session["farms"] == {"usfarm": "ok", "ushmds": "ok", "secdefnj": "ok"}
    assert session["synced"]["epoch"] == 1 and session["synced"]["open_orders_all_clients"] == 0
    checks = health_report(app)["checks"]
    assert checks["ibkr_session"]["ok"] is True and checks["ibkr_session"]["api"] == "tws"
    assert checks["broker"]["ok"] is True


def test_a_configured_account_the_login_does_not_manage_is_not_healthy(settings, tws, make_app):
    health = make_app(settings, tws, tws_account="DU999").broker.health()
    assert not health.healthy and health.connected
    assert "TRADETRAIL_TWS_ACCOUNT=*** is not among the accounts this login manages (DU***67)" in health.message


def test_during_the_daily_restart_check_broker_fails_clearly_and_the_connection_comes_back(settings, tws, make_app):
    app = make_app(settings, tws)
    user_id = init(app)["user_id"]
    conn = app.tws_connection()
    assert conn.connected
    tws.refuse_connections(3.0)  # every connection closed; the port refuses connections for 3 s
    until(lambda: not conn.connected, what="the drop")
    started = time.monotonic()
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert (run["status"], run["failed_step"]) == ("failed", "check_broker")
    assert "refused the connection" in run["error"] and "IBC restarts it daily" in run["error"], run["error"]
    assert time.monotonic() - started < 15  # a clear failure, not a wait
    assert tws.count("reqHistoricalData") == 0  # no run got as far as the bars
    report = health_report(app)["checks"]["ibkr_session"]
    assert report["ok"] is False and "not connected" in report["reason"]

    until(lambda: conn.connected, timeout=30, what="the reconnection after the restart")  # backoff ≤ 1 s here
    assert tws.seen_client_ids == [1, 1]
    again = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert again["status"] == "succeeded", again["error"]
    assert steps(again)["fetch_market_data"]["output"]["daily"]["count"] == 1000


def test_a_drop_reconnects_on_the_same_client_id_and_the_serving_process_reconciles(settings, tws, make_app):
    app = make_app(settings, tws)
    user_id = init(app)["user_id"]
    conn = app.tws_connection()
    watcher = start_session_keeper(app)  # what serve starts: no keep-alive, a reconciliation per reconnection
    assert watcher is not None and watcher.runs == []
    run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert run["status"] == "succeeded", run["error"]
    stop = tws.orders[1]
    tws.refuse_connections(2.0)  # dropped, and no reconnection for 2 s
    tws.fill(stop.order_ref)  # the stop fills while we are away
    until(lambda: watcher.runs == [2], timeout=30, what="the reconciliation after the reconnection")
    watcher.stop()
    assert (tws.seen_client_ids, conn.status()["drops"], conn.status()["synced"]["epoch"]) == ([1, 1], 1, 2)
    states = {o.client_order_id: o.state for o in local_orders(app)}
    assert states[stop.order_ref] == "FILLED" and states[tws.orders[2].order_ref] == "CANCELLED"  # OCA at TWS
    with app.Session() as s:
        assert s.scalar(select(Position.quantity).where(Position.symbol == "SPY")) == 0
    assert app.broker.account_values(tws.account).equity == pytest.approx(tws.net_liquidation())


def test_connectivity_lost_is_unhealthy_until_restored_and_1101_resubscribes(settings, tws, make_app):
    app = make_app(settings, tws)
    conn = app.tws_connection()
    assert app.broker.health().healthy
    tws.connectivity(1100)
    until(lambda: conn.status()["ib_connectivity"] == "lost", what="1100 seen")
    health = app.broker.health()
    assert not health.healthy and not health.connected and "(1100)" in health.message
    assert health_report(app)["checks"]["ibkr_session"]["ok"] is False
    tws.connectivity(1102)
    until(lambda: app.broker.health().healthy, what="1102 restoring health")

    updates = tws.count("reqAccountUpdates")
    tws.connectivity(1101)  # restored, data lost: our subscriptions are asked for again
    until(lambda: conn.status()["resubscribed"] == 1, what="the resubscription after 1101")
    assert tws.count("reqAccountUpdates") == updates + 1
    assert tws.count("reqAccountSummary") == 0  # no summary is held open (TWS allows two)
    assert app.broker.health().healthy


def test_a_client_id_held_elsewhere_is_skipped_and_none_left_is_a_clear_error(settings, tws, make_app):
    first = make_app(settings, tws)
    assert first.broker.health().healthy
    second = make_app(settings, tws)  # another process of the deployment: the next clientId of the span
    assert second.broker.health().healthy
    assert tws.client_ids == [1, 2] and second.tws_connection().client_id == 2

    lone = make_app(settings, tws, tws_client_id=1, tws_client_id_span=1)
    started = time.monotonic()
    health = lone.broker.health()
    assert time.monotonic() - started < 4.0  # 326 is answered at once: no connect timeout waited out
    assert not health.healthy and not health.connected
    assert "clientId this deployment may use (1..1" in health.message and "error 326" in health.message
    assert "TRADETRAIL_TWS_CLIENT_ID" in health.message
    assert tws.client_ids == [1, 2]  # the two holders kept their connections


def test_two_processes_share_the_gateway_with_a_client_id_each(settings, cli_env, tws, make_app):
    """The serving process holds clientId 1; a command run beside it takes clientId 2, trades, and its bracket
    is visible to the serving process (all clients' open orders), which cannot cancel it (TWS lets only the
    placing client do that) but says so."""
    serving = make_app(settings, tws)
    assert serving.broker.health().healthy and tws.client_ids == [1]
    env = tws_env(cli_env, tws)
    assert tt(env, "init").returncode == 0
    run = tt(env, "run", "demo", "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["status"] == "succeeded"
    assert tws.seen_client_ids == [1, 2, 2] and {o.client_id for o in tws.orders} == {2}  # init, then run
    seen = {bo.client_order_id: bo for bo in serving.broker.orders(tws.account)}
    stop = tws.orders[1]
    assert seen[stop.order_ref].status == "SUBMITTED" and seen[stop.order_ref].broker_order_id == str(stop.perm_id)
    assert serving.broker.cancel(tws.account, str(stop.perm_id)) is False
    assert tws.order_by_ref(stop.order_ref).status in ("PreSubmitted", "Submitted")
