"""A backtest walked through in a real Chromium: the strategy page's "Backtest" opens the form pre-filled,
the form starts a backtest of the demo over 2005-01-03..2006-12-29, its page shows the report once it has
ended, both charts draw (a canvas each, the trades' markers on the bars), the trades table has a row per
trade of ``GET /api/backtests/{id}``, and the page fits a phone's 375 px."""

from __future__ import annotations

import re

import pytest

from tests.support.web_browser import PHONE, demo_user, open_web

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]


def test_a_backtest_started_from_the_form_shows_its_report_and_charts(app, web, chromium, live):
    demo_user(app)
    web.sign_in(next_path="/strategies/demo")
    page = web.page
    with page.expect_navigation():
        page.get_by_test_id("backtest-link").click()
    assert page.input_value("#bt-strategy") == "demo" and page.input_value("#bt-from") == "2005-01-03"
    page.fill("#bt-to", "2006-12-29")
    page.fill("#bt-cash", "50000")
    with page.expect_navigation():
        page.get_by_test_id("start-backtest").click()
    backtest_id = re.search(r"/backtests/([0-9a-f-]{36})$", page.url).group(1)

    page.get_by_test_id("backtest-stats").wait_for(timeout=90_000)  # the progress reloads the page when done
    page.locator("figure[data-chart=backtest-equity][data-chart-ready]").wait_for()
    page.locator("figure[data-chart=backtest-candles][data-chart-ready]").wait_for()
    api = page.request.get(web.url(f"/api/backtests/{backtest_id}")).json()
    assert api["status"] == "succeeded"
    trades = api["report"]["trades"]
    assert trades and page.locator("[data-testid=backtest-trades] tbody tr").count() == len(trades)
    for figure in ("equity-chart", "candle-chart"):
        assert page.get_by_test_id(figure).locator("canvas").count() >= 1, figure
    equity = page.get_by_test_id("equity-chart")
    assert equity.get_attribute("data-points") == str(api["report"]["stats"]["sessions"])
    candles = page.get_by_test_id("candle-chart")
    assert candles.get_attribute("data-bars") == str(api["report"]["bars"])
    marks = len(trades) + sum(1 for t in trades if t["exit_date"] is not None)
    assert candles.get_attribute("data-markers") == str(marks)
    shown = page.locator("[data-stat=total_return_pct]").inner_text()
    assert shown == f"{api['report']['stats']['total_return_pct']:,.2f} %"
    web.shot("backtest")

    web.goto("/backtests")
    assert page.locator(f"tr[data-backtest='{backtest_id}'][data-status=succeeded]").count() == 1
    web.shot("backtests")

    phone = open_web(chromium, live, "backtest-phone", PHONE)
    try:
        phone.sign_in(next_path=f"/backtests/{backtest_id}")
        phone.page.locator("figure[data-chart=backtest-equity][data-chart-ready]").wait_for()
        assert phone.horizontal_overflow() == 0
        phone.shot("backtest-phone")
        phone.check_clean()
    finally:
        phone.context.close()
