"""The IBKR harness: a build of the app against the fake gateway, its environment for the command line, and
what the tests read back (the orders we booked, the tickets the gateway was sent)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from tests.fakes.ibkr_gateway import FakeGateway
from tradetrail.app_context import App
from tradetrail.db.trading_models import Order
from tradetrail.runtime.build import build_app

SCALE = 0.02  # IBKR's pacing intervals × this, at the fake and in the client alike
SPY = 756733
PLACE = "POST /iserver/account/{acct}/orders"
SEARCH, INFO, HISTORY = "GET /iserver/secdef/search", "GET /iserver/contract/{conid}/info", \
    "GET /iserver/marketdata/history"
BIN = Path(sys.executable).with_name("tradetrail")


def ibkr_app(settings, gw: FakeGateway, **extra) -> App:
    values = dict(broker="ibkr_web", market_data="ibkr", ibkr_url=gw.url, ibkr_pacing_scale=SCALE,
                  ibkr_allowed_questions="o163", ibkr_timeout_s=5.0) | extra
    return build_app(settings.model_copy(update=values), migrate=False)


def steps(execution: dict) -> dict[str, dict]:
    return {s["name"]: s for s in execution["steps"]}


def local_orders(app: App) -> list[Order]:
    with app.Session() as s:
        return list(s.scalars(select(Order).order_by(Order.id)))


def posted_tickets(gw: FakeGateway) -> list[list[dict]]:
    return [body["orders"] for _, route, _, body in gw.log if route == PLACE]


def tt(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)


def ibkr_env(cli_env: dict, gw: FakeGateway) -> dict:
    return {**cli_env, "TRADETRAIL_BROKER": "ibkr_web", "TRADETRAIL_MARKET_DATA": "ibkr",
            "TRADETRAIL_IBKR_URL": gw.url, "TRADETRAIL_IBKR_PACING_SCALE": str(SCALE),
            "TRADETRAIL_IBKR_ALLOWED_QUESTIONS": "o163"}
