"""Orders in a real browser: the list with its filters, cancelling a working order (after a confirmation),
and an order's page with its events, fills, and the execution that placed it."""

from __future__ import annotations

import pytest

from tests.support.web_browser import demo_user
from tradetrail.services.runs.executions import run_strategy
from tradetrail.services.trading.order_lists import list_orders, order_detail

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]


def test_cancel_a_working_order_and_follow_it_to_its_execution(app, web):
    user_id, _ = demo_user(app)
    first = run_strategy(app, user_id, "demo").execution_id  # BUY: a bracket of three working orders
    entry = next(o for o in list_orders(app, user_id) if o["leg"] == "entry")
    web.sign_in()
    web.goto("/orders")
    page = web.page
    rows = page.get_by_test_id("orders").locator("tbody tr")
    assert rows.count() == 3 and set(rows.evaluate_all("rs => rs.map(r => r.dataset.state)")) == {"SUBMITTED"}
    web.shot("orders")

    questions = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    with page.expect_response(lambda r: r.url.endswith("/orders") and r.request.method == "GET"):
        page.locator(f"button[data-cancel='{entry['id']}']").click()
    assert questions == [f"Cancel order #{entry['id']} (entry BUY 16.0 SPX)?"]
    assert order_detail(app, user_id, entry["id"])["events"][-1]["detail"] == "cancel requested"

    page.select_option("select[name=state]", "SUBMITTED")  # the filters swap the list in place
    page.wait_for_url("**/orders?state=SUBMITTED&strategy=&symbol=")
    with page.expect_navigation():
        page.locator(f"tr[data-order='{entry['id']}'] a").first.click()
    assert page.url == web.url(f"/orders/{entry['id']}")
    events = page.get_by_test_id("events").inner_text()
    assert "cancel requested" in events and "SUBMITTED" in events
    caused = page.get_by_test_id("caused-by")
    assert caused.locator("a").get_attribute("href") == f"/executions/{first}"

    run_strategy(app, user_id, "demo")  # the next run syncs the broker: the entry is cancelled, never filled
    web.goto(f"/orders/{entry['id']}")
    assert "CANCELLED" in page.locator("h1").inner_text()
    assert page.locator("button[data-cancel]").count() == 0  # nothing left to cancel
    assert "none" in page.get_by_test_id("fills").inner_text()
    web.shot("cancelled-order")
    with page.expect_navigation():
        caused.locator("a").click()
    assert page.url == web.url(f"/executions/{first}")
