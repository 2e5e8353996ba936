"""``GET /api/strategies/{name}/next-runs`` with a count reaching past the exchange calendar's end answered 422
("beyond the exchange calendar"); it answers the runs up to the calendar's end and says where it ends."""

from __future__ import annotations

from datetime import datetime

from tests.support.api_client import api_user
from tests.support.helpers import demo
from tradetrail.catalogue.calendars import calendar


def test_a_count_past_the_calendar_answers_the_runs_up_to_its_end(app):
    demo(app)
    alice = api_user(app, "demo")
    monthly = {"symbol": "SPX", "market_data": {"source": "sample", "replay_start": "2010-01-04"},
               "schedule": {"cron": "0 10 1 * *", "market_sessions_only": True}}  # the 1st, when it is a session
    assert alice.post("/api/strategies", json={"name": "monthly", "config": monthly}).status_code == 201
    r = alice.get("/api/strategies/monthly/next-runs", params={"count": 500})
    assert r.status_code == 200, r.text
    body = r.json()
    last_day = calendar().last_minute
    assert body["calendar_end"] == f"{last_day:%Y-%m-%d}"
    runs = [datetime.fromisoformat(x["utc"]) for x in body["next"]]
    assert 6 <= len(runs) < 500 and runs == sorted(runs)
    assert runs[-1] <= last_day.to_pydatetime()
    local = [datetime.fromisoformat(x["local"]) for x in body["next"]]
    assert {(t.day, t.hour, t.minute) for t in local} == {(1, 10, 0)}


def test_a_count_within_the_calendar_is_complete(app):
    demo(app)
    alice = api_user(app, "demo")
    body = alice.get("/api/strategies/demo/next-runs", params={"count": 5}).json()
    assert len(body["next"]) == 5 and body["calendar_end"] is None
