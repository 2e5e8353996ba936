"""The TWS harness: the fake TWS as a fixture, builds of the app against it (their connections closed at
teardown), its environment for the command line, and what the tests read back. A test module imports the
fixtures ``tws_fixture`` and ``make_app_fixture`` and asks for them as ``tws`` and ``make_app``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fakes.tws_server import FakeTWS
from tradetrail.app_context import App
from tradetrail.db.session import engine_for
from tradetrail.db.trading_models import Order
from tradetrail.domain.contract import Contract
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side
from tradetrail.runtime.build import build_app
from tradetrail.settings import Settings
from tradetrail.tws.broker import TwsBroker
from tradetrail.tws.connection import TwsConnection

SCALE = 0.01  # IBKR's historical pacing windows × this, at the fake and in the limiter alike
SPY, AAPL = 756733, 265598
SPY_CONTRACT = Contract(source="ibkr_tws", symbol="SPY", name="SPY", conid=SPY)


def resting_bracket(base: str, close: float) -> list[OrderSpec]:
    """A BUY LMT bracket of 5 far from ``close`` (it rests: nothing fills by itself), client order ids from
    ``base``."""
    entry = OrderSpec(f"{base}-entry", Leg.ENTRY, Side.BUY, OrderType.LMT, 5, limit_price=round(close * 0.5, 2))
    return [entry,
            OrderSpec(f"{base}-stop", Leg.STOP, Side.SELL, OrderType.STP, 5, stop_price=round(close * 0.4, 2),
                      parent_client_order_id=entry.client_order_id),
            OrderSpec(f"{base}-target", Leg.TARGET, Side.SELL, OrderType.LMT, 5, limit_price=round(close * 0.6, 2),
                      parent_client_order_id=entry.client_order_id)]
BIN = Path(sys.executable).with_name("tradetrail")
WAIT = 20.0  # generous deadlines for a loaded machine; a healthy run takes milliseconds


def tws_values(fake: FakeTWS, **extra) -> dict:
    return dict(broker="ibkr_tws", market_data="ibkr_tws", tws_port=fake.port, tws_pacing_scale=SCALE,
                tws_timeout_s=5.0, tws_connect_timeout_s=5.0, tws_reconnect_max_s=1.0) | extra


@pytest.fixture(name="tws")
def tws_fixture():
    with FakeTWS(pacing_scale=SCALE) as fake:
        yield fake
        assert fake.problems == [] and fake.unhandled == []


@pytest.fixture(name="make_app")
def make_app_fixture() -> Callable[..., App]:
    """``make_app(settings, fake, **overrides)``: an app on the fake; every connection it opened is closed at
    teardown."""
    built: list[App] = []

    def make(settings: Settings, fake: FakeTWS, **extra) -> App:
        app = build_app(settings.model_copy(update=tws_values(fake, **extra)), migrate=False)
        built.append(app)
        return app

    yield make
    for app in built:
        conn = app._shared.get("tws")
        if conn is not None:
            conn.close()


@pytest.fixture(name="make_broker")
def make_broker_fixture(settings) -> Callable[..., tuple[TwsConnection, TwsBroker]]:
    """``make_broker(fake, **settings)``: the adapter alone (a connection and its broker on the test database,
    which holds the placement marks) on the fake; every connection is closed at teardown. Two made here share
    the database as two processes do."""
    built: list[TwsConnection] = []

    def make(fake: FakeTWS, **extra) -> tuple[TwsConnection, TwsBroker]:
        conn = TwsConnection(Settings(**tws_values(fake, **extra)))
        built.append(conn)
        return conn, TwsBroker(conn, engine_for(settings.database_url))

    yield make
    for conn in built:
        conn.close()


def tws_env(cli_env: dict, fake: FakeTWS, **extra: str) -> dict:
    return {**cli_env, "TRADETRAIL_BROKER": "ibkr_tws", "TRADETRAIL_MARKET_DATA": "ibkr_tws",
            "TRADETRAIL_TWS_PORT": str(fake.port), "TRADETRAIL_TWS_PACING_SCALE": str(SCALE),
            "TRADETRAIL_TWS_TIMEOUT_S": "5", "TRADETRAIL_TWS_CONNECT_TIMEOUT_S": "5", **extra}


def tt(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=180)


def steps(execution: dict) -> dict[str, dict]:
    return {s["name"]: s for s in execution["steps"]}


def local_orders(app: App) -> list[Order]:
    with app.Session() as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def until(predicate: Callable[[], object], timeout: float = WAIT, what: str = "the expected state") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} was not reached within {timeout} s"
        time.sleep(0.02)
