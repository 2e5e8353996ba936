"""Per-user isolation: a second user reaches none of the first user's resources through any route.

The test walks the whole OpenAPI document, so a route added later without an owner check fails here.
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from tests.api_client import api_user
from tests.helpers import demo
from tradetrail.db.models import Strategy
from tradetrail.db.trading_models import Order
from tradetrail.services.prompts import save_user_prompt
from tradetrail.services.trading_state import list_states


@pytest.fixture
def world(app):
    """Alice (the demo user) with a run, a prompt, a working order and a token; Bob with nothing."""
    uid, strategy = demo(app)
    alice = api_user(app, "demo")
    execution_id = alice.post("/api/strategies/demo/run").json()["execution_id"]
    deadline = time.monotonic() + 60
    while alice.get(f"/api/lineage/execution/{execution_id}").json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    run = alice.get(f"/api/lineage/execution/{execution_id}").json()
    chart = next(s for s in run["steps"] if s["name"] == "render_charts")["output"]["daily"]["sha256"]
    save_user_prompt(app, uid, "alices-prompt", "Only for {{ symbol }}.")
    with app.Session() as s:
        order = Order(user_id=uid, strategy_id=strategy.id, execution_id=execution_id, broker="simulated",
                      account="SIM000001", client_order_id="tt-iso-1", leg="entry", symbol="SPX", side="BUY",
                      order_type="LMT", quantity=1, limit_price=1.0, tif="DAY", state="SUBMITTED",
                      broker_order_id="sim-1")
        s.add(order)
        s.commit()
        order_id = order.id
    token_id = alice.get("/api/auth/tokens").json()[0]["id"]
    bob = api_user(app, "bob", client=alice.client)
    ids = {"name": "demo", "execution_id": execution_id, "number": "1", "order_id": str(order_id),
           "token_id": str(token_id), "sha256": chart, "version": "1", "conid": "1"}
    return dict(app=app, uid=uid, alice=alice, bob=bob, ids=ids, execution_id=execution_id, order_id=order_id,
                chart=chart, token_id=token_id)


# A valid body per operation, so Bob's requests fail on ownership, never on validation.
BODIES = {
    ("put", "/api/strategies/{name}"): {"config": {"symbol": "SPX"}},
    ("put", "/api/prompts/{name}"): {"body": "Bob was here {{ symbol }}"},
}
PROMPT_PATHS = {"/api/prompts/{name}", "/api/prompts/{name}/versions/{version}"}


def _operations(client):
    spec = client.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method in methods:
            yield method, path


def test_no_route_reaches_another_users_resources(world):
    alice, bob, ids = world["alice"], world["bob"], world["ids"]
    checked = 0
    for method, path in _operations(bob.client):
        params = re.findall(r"{(\w+)}", path)
        if not params or path.startswith("/api/symbols"):  # symbols are a shared market-data cache
            continue
        values = dict(ids)
        if path in PROMPT_PATHS:
            values["name"] = "alices-prompt"
        url = path.format(**values)
        body = BODIES.get((method, path))
        r = getattr(bob, method)(url, **({"json": body} if body is not None else {}))
        assert r.status_code == 404, f"{method.upper()} {url} answered {r.status_code} to another user: {r.text}"
        assert r.json()["error"]["code"] == "not_found"
        checked += 1
    assert checked >= 15  # the walk really covered the per-resource routes

    # listings show Bob nothing of Alice's
    secrets_of_alice = [world["execution_id"], "alices-prompt", "tt-iso-1", world["chart"]]
    for url in ("/api/strategies", "/api/lineage/recent", "/api/lineage/stats", "/api/orders", "/api/positions",
                "/api/portfolio", "/api/portfolio/snapshots", "/api/portfolio/trades", "/api/prompts",
                "/api/auth/tokens", "/api/trading-state"):
        r = bob.get(url)
        assert r.status_code == 200, (url, r.text)
        assert not any(v in r.text for v in secrets_of_alice), url
    assert bob.get("/api/strategies").json()["items"] == []

    # and nothing of Alice's changed
    app = world["app"]
    with app.Session() as s:
        assert s.scalar(select(Strategy.enabled).where(Strategy.name == "demo")) is True
        assert s.get(Order, world["order_id"]).state == "SUBMITTED"
    assert list_states(app, world["uid"])[0]["state"] == "ACTIVE"
    assert alice.get("/api/auth/me").status_code == 200  # her token was not revoked
    assert alice.get(f"/api/artifacts/{world['chart']}").status_code == 200
    assert alice.get("/api/prompts/alices-prompt").json()["latest_version"] == 1


def test_bob_acting_on_his_own_scope_leaves_alice_alone(world):
    bob, app = world["bob"], world["app"]
    assert bob.post("/api/trading-state/halt", json={"reason": "bob only"}).json()["state"] == "HALTED"
    assert list_states(app, world["uid"])[0]["state"] == "ACTIVE"
    r = bob.post("/api/prompts", json={"name": "alices-prompt", "body": "Bob's own {{ symbol }}"})
    assert r.status_code == 201  # the same name in his own namespace
    assert world["alice"].get("/api/prompts/alices-prompt").json()["body"] == "Only for {{ symbol }}."
