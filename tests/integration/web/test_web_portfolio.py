"""The portfolio in a real browser: positions, the equity curve, statistics, and each trade linked to the
executions that opened and closed it."""

from __future__ import annotations

import pytest

from tests.support.web_browser import demo_user
from tradetrail.services.runs.executions import run_strategy
from tradetrail.trading.portfolio import trades

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]


def test_trades_answer_why_with_the_executions_that_opened_and_closed_them(app, web):
    user_id, _ = demo_user(app)
    runs = [run_strategy(app, user_id, "demo").execution_id for _ in range(3)]  # BUY, then SELL (fills next bar)
    (trade,) = trades(app, user_id)
    assert trade["status"] == "closed"
    web.sign_in()
    web.goto("/portfolio")
    page = web.page
    row = page.get_by_test_id("trades").locator("tbody tr")
    assert row.count() == 1
    assert f"{trade['r_multiple']:.2f}" in row.locator("td").nth(6).inner_text()
    assert row.locator("a[data-link=opened]").get_attribute("href") == f"/executions/{runs[0]}"
    assert row.locator("a[data-link=closed]").get_attribute("href") == f"/executions/{runs[1]}"
    page.wait_for_selector("figure[data-chart=equity][data-chart-ready]")
    assert int(page.locator("figure[data-chart=equity]").get_attribute("data-points")) >= 3
    assert "1 (0 won, 1 lost)" in page.get_by_test_id("statistics").inner_text()
    assert page.get_by_test_id("accounts").locator("tbody tr").count() >= 1
    web.shot("portfolio")
    with page.expect_navigation():
        row.locator("a[data-link=opened]").click()
    assert page.url == web.url(f"/executions/{runs[0]}")
    assert page.locator("[data-step=decide_signal]").get_by_test_id("signal").inner_text().startswith("BUY")
