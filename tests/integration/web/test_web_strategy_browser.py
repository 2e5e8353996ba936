"""The strategy, symbol, prompt, settings and broker pages in a real Chromium: the wizard writes a strategy
(symbol picked from the cache's search, each step's preview, validation) that then runs from its page; pause
and enable; an edit saves a new version and the diff shows it; a token shown once works against the API
until revoked; a prompt edited with its preview; a symbol search; reconcile; a new password; and every new
page at a phone's 375 px without horizontal scrolling, with a screenshot of each."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from tests.support.web_browser import PHONE, demo_user, open_web
from tradetrail.services.runs.executions import run_strategy
from tradetrail.services.strategies.configs import strategy_detail

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]
SCRIPT = "<script>alert(1)</script>"


def _api_status(base: str, token: str) -> int:
    request = urllib.request.Request(base + "/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_wizard_writes_a_strategy_that_runs_and_its_page_edits_it(app, web):
    user_id, _ = demo_user(app)
    dialogs: list[str] = []
    web.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    web.sign_in(next_path="/strategies/new")
    page = web.page
    page.select_option("#f-market_data-source", "sample")
    page.fill("#symbol-query", "SPX")
    page.locator("#symbol-choices button[data-symbol=SPX]").click()
    assert page.input_value("#f-symbol") == "SPX"
    page.fill("#f-market_data-replay_start", "2005-01-03")
    page.fill("#f-description", SCRIPT)
    page.get_by_test_id("preview-prompts").click()
    assert "{{" not in page.locator("[data-prompt-role=system]").inner_text()
    page.get_by_test_id("preview-schedule").click()
    page.get_by_test_id("next-runs").locator("ol li").nth(4).wait_for()
    times = page.get_by_test_id("next-runs").locator("ol li").all_inner_texts()
    assert len(times) == 5 and all(re.match(r"\d{4}-\d\d-\d\d 09:35 E[SD]T", t) for t in times)
    page.get_by_test_id("preview-sizing").click()
    # 1 % of the replay account's 100,000 at 4 a unit is 250; the 20 % position cap allows 200
    assert page.get_by_test_id("sizing-result").inner_text() == "buy 200 (LMT 100) risking 800.00 of 1000.00"
    assert "capped by max_position_pct: 200 units" in page.get_by_test_id("sizing-example").inner_text()
    page.fill("#f-name", "swing")
    page.get_by_test_id("validate").click()
    page.get_by_test_id("valid").wait_for()
    web.shot("wizard")
    with page.expect_navigation():
        page.get_by_test_id("save").click()
    assert page.url == web.url("/strategies/swing")
    assert page.get_by_test_id("strategy-description").inner_text() == SCRIPT  # shown as text
    assert page.get_by_test_id("no-runs").is_visible()

    with page.expect_navigation():
        page.get_by_test_id("run-now").click()
    assert re.search(r"/executions/[0-9a-f-]{36}$", page.url)
    execution_id = page.url.rsplit("/", 1)[1]
    page.wait_for_function("() => document.querySelector('#execution-head').dataset.status === 'succeeded'",
                           timeout=60_000)
    web.goto("/strategies/swing")
    assert "succeeded" in page.get_by_test_id("strategy-runs").locator(f"tr[data-execution='{execution_id}']") \
        .inner_text()

    with page.expect_navigation():
        page.get_by_test_id("toggle-enabled").click()
    assert page.get_by_test_id("enabled-state").inner_text() == "paused"
    assert not strategy_detail(app, user_id, "swing")["enabled"]
    with page.expect_navigation():
        page.get_by_test_id("toggle-enabled").click()
    assert page.get_by_test_id("enabled-state").inner_text() == "enabled"

    page.locator("details[data-edit-step=timeframes] summary").click()
    page.fill("#f-indicators-rsi_period", "21")
    with page.expect_navigation():
        page.get_by_test_id("save-version").click()
    row = page.get_by_test_id("diff").locator("tr[data-diff-field='indicators.rsi_period']")
    assert row.locator("td").all_inner_texts()[1:] == ["14", "21"]
    assert strategy_detail(app, user_id, "swing")["version"] == 2
    web.shot("strategy")
    web.goto("/strategies")
    assert page.get_by_test_id("strategies").locator("tr[data-strategy=swing]").is_visible()
    web.shot("strategies")
    assert dialogs == ["Run swing now? In paper mode it may place orders."]  # the one question; no alert ran


def test_settings_prompts_symbols_and_broker(app, web, live):
    user_id, _ = demo_user(app)
    run_strategy(app, user_id, "demo")
    web.page.on("dialog", lambda dialog: dialog.accept())
    web.sign_in(next_path="/symbols")
    page = web.page
    page.fill("#symbol-search", "SPX")
    with page.expect_navigation():
        page.get_by_test_id("search").click()
    assert page.get_by_test_id("symbol-results").locator("tr[data-symbol=SPX]").is_visible()
    web.shot("symbols")

    web.goto("/prompts")
    web.shot("prompts")
    web.goto("/prompts/daily")
    page.fill("textarea[name=body]", "Last close {{ close }} of {{ symbol }}.")
    page.get_by_test_id("preview").click()
    rendered = page.get_by_test_id("rendered").inner_text()
    assert rendered.startswith("Last close ") and "{{" not in rendered
    with page.expect_navigation():
        page.get_by_test_id("save-prompt").click()
    assert "yours, v1" in page.locator("hgroup").inner_text()
    web.shot("prompt")

    web.goto("/broker")
    with page.expect_navigation():
        page.get_by_test_id("reconcile").click()
    report = page.get_by_test_id("reconcile-report")
    assert report.locator("[data-report=position_mismatches]").inner_text() == "0"
    web.shot("broker")

    web.goto("/settings")
    page.fill("#token-name", "script")
    with page.expect_navigation():
        page.locator("[data-testid=create-token] button[type=submit]").click()
    token = page.get_by_test_id("token-value").inner_text()
    assert _api_status(live, token) == 200
    web.shot("settings-new-token")
    web.goto("/settings")
    assert token not in page.content()  # shown once
    with page.expect_navigation():
        page.locator("button[data-revoke]").click()
    assert page.get_by_test_id("tokens").locator("tr[data-revoked=yes]").count() == 1
    assert _api_status(live, token) == 401
    web.shot("settings")

    new = "another long passphrase"
    page.fill("input[name=current_password]", "correct horse battery")
    page.fill("input[name=new_password]", new)
    page.fill("input[name=new_password_again]", new)
    with page.expect_navigation():
        page.locator("[data-testid=change-password] button[type=submit]").click()
    assert page.url == web.url("/login?next=/settings")  # signed out, here too
    web.sign_in(password=new, next_path="/settings")
    assert page.url == web.url("/settings")


NEW_PAGES = {"/strategies": "strategies", "/strategies/new": "wizard", "/strategies/demo": "strategy",
             "/symbols?q=SPX": "symbols", "/prompts": "prompts", "/prompts/daily": "prompt", "/settings": "settings",
             "/broker": "broker"}


def test_the_new_pages_fit_a_phone(app, chromium, live, request):
    user_id, _ = demo_user(app)
    run_strategy(app, user_id, "demo")
    web = open_web(chromium, live, request.node.name, PHONE)
    try:
        web.sign_in()
        for path, name in NEW_PAGES.items():
            assert web.goto(path).status == 200, path
            assert web.horizontal_overflow() == 0, path
            web.shot(name)
        web.check_clean()
    finally:
        web.context.close()
