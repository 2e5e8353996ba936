"""The backtest pages over plain HTTP, on both database backends: the form starts a backtest (CSRF checked)
and opens its page, whose progress fragment ends by reloading the page; the page shows the numbers of
``GET /api/backtests/{id}`` (stats beside buy and hold, drawdown, months, every trade); the charts' JSON
agrees with the report; the list pages by 50 newest first; bad input answers the form with the reason; a
failed backtest shows why; another user's is a 404."""

from __future__ import annotations

import html
import re
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.support.api_client import PASSWORD
from tests.support.web_http import sign_in, web_client
from tradetrail.services.accounts.users import create_user
from tradetrail.services.backtests import running
from tradetrail.services.backtests.running import BacktestRequest
from tradetrail.web.templating import env

NEW_YORK = ZoneInfo("America/New_York")
RANGE = {"strategy": "demo", "from": "2005-01-03", "to": "2006-12-29"}
num = env.filters["num"]
signed = env.filters["signed"]


def _start(client, **fields) -> str:
    answer = client.post("/backtests", data={**RANGE, "cash": "50000", "csrf_token": client.csrf, **fields})
    assert answer.status_code == 303, answer.text
    match = re.fullmatch(r"/backtests/([0-9a-f-]{36})", answer.headers["location"])
    assert match, answer.headers["location"]
    return match.group(1)


def _wait(client, backtest_id: str, timeout: float = 90) -> dict:
    """Poll the progress fragment as the page does until it asks for a reload; the API's answer then."""
    deadline = time.monotonic() + timeout
    while True:
        fragment = client.get(f"/backtests/{backtest_id}/progress")
        assert fragment.status_code == 200 and 'id="backtest-progress"' in fragment.text
        if fragment.headers.get("HX-Refresh") == "true":
            assert "hx-trigger" not in fragment.text  # the polling stops
            return client.get(f"/api/backtests/{backtest_id}").json()
        assert 'hx-trigger="every 1s"' in fragment.text
        assert time.monotonic() < deadline, "the backtest did not finish"
        time.sleep(0.1)


def _cell(page: str, attribute: str, key: str) -> str:
    found = re.search(rf'{attribute}="{key}"[^>]*>(.*?)</td>', page, re.S)
    assert found, f"{attribute}={key} not on the page"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_the_form_starts_a_backtest_whose_page_shows_the_apis_numbers(app, client):
    backtest_id = _start(client)
    api = _wait(client, backtest_id)
    assert api["status"] == "succeeded", api
    report, stats, hold = api["report"], api["report"]["stats"], api["report"]["buy_and_hold"]
    assert stats["initial_equity"] == 50_000 and report["trades"]

    page = client.get(f"/backtests/{backtest_id}")
    assert page.status_code == 200
    text = page.text
    assert f'href="/executions/{backtest_id}"' in text and "2005-01-03 – 2006-12-29" in text
    assert _cell(text, "data-stat", "total_return_pct") == f"{num(stats['total_return_pct'])} %"
    assert _cell(text, "data-hold", "total_return_pct") == f"{num(hold['total_return_pct'])} %"
    assert _cell(text, "data-stat", "sharpe") == num(stats["sharpe"])
    assert _cell(text, "data-hold", "sharpe") == num(hold["sharpe"])
    assert _cell(text, "data-stat", "max_drawdown_pct") == f"{num(stats['max_drawdown_pct'])} %"
    assert _cell(text, "data-stat", "final_equity") == num(stats["final_equity"])
    assert _cell(text, "data-stat", "trades") == num(stats["trades"], 0)
    assert _cell(text, "data-drawdown", "max_pct") == f"{num(report['drawdown']['max_pct'])} %"
    years = re.findall(r'<tr data-year="(\d{4})">', text)
    assert years == [str(row["year"]) for row in report["monthly_returns"]] == ["2005", "2006"]
    rows = re.findall(r'<tr data-trade="\d+">(.*?)</tr>', text, re.S)
    assert len(rows) == len(report["trades"])
    for row, trade in zip(rows, report["trades"], strict=True):
        assert _cell(row, "data-field", "entry_date") == trade["entry_date"]
        assert _cell(row, "data-field", "entry_price") == num(trade["entry_price"])
        if trade["exit_date"] is not None:
            assert _cell(row, "data-field", "exit_date") == trade["exit_date"]
            assert _cell(row, "data-field", "exit_price") == num(trade["exit_price"])
            assert _cell(row, "data-field", "r_multiple") == num(trade["r_multiple"])
        assert _cell(row, "data-field", "pnl") == signed(trade["pnl"])
    assert 'data-chart="backtest-equity"' in text and 'data-chart="backtest-candles"' in text
    assert "/static/js/backtest_charts.js" in text and "<script>" not in text  # no inline script

    listed = client.get("/backtests").text
    row = re.search(rf'<tr data-backtest="{backtest_id}" data-status="succeeded">(.*?)</tr>', listed, re.S)
    assert row and f"{signed(stats['total_return_pct'])} %" in row.group(1)
    assert f'<td data-label="Trades" class="num">{stats["trades"]}</td>' in row.group(1)


def test_the_chart_json_agrees_with_the_report(app, client):
    backtest_id = _start(client)
    report = _wait(client, backtest_id)["report"]
    stats, hold = report["stats"], report["buy_and_hold"]
    curves = client.get(f"/backtests/{backtest_id}/curves.json").json()
    assert len(curves["dates"]) == len(curves["equity"]) == len(curves["drawdown_pct"]) == stats["sessions"]
    assert curves["dates"][0] == stats["start"] and curves["dates"][-1] == stats["end"]
    assert curves["equity"][-1] == pytest.approx(stats["final_equity"])
    assert curves["buy_and_hold"][-1] == pytest.approx(hold["final_equity"])
    assert -min(curves["drawdown_pct"]) == pytest.approx(stats["max_drawdown_pct"])
    assert -min(curves["buy_and_hold_drawdown_pct"]) == pytest.approx(hold["max_drawdown_pct"])
    assert max(curves["drawdown_pct"]) <= 0

    data = client.get(f"/backtests/{backtest_id}/bars.json").json()
    bars, trades = data["bars"], data["trades"]
    assert len(bars["t"]) == report["bars"] and len(trades) == len(report["trades"])
    times = set(bars["t"])
    for trade, recorded in zip(trades, report["trades"], strict=True):
        assert trade["entry_t"] in times and trade["entry_price"] == recorded["entry_price"]
        assert trade["exit_t"] in times if recorded["exit_date"] else trade["exit_t"] is None
    def day(t: int) -> str:  # a bar's session (New York dates)
        return datetime.fromtimestamp(t, NEW_YORK).date().isoformat()

    for trade in trades:  # each marker sits on the bar of its session
        assert day(trade["entry_t"]) == trade["entry_date"]
    assert (day(data["tested"]["first_t"]), day(data["tested"]["last_t"])) == (stats["start"], stats["end"])
    assert bars["t"][0] < data["tested"]["first_t"]  # the lookback the indicators read comes with it


def test_the_list_pages_by_fifty_newest_first_and_the_strategy_page_links_the_form(app, client, user_id):
    ids = [running.create(app, user_id, BacktestRequest("demo", date(2005, 1, 3), date(2005, 6, 30)))
           for _ in range(51)]
    first = client.get("/backtests")
    shown = re.findall(r'<tr data-backtest="([^"]+)"', first.text)
    assert len(shown) == 50 and set(shown) <= set(ids) and 'rel="next"' in first.text
    second = client.get("/backtests?offset=50")
    rest = re.findall(r'<tr data-backtest="([^"]+)"', second.text)
    assert len(rest) == 1 and set(shown) | set(rest) == set(ids) and 'rel="prev"' in second.text
    # a running one: its progress is polled
    page = client.get(f"/backtests/{ids[0]}")
    assert 'hx-get="/backtests/' in page.text and 'data-status="running"' in page.text
    assert "backtest_charts.js" not in page.text

    strategy = client.get("/strategies/demo").text
    link = html.unescape(re.search(r'<a href="([^"]+)"[^>]*data-testid="backtest-link"', strategy).group(1))
    assert link == "/backtests?strategy=demo&from=2005-01-03#new-backtest"
    form = client.get(link.split("#")[0]).text
    assert "<option selected>demo</option>" in form and 'name="from" id="bt-from" value="2005-01-03"' in form


@pytest.mark.parametrize("fields, field, words", [
    ({"from": "2006-12-29", "to": "2005-01-03"}, "backtest", "is after"),
    ({"from": "yesterday"}, "from", "YYYY-MM-DD"),
    ({"from": "20050103"}, "from", "YYYY-MM-DD"),
    ({"to": "2006-02-30"}, "to", "YYYY-MM-DD"),
    ({"to": ""}, "to", "YYYY-MM-DD"),
    ({"to": "2999-01-01"}, "backtest", "between"),
    ({"cash": "-5"}, "cash", "positive amount"),
    ({"cash": "lots"}, "cash", "positive amount"),
    ({"cash": "nan"}, "cash", "positive amount"),
    ({"strategy": "nope"}, "strategy", "no strategy named"),
    ({"strategy": ""}, "strategy", "choose"),
])
def test_bad_input_shows_the_form_with_the_reason_and_starts_nothing(app, client, fields, field, words):
    answer = client.post("/backtests", data={**RANGE, "csrf_token": client.csrf, **fields})
    assert answer.status_code == 422, answer.text
    error = re.search(rf'<li data-error-for="{field}">(.*?)</li>', answer.text, re.S)
    assert error and words in html.unescape(error.group(1)), answer.text
    assert 'data-testid="backtest-form"' in answer.text and 'data-testid="no-backtests"' in answer.text
    assert client.get("/api/backtests").json()["items"] == []


def test_a_form_without_the_csrf_token_is_refused(app, client):
    for token in (None, "forged"):
        data = {**RANGE, **({"csrf_token": token} if token else {})}
        assert client.post("/backtests", data=data).status_code == 403
    assert client.get("/api/backtests").json()["items"] == []


def test_a_failed_backtest_shows_its_error(app, client):
    backtest_id = _start(client, **{"from": "2020-01-02", "to": "2020-12-31"})
    api = _wait(client, backtest_id)
    assert api["status"] == "failed"
    page = client.get(f"/backtests/{backtest_id}").text
    shown = html.unescape(re.search(r'data-testid="backtest-error">(.*?)</p>', page, re.S).group(1))
    assert shown == api["error"] and "2018-12-31" in shown
    assert client.get(f"/backtests/{backtest_id}/curves.json").status_code == 404


def test_another_users_backtest_is_a_404(app, client):
    backtest_id = _start(client)
    _wait(client, backtest_id)
    create_user(app, "mallory", PASSWORD)
    other = web_client(app)
    sign_in(other, "mallory", PASSWORD)
    for path in ("", "/progress", "/curves.json", "/bars.json"):
        assert other.get(f"/backtests/{backtest_id}{path}").status_code == 404, path
    assert backtest_id not in other.get("/backtests").text
    assert other.get("/backtests/not-an-id").status_code == 404
