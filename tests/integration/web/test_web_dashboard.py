"""The dashboard in a real browser after a demo run, and the trading state's Halt / Exits only / Resume with
their confirmations (dismissing one changes nothing)."""

from __future__ import annotations

import re

import pytest

from tests.support.web_browser import demo_user
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.trading import trading_state

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]


def test_dashboard_after_a_demo_run(app, web):
    user_id, _ = demo_user(app)
    execution_id = run_strategy(app, user_id, "demo").execution_id
    account = next(s for s in get_execution(app, execution_id)["steps"] if s["name"] == "update_portfolio")["output"][
        "account"]
    web.sign_in()
    page = web.page
    assert page.get_by_test_id("global-state").inner_text() == "ACTIVE"
    row = page.get_by_test_id("accounts").locator(f"tr[data-account='{account}']")
    cells = row.locator("td").all_inner_texts()  # the demo's own simulated account, at its replay clock
    assert cells[1:] == ["100,000.00 USD", "100,000.00", "—", "0.00", "2005-01-03 21:00 UTC"]
    recent = page.get_by_test_id("recent-executions").locator(f"tr[data-execution='{execution_id}']")
    assert "succeeded" in recent.inner_text() and "BUY" in recent.inner_text()
    assert "BUY: all rules passed" in recent.inner_text()
    schedule = page.get_by_test_id("schedule").locator("tr[data-strategy=demo]")
    times = schedule.locator("ul li").all_inner_texts()
    assert len(times) == 3 and all(re.fullmatch(r"\d{4}-\d\d-\d\d 09:35 E[SD]T", t) for t in times)  # New York
    assert "connected" in page.get_by_test_id("broker").inner_text()
    web.shot("dashboard")
    with page.expect_navigation():
        recent.locator("a").first.click()
    assert page.url == web.url(f"/executions/{execution_id}")


def test_halt_exits_only_and_resume_ask_first(app, web):
    user_id, _ = demo_user(app)
    web.sign_in()
    page = web.page
    answers = []

    def answer(dialog):
        answers.append(dialog.message)
        dialog.accept() if answers_accept[0] else dialog.dismiss()

    answers_accept = [False]
    page.on("dialog", answer)
    page.locator("button[data-action=halt]").click()
    page.wait_for_timeout(300)
    assert answers and answers[-1].startswith("Halt all trading?")
    assert page.get_by_test_id("global-state").inner_text() == "ACTIVE"
    assert trading_state.list_states(app, user_id)[0]["state"] == "ACTIVE"  # dismissed: nothing sent

    answers_accept[0] = True
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/trading-state")) as sent:
        page.locator("button[data-action=halt]").click()
    assert sent.value.headers.get("x-csrf-token")  # htmx sent the session's token in the header
    page.wait_for_function("() => document.querySelector('[data-testid=global-state]').textContent === 'HALTED'")
    assert trading_state.list_states(app, user_id)[0]["state"] == "HALTED"
    web.shot("halted")

    page.locator("button[data-action=reducing]").click()
    page.wait_for_function("() => document.querySelector('[data-testid=global-state]').textContent === 'REDUCING'")
    assert trading_state.list_states(app, user_id)[0]["state"] == "REDUCING"

    page.locator("button[data-action=resume]").click()
    page.wait_for_function("() => document.querySelector('[data-testid=global-state]').textContent === 'ACTIVE'")
    assert trading_state.list_states(app, user_id)[0]["state"] == "ACTIVE"
    assert [a.split("?")[0] for a in answers] == ["Halt all trading", "Halt all trading", "Allow exits only",
                                                  "Resume trading"]
