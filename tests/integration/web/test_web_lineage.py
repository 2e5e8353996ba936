"""The lineage viewer in a real browser: a succeeded run's 13 cards with the charts the model saw, a failed
run's error, replay with its comparison, and a run started from the UI whose steps appear as they finish."""

from __future__ import annotations

import re

import pytest

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.support.llm_runs import FIRST_CLOSE, llm_app, llm_strategy
from tests.support.web_browser import demo_user, open_web
from tests.support.web_live import live_server
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.accounts.bootstrap import demo_config
from tradetrail.services.accounts.users import set_password
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.workflow.pipeline import STEPS

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]
PIPELINE = [name for name, _ in STEPS]


def _cards(web) -> list[tuple[str, str]]:
    return [(card.get_attribute("data-step"), card.get_attribute("data-status"))
            for card in web.page.locator("article.step").all()]


def test_succeeded_execution_shows_every_step_with_the_charts_the_model_saw(app, web):
    user_id, _ = demo_user(app)
    execution = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert execution["status"] == "succeeded"
    web.sign_in()
    web.goto(f"/executions/{execution['id']}")

    assert _cards(web) == [(name, "succeeded") for name in PIPELINE]
    for card in web.page.locator("article.step").all():  # each card names its step and how long it took
        assert re.search(r"\d+(\.\d+)? (ms|s)$", card.locator(".duration").inner_text())
    images = web.page.locator("img[data-chart-image]")
    assert images.count() == 2
    for image in images.all():
        image.scroll_into_view_if_needed()
        web.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        assert image.evaluate("img => img.naturalWidth") > 0
        full = web.page.request.get(web.url(image.locator("xpath=..").get_attribute("href")))  # click: full size
        assert full.status == 200 and full.headers["content-type"] == "image/png"
    candles = web.page.locator("[data-step=fetch_market_data] figure[data-chart=candles]")
    web.page.wait_for_selector("[data-step=fetch_market_data] figure[data-chart-ready]")
    assert candles.get_attribute("data-bars") == "1500"  # the bars as of the run, not the source's today
    assert int(candles.get_attribute("data-markers")) >= 1  # the run's BUY signal on the last bar
    assert candles.locator("canvas").count() > 0
    assert candles.locator("a#tv-attr-logo").is_visible()  # TradingView's attribution, as its licence asks

    confirmation = web.page.locator("[data-step=compute_indicators] [data-timeframe=daily]")
    assert "BULLISH" in confirmation.inner_text() and "3 bullish, 1 bearish" in confirmation.inner_text()
    analyze = web.page.locator("[data-step=analyze]")
    assert "rules analyst" in analyze.get_by_test_id("analyst-label").inner_text()
    analyze.locator("details.prompt summary").click()
    assert "disciplined technical analyst" in analyze.get_by_test_id("prompt-system").inner_text()
    signal = web.page.locator("[data-step=decide_signal]")
    assert signal.get_by_test_id("signal").inner_text().startswith("BUY")
    assert signal.locator("tr[data-passed=true]").count() == 5 and signal.locator("tr[data-passed=false]").count() == 0
    sizing = web.page.locator("[data-step=risk_check]").get_by_test_id("sizing").inner_text()
    assert "risk budget = equity 100,000.00 × 1.0 % = 1,000.00" in sizing
    assert "size by risk = floor(1,000.00 ÷ 41.8216) = 23" in sizing and "capped by max_position_pct" in sizing
    orders = web.page.locator("[data-step=place_order] details.order")
    assert orders.count() == 3  # the bracket: entry, stop, target, each linked to its page
    first = orders.first.locator("summary a")
    assert re.fullmatch(r"/orders/\d+", first.get_attribute("href"))
    assert "100,000.00" in web.page.locator("[data-step=update_portfolio]").get_by_test_id("equity").inner_text()
    recorded = web.page.locator("[data-step=risk_check] details.raw")
    recorded.locator("summary").click()  # the recorded data loads when asked for (htmx), not with the page
    assert '"risk_budget": 1000.0' in recorded.get_by_test_id("recorded").inner_text()
    web.shot("succeeded")


def test_failed_execution_shows_the_failing_step_with_its_error(app, web):
    user_id, _ = demo_user(app)
    data = demo_config().to_json()
    data["market_data"]["replay_start"] = "1999-03-01"  # 39 sessions of history: too few for the indicators
    with app.Session() as s:
        save_strategy(s, app, user_id, "young", StrategyConfig.model_validate(data))
        s.commit()
    execution = get_execution(app, run_strategy(app, user_id, "young").execution_id)
    assert execution["status"] == "failed"
    web.sign_in()
    web.goto(f"/executions/{execution['id']}")
    assert _cards(web) == [("load_strategy", "succeeded"), ("check_broker", "succeeded"),
                           ("resolve_contract", "succeeded"), ("fetch_market_data", "failed")]
    failing = web.page.locator("[data-step=fetch_market_data]")
    assert failing.get_by_test_id("step-error").inner_text() == \
        "not enough daily bars: need at least 252 (indicators need 200, minimum 252), got 39"
    traceback = failing.locator("pre.traceback")
    assert traceback.is_visible() and "Traceback" in traceback.inner_text()
    assert "fetch_market_data" in web.page.get_by_test_id("execution-error").inner_text()
    web.shot("failed")


def test_replay_from_the_viewer_shows_the_comparison_with_the_original(app, web):
    user_id, _ = demo_user(app)
    original = run_strategy(app, user_id, "demo").execution_id
    web.sign_in()
    web.goto(f"/executions/{original}")
    with web.page.expect_navigation():
        web.page.get_by_test_id("replay").click()
    web.page.wait_for_load_state("networkidle")
    replay_id = web.page.url.rsplit("/", 1)[1]
    assert replay_id != original
    assert [step for step, _ in _cards(web)] == ["load_original", "compute_indicators", "render_charts", "analyze",
                                                 "decide_signal", "compare_with_original"]
    comparison = web.page.locator("[data-step=compare_with_original]")
    assert comparison.get_by_test_id("comparison").inner_text().startswith("same signal")
    assert comparison.locator("tr.differs").count() == 0
    assert web.page.get_by_test_id("original-link").get_attribute("href") == f"/executions/{original}"
    web.shot("replay")
    with web.page.expect_navigation():
        web.page.get_by_test_id("original-link").click()
    replays = web.page.get_by_test_id("replays")
    assert "same signal" in replays.inner_text()
    assert replays.locator(f"a[href='/executions/{replay_id}']").count() == 1


def test_a_run_started_from_the_ui_shows_its_steps_as_they_finish(chromium, settings, request):
    answer = {"action": "BUY", "confidence": 72, "trend": "bullish", "entry": FIRST_CLOSE, "stop_loss": 1184.3,
              "take_profit": 1237.64, "key_factors": ["daily trend up"], "reasoning": "Higher highs."}
    with FakeOpenAIServer() as fake:
        fake.enqueue(Behaviour.slow(4.0, then=Behaviour.ok(answer)))  # the model takes 4 s to answer
        app = llm_app(settings, fake)
        llm_strategy(app)
        set_password(app, "demo", "correct horse battery")
        with live_server(app) as base:
            web = open_web(chromium, base, request.node.name)
            try:
                web.sign_in()
                web.page.on("dialog", lambda dialog: dialog.accept())  # "Run llm now? ..."
                web.page.evaluate("window.__same_page = true")
                with web.page.expect_navigation():
                    web.page.locator("button[data-run=llm]").click()
                assert re.search(r"/executions/[0-9a-f-]{36}$", web.page.url)
                web.page.evaluate("window.__same_page = true")  # gone if the page reloads
                web.page.wait_for_selector("[data-step=render_charts]")
                shown = [step for step, _ in _cards(web)]
                assert "analyze" not in shown and web.page.get_by_test_id("live").is_visible()  # the model thinks
                web.shot("running")
                web.page.wait_for_selector("[data-step=complete]", timeout=60_000)
                assert [step for step, _ in _cards(web)] == PIPELINE  # each once, in order
                assert web.page.evaluate("window.__same_page === true")  # they came in, no reload
                head = web.page.locator("#execution-head")
                web.page.wait_for_function("() => document.querySelector('#execution-head').dataset.status "
                                           "=== 'succeeded'")
                assert "succeeded" in head.inner_text() and web.page.get_by_test_id("live").count() == 0
                web.page.wait_for_selector("[data-step=fetch_market_data] figure[data-chart-ready]")
                web.shot("finished")
                web.check_clean()
            finally:
                web.context.close()
