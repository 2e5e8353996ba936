"""Signing in and out in a real browser: the login form, a wrong password, logout, and anonymous visits
sent to the login page and back to where they were going."""

from __future__ import annotations

import pytest

from tests.support.web_browser import demo_user

pytest_plugins = ["tests.support.web_browser"]  # the chromium, live and web fixtures
pytestmark = [pytest.mark.browser, pytest.mark.once]


def test_login_wrong_password_and_logout(app, web):
    demo_user(app)
    web.goto("/")
    assert web.page.url == web.url("/login?next=/")
    web.shot("login")
    web.sign_in(password="not the password")
    assert web.page.url.startswith(web.url("/login"))
    assert web.page.get_by_test_id("login-error").inner_text() == "wrong user name or password"
    assert web.page.input_value("input[name=username]") == "demo"  # what was typed stays, the password does not
    assert web.page.input_value("input[name=password]") == ""
    web.shot("wrong-password")
    web.problems.clear()  # the refused form answers 401: the console logs that as a failed resource

    web.sign_in()
    assert web.page.url == web.url("/")
    assert web.page.get_by_role("heading", name="Dashboard").is_visible()
    session = [c for c in web.context.cookies() if c["name"] == "tradetrail_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Lax"

    with web.page.expect_navigation():
        web.page.get_by_test_id("logout").click()
    assert web.page.url == web.url("/login")
    assert not [c for c in web.context.cookies() if c["name"] == "tradetrail_session"]
    web.goto("/portfolio")  # the session is over: back to the login page
    assert web.page.url == web.url("/login?next=/portfolio")


def test_anonymous_visit_returns_to_its_page_after_sign_in(app, web):
    demo_user(app)
    web.goto("/executions?status=failed&trigger=manual")
    assert web.page.url == web.url("/login?next=/executions%3Fstatus%3Dfailed%26trigger%3Dmanual")
    web.page.fill("input[name=username]", "demo")
    web.page.fill("input[name=password]", "correct horse battery")
    with web.page.expect_navigation():
        web.page.click("form[action='/login'] button[type=submit]")
    assert web.page.url == web.url("/executions?status=failed&trigger=manual")
    assert web.page.locator("select[name=status]").input_value() == "failed"
