"""Backtests through the faces: the command line prints the report (JSON with every field the issue names),
the API runs one in the background with readable progress and shows the same numbers; each is one
execution (trigger backtest) with its artifacts; nobody sees another user's; the user's books stay empty."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.api_client import api_user
from tests.support.cli import tt
from tests.support.helpers import demo

pytestmark = pytest.mark.once  # what the faces print and serve: the same on either backend

TRADE_KEYS = {"entry_date", "exit_date", "entry_price", "exit_price", "quantity", "pnl", "r_multiple"}


@pytest.fixture
def alice(app):
    demo(app)
    return api_user(app, "demo")


def _wait(user, backtest_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        body = user.get(f"/api/backtests/{backtest_id}").json()
        seen.append(body["progress"])
        if body["status"] not in ("queued", "running"):
            return body | {"seen": seen}
        assert time.monotonic() < deadline, "backtest did not finish"
        time.sleep(0.05)


def test_the_command_line_prints_the_report_and_the_api_shows_the_same_numbers(app, alice, cli_env):
    out = tt(cli_env, "backtest", "demo", "--from", "2005-01-03", "--to", "2018-12-31", "--json").stdout
    data = json.loads(out)
    report = data["report"]
    assert report["duration_ms"] > 0 and report["bars"] >= report["sessions"] == 3523
    assert report["stats"]["start"] == "2005-01-03" and report["stats"]["end"] == "2018-12-31"
    assert report["trades"] and all(TRADE_KEYS <= set(t) for t in report["trades"])
    closed = [t for t in report["trades"] if t["exit_date"] is not None]
    assert len(closed) == report["stats"]["trades"]
    assert all(t["exit_date"] >= t["entry_date"] and t["r_multiple"] is not None for t in closed)

    api = alice.get(f"/api/backtests/{data['id']}").json()
    assert api["status"] == "succeeded" and api["report"] == report
    lineage = alice.get(f"/api/lineage/execution/{data['id']}").json()
    assert lineage["trigger"] == "backtest" and [s["name"] for s in lineage["steps"]] == ["backtest"]
    step = lineage["steps"][0]
    assert set(step["artifacts"]) == {"report", "equity", "trades", "chart", "bars_daily", "orders"}
    assert alice.get(f"/api/artifacts/{step['artifacts']['chart']}").content[:8] == b"\x89PNG\r\n\x1a\n"

    text = tt(cli_env, "backtest", "demo", "--from", "2005-01-03", "--to", "2018-12-31").stdout
    assert f"{report['stats']['total_return_pct']:.2f}" in text and "buy and hold" in text


def test_the_api_runs_a_backtest_in_the_background_with_progress_and_isolation(app, alice):
    r = alice.post("/api/backtests", json={"strategy": "demo", "from": "2005-01-03", "to": "2012-12-31",
                                           "cash": 50_000})
    assert r.status_code == 202, r.text
    backtest_id = r.json()["id"]
    body = _wait(alice, backtest_id)
    assert body["status"] == "succeeded", body
    assert body["progress"]["done"] == body["progress"]["total"] == body["report"]["sessions"] > 0
    assert body["initial_cash"] == 50_000 and body["report"]["stats"]["initial_equity"] == 50_000
    listed = alice.get("/api/backtests").json()["items"]
    assert [b["id"] for b in listed] == [backtest_id] and listed[0]["summary"]["trades"] == \
        body["report"]["stats"]["trades"]
    png = alice.get(f"/api/backtests/{backtest_id}/chart.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    # its own account: the user's orders and positions stay empty
    assert alice.get("/api/orders").json()["items"] == []
    assert alice.get("/api/positions").json() == []

    bob = api_user(app, "bob", client=alice.client)
    assert bob.get(f"/api/backtests/{backtest_id}").status_code == 404
    assert bob.get(f"/api/backtests/{backtest_id}/chart.png").status_code == 404
    assert bob.get("/api/backtests").json()["items"] == []


@pytest.mark.parametrize("body, code", [
    ({"strategy": "demo", "from": "2010-01-01", "to": "2005-01-01"}, "invalid_backtest"),
    ({"strategy": "demo", "from": "2005-01-03", "to": "2099-01-01"}, "invalid_backtest"),
    ({"strategy": "demo", "from": "1450-01-01", "to": "2005-01-01"}, "invalid_backtest"),
    ({"strategy": "demo", "from": "2005-01-03", "to": "2006-01-01", "cash": -5}, "invalid_input"),
    ({"strategy": "demo", "from": 20050103, "to": "2006-01-01"}, "invalid_input"),
    ({"strategy": "demo", "from": "2005-01-03T00:00:00", "to": "2006-01-01"}, "invalid_input"),
    ({"strategy": "demo", "from": "2005-01-03", "to": "2006-01-01", "extra": 1}, "invalid_input"),
])
def test_bad_requests_are_refused_with_the_reason_and_create_nothing(app, alice, body, code):
    r = alice.post("/api/backtests", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
    assert alice.get("/api/backtests").json()["items"] == []


def test_an_unknown_strategy_is_404_and_data_outside_the_range_fails_with_both_dates(app, alice):
    assert alice.post("/api/backtests", json={"strategy": "nope", "from": "2005-01-03",
                                              "to": "2006-01-01"}).status_code == 404
    r = alice.post("/api/backtests", json={"strategy": "demo", "from": "2020-01-01", "to": "2020-12-31"})
    assert r.status_code == 202
    body = _wait(alice, r.json()["id"])
    assert body["status"] == "failed" and "2018-12-31" in body["error"], body["error"]
    lineage = alice.get(f"/api/lineage/execution/{body['id']}").json()
    assert lineage["status"] == "failed" and lineage["failed_step"] == "backtest"


def test_a_user_with_too_many_backtests_waiting_is_told_to_retry_later_not_given_a_server_error(app, alice):
    from tradetrail.services.backtests.running import PER_USER

    answers = []
    while len(answers) < 60 and not any(r.status_code == 429 for r in answers):  # faster than they finish
        answers.append(alice.post("/api/backtests", json={"strategy": "demo", "from": "1999-01-04",
                                                           "to": "2018-12-31"}))
    assert all(r.status_code in (202, 429) for r in answers), [r.status_code for r in answers]
    refused = answers[-1]
    assert refused.status_code == 429 and len(answers) > PER_USER, len(answers)
    assert refused.headers["Retry-After"] and "still waiting or running" in refused.json()["error"]["message"]
    for r in answers[:-1]:
        assert _wait(alice, r.json()["id"])["status"] == "succeeded"
    assert alice.post("/api/backtests", json={"strategy": "demo", "from": "2005-01-03",
                                              "to": "2005-12-30"}).status_code == 202
