"""No account number in logs at INFO or above, nor on /health (it is not authenticated): ib_async names the
account in every order and execution it logs at INFO, so its loggers are kept at WARNING unless a wire
capture is asked for; our own lines mask it."""

from __future__ import annotations

import json
import logging

from tests.integration.tws.tws_harness import (  # noqa: F401
    SPY,
    make_app_fixture,
    make_broker_fixture,
    tws_fixture,
    until,
)
from tradetrail.domain.contract import Contract
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side
from tradetrail.runtime.health import health_report
from tradetrail.settings import Settings
from tradetrail.tws.connection import TwsConnection, quiet_ib_async


def test_no_log_record_at_info_or_above_names_the_account_during_a_trade(tws, make_broker, caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("ib_async").setLevel(logging.NOTSET)  # as a deployment logging at INFO would leave it
    conn, broker = make_broker(tws)
    account = broker.account(1)
    spec = OrderSpec("tt-logged-order-entry", Leg.ENTRY, Side.BUY, OrderType.MKT, 3)
    placed = broker.place(account, Contract(source="ibkr_tws", symbol="SPY", name="SPY", conid=SPY), [spec])
    assert placed.status == "accepted"
    for _ in range(2):
        assert broker.orders(account) and broker.fills(account)
    tws.drop_connections()  # the reconnection logs too
    until(lambda: conn.connected and conn.epoch == 2, what="the reconnection")
    broker.account_values(account)
    assert conn.epoch == 2
    leaks = [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO
             and account in r.getMessage()]
    assert leaks == []
    assert any(r.name.startswith("tradetrail.tws") and "DU***67" in r.getMessage() for r in caplog.records)


def test_a_wire_capture_turns_ib_async_logging_back_on():
    try:
        quiet_ib_async(True)
        assert logging.getLogger("ib_async.client").getEffectiveLevel() == logging.DEBUG
    finally:
        quiet_ib_async(False)
        logging.getLogger("ib_async.client").setLevel(logging.NOTSET)
    assert logging.getLogger("ib_async.client").getEffectiveLevel() == logging.WARNING


def test_health_does_not_show_the_account(settings, tws, make_app):
    app = make_app(settings, tws)
    report = health_report(app)
    assert report["checks"]["ibkr_session"]["ok"] is True
    assert report["checks"]["ibkr_session"]["accounts_managed"] == 1
    assert tws.account not in json.dumps(report, default=str)


def test_the_wire_log_setting_reaches_the_connection(monkeypatch, tmp_path):
    monkeypatch.setenv("TRADETRAIL_TWS_WIRE_LOG", "true")
    settings = Settings(home=tmp_path)
    assert settings.tws_wire_log is True
    try:
        TwsConnection(settings)  # nothing connects until a request needs it
        assert logging.getLogger("ib_async.client").getEffectiveLevel() == logging.DEBUG
        TwsConnection(Settings(home=tmp_path, tws_wire_log=False))
        assert logging.getLogger("ib_async.client").getEffectiveLevel() == logging.WARNING
    finally:
        quiet_ib_async(False)
        logging.getLogger("ib_async.client").setLevel(logging.NOTSET)
