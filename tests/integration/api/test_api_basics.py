"""The REST API end to end over the real app and database: runs, lineage, artifacts, orders, portfolio."""

from __future__ import annotations

import time

import pytest

from tests.support.api_client import api_user
from tests.support.helpers import demo


@pytest.fixture
def alice(app):
    demo(app)
    return api_user(app, "demo")


def _wait_done(user, execution_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = user.get(f"/api/lineage/execution/{execution_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] != "running":
            return body
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.1)


def test_everything_but_health_needs_authentication(app, alice):
    c = alice.client
    assert c.get("/health").status_code == 200
    for url in ("/api/strategies", "/api/lineage/recent", "/api/orders", "/api/portfolio", "/api/prompts"):
        r = c.get(url)
        assert r.status_code == 401, url
        assert r.json()["error"]["code"] == "unauthorized"
    r = c.get("/api/strategies", headers={"Authorization": "Bearer tt_not-a-token"})
    assert r.status_code == 401 and "unknown or revoked" in r.json()["error"]["message"]


def test_run_now_returns_the_id_at_once_and_lineage_shows_the_steps(app, alice):
    r = alice.post("/api/strategies/demo/run")
    assert r.status_code == 202, r.text
    execution_id = r.json()["execution_id"]
    body = _wait_done(alice, execution_id)
    assert body["status"] == "succeeded" and body["has_errors"] is False
    names = [s["name"] for s in body["steps"]]
    assert names[:3] == ["load_strategy", "check_broker", "resolve_contract"] and names[-1] == "complete"
    assert [s["number"] for s in body["steps"]] == sorted(s["number"] for s in body["steps"])

    recent = alice.get("/api/lineage/recent").json()
    assert recent["items"][0]["id"] == execution_id and recent["next_offset"] is None
    per_strategy = alice.get("/api/lineage/strategy/demo").json()
    assert [e["id"] for e in per_strategy] == [execution_id]

    step = alice.get(f"/api/lineage/execution/{execution_id}/steps/1").json()
    assert step["name"] == "load_strategy" and step["execution_id"] == execution_id
    assert alice.get(f"/api/lineage/execution/{execution_id}/steps/99").status_code == 404

    stats = alice.get("/api/lineage/stats").json()
    assert stats["executions"] == 1
    assert {s["step"] for s in stats["steps"]} >= {"load_strategy", "analyze", "complete"}

    charts = next(s for s in body["steps"] if s["name"] == "render_charts")
    digest = charts["output"]["daily"]["sha256"]
    png = alice.get(f"/api/artifacts/{digest}")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")


def test_a_second_run_while_one_runs_is_a_conflict_not_an_overlap(app, alice):
    from tradetrail.services.strategies.configs import get_strategy
    from tradetrail.trading.locks import strategy_lock

    with app.Session() as s:
        sid = get_strategy(s, _uid(app), "demo").id
    with strategy_lock(app, sid) as held:
        assert held
        r = alice.post("/api/strategies/demo/run")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_running"


def _uid(app) -> int:
    from tradetrail.services.strategies.configs import get_user

    with app.Session() as s:
        return get_user(s, "demo").id


def test_pagination_is_bounded_and_validated(app, alice):
    r = alice.get("/api/lineage/recent?limit=1000")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input" and err["fields"][0]["field"] == "query.limit"
    assert alice.get("/api/orders?offset=-1").status_code == 422
    assert alice.get("/api/orders?state=BOGUS").status_code == 422


def test_portfolio_positions_orders_and_state(app, alice):
    body = alice.get("/api/portfolio").json()
    assert body["paper"] is True and body["cash"] == pytest.approx(100_000)
    assert alice.get("/api/positions").json() == []
    assert alice.get("/api/orders").json()["items"] == []
    assert alice.get("/api/orders/12345").status_code == 404
    states = alice.get("/api/trading-state").json()
    assert states[0] == {"scope": "global", "state": "ACTIVE", "reason": None, "changed_at": None}
    r = alice.post("/api/trading-state/halt", json={"reason": "vacation"})
    assert r.status_code == 200 and r.json()["state"] == "HALTED"
    r = alice.post("/api/trading-state/halt", json={"strategy": "demo", "reducing": True})
    assert r.json()["state"] == "REDUCING" and r.json()["scope"].startswith("strategy:")
    assert alice.post("/api/trading-state/halt", json={"strategy": "nope"}).status_code == 404
    r = alice.post("/api/trading-state/resume", json={})
    assert r.json()["state"] == "ACTIVE"
    assert alice.post("/api/reconcile").status_code == 200


def test_strategy_crud_validate_and_next_runs(app, alice):
    closing = {"symbol": "COMP", "schedule": {"cron": "0 16 * * mon-fri", "market_sessions_only": True}}
    r = alice.post("/api/strategies", json={"name": "nasdaq", "config": closing})
    assert r.status_code == 422 and "never fires while the exchange is open" in r.json()["error"]["message"]
    assert r.json()["error"]["fields"][0]["field"] == "schedule.cron"
    config = {"symbol": "COMP", "schedule": {"cron": "30 15 * * mon-fri", "market_sessions_only": True}}
    r = alice.post("/api/strategies", json={"name": "nasdaq", "config": config})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["symbol"] == "COMP"
    assert alice.post("/api/strategies", json={"name": "nasdaq", "config": config}).status_code == 422
    config["risk"] = {"risk_per_trade_pct": 0.5}
    r = alice.put("/api/strategies/nasdaq", json={"config": config})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert alice.post("/api/strategies/nasdaq/pause").json()["enabled"] is False
    assert alice.post("/api/strategies/nasdaq/enable").json()["enabled"] is True
    runs = alice.get("/api/strategies/nasdaq/next-runs?count=3").json()
    assert len(runs["next"]) == 3 and all("T15:30:00" in r["local"] for r in runs["next"])

    bad = alice.post("/api/strategies", json={"name": "x1", "config": {"symbol": "SPX",
                                                                       "schedule": {"cron": "61 * * * *"}}})
    assert bad.status_code == 422
    assert any("schedule" in f["field"] and "cron" in f["message"] for f in bad.json()["error"]["fields"])
    unknown = alice.post("/api/strategies/validate", json={"config": {"symbol": "NOSUCH"}})
    assert unknown.status_code == 200 and unknown.json()["valid"] is False
    assert "symbol" in unknown.json()["problems"][0]

    reserved = alice.post("/api/strategies", json={"name": "new", "config": config})  # /strategies/new: the wizard
    assert reserved.status_code == 422 and reserved.json()["error"]["fields"][0]["field"] == "name", reserved.text

    listed = alice.get("/api/strategies").json()
    assert [s["name"] for s in listed["items"]] == ["demo", "nasdaq"]
    assert alice.delete("/api/strategies/nasdaq").status_code == 204
    assert alice.get("/api/strategies/nasdaq").status_code == 404


def test_a_strategy_with_history_cannot_be_deleted(app, alice):
    execution_id = alice.post("/api/strategies/demo/run").json()["execution_id"]
    _wait_done(alice, execution_id)
    r = alice.delete("/api/strategies/demo")
    assert r.status_code == 409 and "pause it" in r.json()["error"]["message"]
    assert alice.get(f"/api/lineage/execution/{execution_id}").status_code == 200


def test_prompts_versions_and_preview(app, alice):
    listed = alice.get("/api/prompts").json()
    assert {p["name"] for p in listed} >= {"decision", "daily", "weekly"} and all(p["builtin"] for p in listed)
    r = alice.post("/api/prompts", json={"name": "mine", "body": "Look at {{ symbol }} at {{ close }}."})
    assert r.status_code == 201 and r.json()["latest_version"] == 1
    r = alice.put("/api/prompts/mine", json={"body": "Look hard at {{ symbol }}."})
    assert r.json()["latest_version"] == 2 and len(r.json()["versions"]) == 2
    v1 = alice.get("/api/prompts/mine/versions/1").json()
    assert v1["body"] == "Look at {{ symbol }} at {{ close }}."
    bad = alice.put("/api/prompts/mine", json={"body": "{{ secret_key }}"})
    assert bad.status_code == 422 and "unknown variable" in bad.json()["error"]["message"]
    preview = alice.post("/api/prompts/render", json={"name": "mine", "variables": {"symbol": "AAPL"}}).json()
    assert preview["rendered"].strip() == "Look hard at AAPL."
    for name in ("decision", "daily", "weekly"):  # the built-ins render with the sample values
        r = alice.post("/api/prompts/render", json={"name": name})
        assert r.status_code == 200, r.text
    # overriding a built-in makes the user's own copy; deleting it brings the built-in back
    r = alice.put("/api/prompts/daily", json={"body": "My daily view of {{ symbol }}."})
    assert r.json()["builtin"] is False
    assert alice.delete("/api/prompts/daily").status_code == 204
    assert alice.get("/api/prompts/daily").json()["builtin"] is True
    assert alice.delete("/api/prompts/decision").status_code == 404


def test_run_now_refuses_at_once_when_its_threads_are_busy_and_never_queues_a_run(app, settings):
    """A 503 must mean "not started": a run queued behind busy threads would start minutes after the caller
    was told it had not."""
    from dataclasses import replace

    from sqlalchemy import func, select

    from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
    from tradetrail.db.models import Execution
    from tradetrail.schemas.strategy import StrategyConfig
    from tradetrail.services.strategies.configs import save_strategy
    from tradetrail.settings import Settings

    with FakeOpenAIServer() as fake:
        fake.enqueue(Behaviour.slow(4))  # the first run waits on the model
        local = replace(app, settings=Settings(home=settings.home, database_url=settings.database_url,
                                               llm_base_url=fake.base_url, run_now_workers=1), _shared={})
        demo(local)
        user = api_user(local, "demo")
        with local.Session() as s:
            for name in ("slow", "other"):
                save_strategy(s, local, _uid(local), name, StrategyConfig.model_validate({
                    "symbol": "SPX", "analyst": {"kind": "llm"},
                    "market_data": {"source": "sample", "replay_start": "2010-01-04"}}))
        first = user.post("/api/strategies/slow/run")
        assert first.status_code == 202, first.text
        started = time.monotonic()
        refused = user.post("/api/strategies/other/run")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "busy"
        assert time.monotonic() - started < 2  # refused at once, not after waiting
        assert _wait_done(user, first.json()["execution_id"])["status"] == "succeeded"
        time.sleep(0.5)
        with local.Session() as s:
            assert s.scalar(select(func.count(Execution.id))) == 1  # the refused run never started later
        again = user.post("/api/strategies/other/run")  # the thread is free again
        assert again.status_code == 202, again.text
        assert _wait_done(user, again.json()["execution_id"])["status"] == "succeeded"
