"""Issue #12, item 1: a user's accounts through the API and the services — the shared one of real-clock
strategies and a replay-clock strategy's own — listed, filtered, reconciled, halted and counted apart."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tests.support.api_client import api_user
from tests.support.helpers import demo
from tests.support.replay_accounts import step
from tradetrail.db.trading_models import Order, PortfolioSnapshot
from tradetrail.runtime.startup import reconcile_all
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.trading import portfolio
from tradetrail.trading.trading_accounts import register


@pytest.fixture
def traded(two_clocks):  # noqa: F811 - the fixture imported above
    """The demo holds a position on its own account (two sessions run); ``paper`` has a bracket working on
    the user's shared account."""
    app, user_id, strategy = two_clocks
    runs = [get_execution(app, run_strategy(app, user_id, name).execution_id) for name in ("demo", "paper", "demo")]
    assert [r["status"] for r in runs] == ["succeeded"] * 3, [r["error"] for r in runs]
    first, paper, second = runs
    return {"app": app, "user_id": user_id, "alice": api_user(app, "demo"), "paper": paper, "second": second,
            "demo_account": step(first, "risk_check")["input"]["account"],
            "paper_account": step(paper, "risk_check")["input"]["account"]}


def test_orders_positions_and_portfolio_name_and_filter_the_account(traded):
    alice, app = traded["alice"], traded["app"]
    mine, shared = traded["demo_account"], traded["paper_account"]
    assert mine.startswith("SIM") and shared.startswith("SIM") and mine != shared

    everything = alice.get("/api/orders", params={"limit": 100}).json()["items"]
    assert {o["account"] for o in everything} == {mine, shared}
    for account in (mine, shared):
        only = alice.get("/api/orders", params={"account": account, "limit": 100}).json()["items"]
        with app.Session() as s:
            expected = set(s.scalars(select(Order.client_order_id).where(Order.account == account)))
        assert {o["client_order_id"] for o in only} == expected and expected
        assert {o["account"] for o in only} == {account}
        assert {o["strategy"] for o in only} == {"demo" if account == mine else "paper"}

    positions = alice.get("/api/positions").json()
    assert positions and {p["account"] for p in positions} == {mine}  # paper's entry has not filled yet
    assert alice.get("/api/positions", params={"account": shared}).json() == []
    assert alice.get("/api/positions", params={"account": mine}).json() == positions

    book = alice.get("/api/portfolio").json()
    assert book["account"] == mine  # the account of the latest run
    listed = {a["account"]: a for a in book["accounts"]}
    assert set(listed) == {mine, shared}
    assert (listed[mine]["strategy"], listed[shared]["strategy"]) == ("demo", None)
    assert listed[mine]["as_of"] == traded["second"]["as_of"]  # each account marked at its own clock
    assert listed[shared]["as_of"] == traded["paper"]["as_of"]
    assert listed[shared]["cash"] == pytest.approx(100_000) and listed[mine]["cash"] < 100_000
    assert [p["account"] for p in listed[mine]["positions"]] == [mine] and listed[shared]["positions"] == []
    one = alice.get("/api/portfolio", params={"account": shared}).json()
    assert (one["account"], one["strategy"], one["cash"]) == (shared, None, pytest.approx(100_000))

    for url in ("/api/portfolio/snapshots", "/api/portfolio/trades"):
        rows = alice.get(url, params={"account": shared}).json()
        rows = rows["items"] if isinstance(rows, dict) else rows
        assert {r["account"] for r in rows} <= {shared}
    snaps = alice.get("/api/portfolio/snapshots", params={"account": mine}).json()["items"]
    assert snaps and {r["account"] for r in snaps} == {mine}
    assert alice.get("/api/portfolio/statistics", params={"account": mine}).status_code == 200


def test_an_account_that_is_not_yours_is_404_everywhere(traded):
    alice, mine = traded["alice"], traded["demo_account"]
    bob = api_user(traded["app"], "bob", client=alice.client)
    for url in ("/api/orders", "/api/positions", "/api/portfolio", "/api/portfolio/snapshots",
                "/api/portfolio/trades", "/api/portfolio/statistics"):
        r = bob.get(url, params={"account": mine})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (url, r.text)
        assert alice.get(url, params={"account": "SIM999999"}).status_code == 404, url
    assert bob.post("/api/reconcile", params={"account": mine}).status_code == 404
    assert bob.post("/api/trading-state/halt", json={"account": mine}).status_code == 404
    assert mine not in bob.get("/api/portfolio").text


def test_halting_one_account_stops_that_account_only(traded):
    app, user_id, alice, mine = traded["app"], traded["user_id"], traded["alice"], traded["demo_account"]
    both = alice.post("/api/trading-state/halt", json={"account": mine, "strategy": "demo"})
    assert both.status_code == 422
    r = alice.post("/api/trading-state/halt", json={"account": mine, "reason": "look at it"})
    assert r.status_code == 200 and (r.json()["scope"], r.json()["state"]) == (f"account:{mine}", "HALTED")
    states = {s["scope"]: s["state"] for s in alice.get("/api/trading-state").json()}
    assert states == {"global": "ACTIVE", f"account:{mine}": "HALTED"}
    halted = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert step(halted, "risk_check")["input"]["inputs"]["global_state"] == "HALTED"
    assert step(halted, "place_order")["status"] == "skipped"
    other = get_execution(app, run_strategy(app, user_id, "paper").execution_id)  # on the shared account
    assert step(other, "risk_check")["input"]["inputs"]["global_state"] == "ACTIVE"
    r = alice.post("/api/trading-state/resume", json={"account": mine})
    assert (r.json()["scope"], r.json()["state"]) == (f"account:{mine}", "ACTIVE")
    again = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert step(again, "risk_check")["input"]["inputs"]["global_state"] == "ACTIVE"


def test_reconciliation_covers_every_account(traded):
    app, alice, mine, shared = traded["app"], traded["alice"], traded["demo_account"], traded["paper_account"]
    report = alice.post("/api/reconcile").json()
    assert [r["account"] for r in report["accounts"]] == sorted([mine, shared])
    assert report["position_mismatches"] == [] and all(not r["position_mismatches"] for r in report["accounts"])
    one = alice.post("/api/reconcile", params={"account": mine}).json()
    assert one["account"] == mine and one["position_mismatches"] == []
    reports = reconcile_all(app)
    assert reports["demo"]["account"] == shared  # the user's shared account at the default broker
    assert reports[f"demo@simulated:{mine}"]["account"] == mine  # and the replayed strategy's own
    assert set(reports) == {"demo", f"demo@simulated:{mine}"}


def test_sized_price_and_allowance_are_shown_on_the_entry(traded):
    entries = [o for o in traded["alice"].get("/api/orders", params={"limit": 100}).json()["items"]
               if o["leg"] == "entry"]
    assert entries and all(o["sized_price"] > 0 and o["price_allowance_pct"] == 2.0 for o in entries)
    children = [o for o in traded["alice"].get("/api/orders", params={"limit": 100}).json()["items"]
                if o["leg"] in ("stop", "target")]
    assert children and all(o["sized_price"] is None and o["price_allowance_pct"] is None for o in children)
    detail = traded["alice"].get(f"/api/orders/{entries[0]['id']}").json()
    assert detail["sized_price"] == entries[0]["sized_price"]


def test_drawdown_is_per_account_never_across_two_accounts(app):
    """A replayed account of 100k beside a shared one that stands at 50k: one equity curve of both fell 60."""
    user_id, _ = demo(app)
    register(app, user_id, "simulated", "SIM000001")
    register(app, user_id, "simulated", "SIM000001-S000001", strategy_id=1)
    curve = [("SIM000001-S000001", datetime(2005, 1, 3, 21, tzinfo=UTC), 100_000.0),
             ("SIM000001-S000001", datetime(2005, 1, 4, 21, tzinfo=UTC), 110_000.0),
             ("SIM000001", datetime(2026, 1, 5, 21, tzinfo=UTC), 50_000.0),
             ("SIM000001", datetime(2026, 1, 6, 21, tzinfo=UTC), 55_000.0)]
    with app.Session() as s:
        for account, at, equity in curve:
            s.add(PortfolioSnapshot(user_id=user_id, account=account, kind="execution", at=at, cash=equity,
                                    equity=equity, positions_value=0.0, realized_pnl=0.0, unrealized_pnl=0.0,
                                    positions=[]))
        s.commit()
    assert portfolio.stats(app, user_id)["max_drawdown"] == 0.0
    assert portfolio.stats(app, user_id, account="SIM000001")["max_drawdown_pct"] is None
