"""A replay-clock strategy trades at the simulator, on an account of its own: a replayed market cannot be
traded at IBKR. Naming another broker is refused when the strategy is saved or validated; left empty, the
broker is the simulator whatever TRADETRAIL_BROKER says (the gateway never hears of the replay)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.api_client import api_user
from tests.support.helpers import demo
from tests.support.ibkr import SCALE, ibkr_app
from tradetrail.broker.port import BrokerError
from tradetrail.db.trading_models import Order
from tradetrail.services.runs.executions import get_execution, run_strategy

REPLAY = {"symbol": "SPX", "market_data": {"source": "sample", "replay_start": "2005-01-03"}}


def test_a_replay_at_ibkr_is_refused_with_the_reason(app):
    demo(app)
    alice = api_user(app, "demo")
    r = alice.post("/api/strategies/validate", json={"config": REPLAY | {"broker": "ibkr_web"}})
    assert r.status_code == 200 and r.json()["valid"] is False
    [problem] = r.json()["problems"]
    assert problem.startswith("broker: a replay-clock strategy") and "cannot trade at ibkr_web" in problem
    created = alice.post("/api/strategies", json={"name": "replay-ibkr", "config": REPLAY | {"broker": "ibkr_web"}})
    assert created.status_code == 422 and "cannot trade at ibkr_web" in created.text
    for broker in (None, "simulated"):
        ok = alice.post("/api/strategies/validate", json={"config": REPLAY | {"broker": broker}}).json()
        assert ok == {"valid": True, "problems": []}


def test_a_replay_with_no_broker_named_trades_at_the_simulator_under_an_ibkr_default(settings):
    with FakeGateway(pacing_scale=SCALE) as gw:
        app = ibkr_app(settings, gw, market_data="sample")  # TRADETRAIL_BROKER=ibkr_web
        user_id, strategy = demo(app)  # the sample demo: a replay clock, broker left empty
        run = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
        assert run["status"] == "succeeded", run["error"]
        assert next(s for s in run["steps"] if s["name"] == "check_broker")["output"]["broker"] == "simulated"
        with app.Session() as s:
            sent = {(o.broker, o.account) for o in s.scalars(select(Order))}
        assert sent == {("simulated", f"SIM{user_id:06d}-S{strategy.id:06d}")}
        assert not [route for route in gw.calls if "/orders" in route or "/portfolio" in route]
        with pytest.raises(BrokerError, match="cannot trade a replayed market"):
            app.broker.account(user_id, strategy.id)  # IBKR itself refuses a strategy's own account
