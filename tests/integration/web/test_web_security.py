"""The web UI's isolation, escaping and policy in a real browser: another user's execution or order is a
404 page; a strategy described as a script and a model answer full of HTML show as text and run nothing;
Swagger UI at /docs loads nothing from the internet; and every page fits a phone's 375 px without
horizontal scrolling (with a screenshot of each, at both widths)."""

from __future__ import annotations

import pytest

from tests.fakes.openai_server import Behaviour, FakeOpenAIServer
from tests.support.api_client import PASSWORD
from tests.support.llm_runs import FIRST_CLOSE, llm_app, llm_strategy
from tests.support.web_browser import PHONE, demo_user, open_web
from tests.support.web_live import live_server
from tradetrail.services.accounts.users import create_user, set_password
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.trading.order_lists import list_orders
from tradetrail.web.headers import CSP

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]
SCRIPT = "<script>alert(1)</script>"
HTML_ANSWER = {"action": "BUY", "confidence": 72, "trend": "bullish", "entry": FIRST_CLOSE, "stop_loss": 1184.3,
               "take_profit": 1237.64, "key_factors": ["<b>bold</b> claim", "<script>alert(3)</script>"],
               "reasoning": "<img src=x onerror=alert(2)> Trend is up. <a href='javascript:alert(4)'>click</a>"}


def test_another_users_execution_order_and_chart_are_not_found(app, web):
    user_id, _ = demo_user(app)
    execution_id = run_strategy(app, user_id, "demo").execution_id
    order_id = list_orders(app, user_id)[0]["id"]
    chart = get_execution(app, execution_id)["steps"][5]["artifacts"]["chart_daily"]
    create_user(app, "mallory", PASSWORD)
    web.sign_in("mallory")
    assert web.page.request.get(web.url(f"/api/artifacts/{chart}")).status == 404  # what the viewer's <img> asks
    for path in (f"/executions/{execution_id}", f"/orders/{order_id}", f"/executions/{execution_id}/events",
                 f"/executions/{execution_id}/steps/1/recorded"):
        response = web.goto(path)
        assert response.status == 404, path
        assert web.page.locator("[data-error-status='404'] h1").inner_text() == "Not found"
    web.shot("not-found")
    for path in (f"/orders/{order_id}/cancel", f"/executions/{execution_id}/replay"):  # a forged form post
        token = web.page.locator("meta[name=csrf-token]").get_attribute("content")
        answer = web.page.request.post(web.url(path), form={"csrf_token": token})
        assert answer.status == 404, path
    web.goto("/executions")
    assert web.page.get_by_test_id("no-executions").is_visible()  # nor listed
    web.problems.clear()  # the 404 documents are logged by the console as failed resources


def test_a_script_in_a_description_or_a_model_answer_is_shown_as_text(chromium, settings, request):
    with FakeOpenAIServer() as fake:
        fake.enqueue(Behaviour.ok(HTML_ANSWER))
        app = llm_app(settings, fake)
        user_id = llm_strategy(app, {"description": SCRIPT}, name=SCRIPT)  # the API refuses such a name; the
        set_password(app, "demo", PASSWORD)                                # service does not, so pages escape it
        execution_id = run_strategy(app, user_id, SCRIPT).execution_id
        with live_server(app) as base:
            web = open_web(chromium, base, request.node.name)
            dialogs = []
            web.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            try:
                web.sign_in()
                response = web.goto(f"/executions/{execution_id}")
                assert response.headers["content-security-policy"] == CSP
                card = web.page.locator("[data-step=load_strategy]")
                assert card.get_by_test_id("description").inner_text() == SCRIPT
                assert web.page.title().startswith(SCRIPT) and web.page.locator("h1").inner_text().startswith(SCRIPT)
                analyze = web.page.locator("[data-step=analyze]")
                assert analyze.get_by_test_id("reasoning").inner_text() == HTML_ANSWER["reasoning"]
                assert "<script>alert(3)</script>" in analyze.get_by_test_id("answer").inner_text()
                analyze.locator("details.raw-answer summary").click()
                assert "<img src=x onerror=alert(2)>" in analyze.get_by_test_id("raw-answer").inner_text()
                assert web.page.locator("img[src=x], a[href^=javascript], #main b").count() == 0  # no markup made
                web.shot("escaped")
                for path in ("/", "/executions", "/orders", "/portfolio"):
                    web.goto(path)
                    assert SCRIPT in web.page.locator("main").inner_text(), path  # the name, as text
                web.page.wait_for_timeout(300)
                assert dialogs == []  # nothing ran
                web.check_clean()
            finally:
                web.context.close()


def test_docs_come_from_this_server(app, web):
    response = web.goto("/docs")
    assert response.headers["content-security-policy"] == CSP
    web.page.wait_for_selector("#swagger-ui .information-container .title")
    assert "tradetrail" in web.page.locator("#swagger-ui .information-container .title").inner_text()
    assert web.page.locator("#swagger-ui .opblock").count() > 20  # every operation is listed
    web.shot("docs")
    # web.check_clean() (teardown) fails the test for any request that left the server or any CSP violation


PAGES = {"/": "dashboard", "/executions": "executions", "/executions/{execution}": "execution", "/orders": "orders",
         "/orders/{order}": "order", "/portfolio": "portfolio", "/docs": "docs"}


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_every_page_fits_the_screen_without_horizontal_scrolling(app, chromium, live, request, viewport):
    user_id, _ = demo_user(app)
    runs = [run_strategy(app, user_id, "demo").execution_id for _ in range(3)]
    order_id = list_orders(app, user_id)[0]["id"]
    web = open_web(chromium, live, request.node.name, PHONE if viewport == "phone" else {"width": 1280,
                                                                                          "height": 900})
    try:
        web.goto("/login")
        assert web.horizontal_overflow() == 0
        web.shot("login")
        web.sign_in()
        for path, name in PAGES.items():
            web.goto(path.format(execution=runs[0], order=order_id))
            web.page.wait_for_timeout(200)  # charts draw after their data arrives
            assert web.horizontal_overflow() == 0, path
            web.shot(name)
        web.page.evaluate("() => { const d = document.createElement('div'); d.style.width = '2000px'; "
                          "d.textContent = 'wide'; document.querySelector('main').append(d); }")
        assert web.horizontal_overflow() > 0  # the check does see a page wider than the screen
        web.check_clean()
    finally:
        web.context.close()
