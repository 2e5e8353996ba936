"""The web UI's rules over plain HTTP, on both database backends: who may see a page, CSRF on every change,
the login form's own token and redirects, the security headers, the live-step stream, and bad input."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.support.api_client import PASSWORD
from tests.support.web_http import login_form, page_csrf, sign_in, web_client
from tradetrail.domain.errors import NotFound
from tradetrail.server.app import create_app
from tradetrail.services.runs.executions import run_strategy
from tradetrail.trading import trading_state
from tradetrail.web.headers import CSP
from tradetrail.web.routing import page_router
from tradetrail.web.session import PageError, PageUser

PAGES = ["/", "/executions", "/orders", "/portfolio"]


@pytest.fixture
def client(app, user_id):
    """Not signed in (the conftest's ``client`` is)."""
    return web_client(app)


def test_anonymous_requests_go_to_the_login_page(client):
    for path in [*PAGES, "/executions?status=failed", "/orders/1", "/executions/abc"]:
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=/"), path
    assert client.get("/executions?status=failed").headers["location"] == "/login?next=/executions%3Fstatus%3Dfailed"
    htmx = client.get("/orders", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/login?next=/orders"
    assert client.post("/trading-state", data={"action": "halt"}).headers["location"] == "/login?next=/trading-state"


def test_every_state_change_needs_the_sessions_csrf_token(app, client, user_id):
    token = sign_in(client)

    def state() -> str:
        return trading_state.list_states(app, user_id)[0]["state"]

    for headers, data in (({}, {"action": "halt"}), ({"X-CSRF-Token": "forged"}, {"action": "halt"}),
                          ({}, {"action": "halt", "csrf_token": "forged"})):
        refused = client.post("/trading-state", headers=headers, data=data)
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert state() == "ACTIVE"
    by_header = client.post("/trading-state", headers={"X-CSRF-Token": token}, data={"action": "halt", "next": "/"})
    assert by_header.status_code == 303 and by_header.headers["location"] == "/" and state() == "HALTED"
    by_field = client.post("/trading-state", data={"action": "resume", "csrf_token": token})
    assert by_field.status_code == 303 and state() == "ACTIVE"
    assert client.post("/logout").status_code == 403  # even signing out
    assert client.post("/logout", data={"csrf_token": token}).headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_a_browser_that_lost_its_csrf_cookie_gets_a_new_token_and_the_old_one_stops(client):
    old = sign_in(client)
    client.cookies.delete("tradetrail_csrf")
    page = client.get("/")
    new = page_csrf(page.text)
    assert new != old and re.search(r"tradetrail_csrf=[^;]+;", page.headers["set-cookie"])
    assert client.post("/trading-state", data={"action": "halt", "csrf_token": old}).status_code == 403
    assert client.post("/trading-state", data={"action": "halt", "csrf_token": new}).status_code == 303


def test_the_login_form_has_its_own_token_and_redirects_only_on_this_site(client):
    assert login_form(client, "demo", PASSWORD, token="").status_code == 403  # no form token: no session
    assert login_form(client, "demo", PASSWORD, token="forged").status_code == 403
    wrong = login_form(client, "demo", "wrong password!")
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    assert "tradetrail_session" not in client.cookies
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example", "/"), ("/\\evil.example", "/"),
                             ("/orders?state=FILLED", "/orders?state=FILLED")):
        client.cookies.clear()
        answer = login_form(client, "demo", PASSWORD, next_url=target)
        assert answer.status_code == 303 and answer.headers["location"] == expected, target
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("tradetrail_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session
    assert client.get("/login?next=/portfolio").headers["location"] == "/portfolio"  # signed in already


def test_pages_carry_a_strict_csp_and_no_inline_script(client):
    sign_in(client)
    for path in [*PAGES, "/docs", "/login", "/api/lineage/recent", "/health", "/static/css/app.css"]:
        answer = client.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    for path in [*PAGES, "/docs", "/login"]:
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):  # each script is one of our files, or inert JSON data
            assert re.search(r'src="/static/', tag) or 'type="application/json"' in tag, (path, tag)
        assert " style=" not in html and "<style" not in html, path
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):  # every asset from this server
            assert url.startswith(("/", "#")) or url == "https://www.tradingview.com/", (path, url)


def test_pages_stay_out_of_the_api_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert all(p.startswith("/api/") or p == "/health" for p in paths)
    assert "/docs" not in paths and "/" not in paths


def test_docs_and_vendor_assets_are_served_locally(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js" defer></script>' in docs.text
    assert '<script src="/static/js/swagger-init.js" defer></script>' in docs.text
    for path, kind in (("/static/vendor/swagger-ui/swagger-ui-bundle.js", "javascript"),
                       ("/static/vendor/htmx/htmx.min.js", "javascript"),
                       ("/static/vendor/lightweight-charts/lightweight-charts.standalone.production.js", "javascript"),
                       ("/static/vendor/pico/pico.min.css", "text/css")):
        answer = client.get(path)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], path
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not served


def test_the_live_stream_sends_each_step_once_then_done(app, client, user_id):
    sign_in(client)
    execution_id = run_strategy(app, user_id, "demo").execution_id
    with client.stream("GET", f"/executions/{execution_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = "".join(stream.iter_text())
    events = re.findall(r"^event: (\w+)$", body, flags=re.M)
    assert events == ["step"] * 13 + ["done"]
    assert re.findall(r"^id: (\d+)$", body, flags=re.M) == [str(n) for n in range(1, 14)]
    assert 'data: <article class="step step-succeeded" id="step-1" data-step="load_strategy"' in body
    assert 'data: <section id="execution-head" data-status="succeeded">' in body
    with client.stream("GET", f"/executions/{execution_id}/events",
                       headers={"Last-Event-ID": "11"}) as stream:  # a reconnecting browser: only what it lacks
        resumed = "".join(stream.iter_text())
    assert re.findall(r"^id: (\d+)$", resumed, flags=re.M) == ["12", "13"]


def test_bad_input_gets_a_clear_page(client):
    token = sign_in(client)
    for path, text in (("/executions?status=lost", "status must be one of"),
                       ("/executions?from=yesterday", "from must be a date"),
                       ("/orders?state=GONE", "state must be one of"),
                       ("/orders?symbol=%3Cb%3E", "a symbol is 1–32 letters"),
                       ("/executions?offset=-1", "offset")):
        answer = client.get(path)
        assert answer.status_code == 400 and text in answer.text, path
        assert "<b>" not in answer.text
    assert client.get("/executions/not%20an%20id").status_code == 400
    assert client.get("/executions?strategy=nope").status_code == 404  # a strategy not yours: as in the API
    as_json = client.post("/trading-state", headers={"X-CSRF-Token": token}, json={"action": "halt"})
    assert as_json.status_code == 415
    nul = client.post("/trading-state", data={"action": "halt\x00", "csrf_token": token})
    assert nul.status_code == 400 and "NUL" in nul.text
    unknown = client.post("/trading-state", data={"action": "sell everything", "csrf_token": token})
    assert unknown.status_code == 400 and "halt, reducing or resume" in unknown.text
    assert client.post("/executions/run", data={"strategy": "nope", "csrf_token": token}).status_code == 404
    assert client.post("/trading-state", data={"action": "halt", "strategy": "nope",
                                               "csrf_token": token}).status_code == 404


def test_a_page_that_fails_says_so_without_its_traceback(app, user_id):
    router = page_router()  # a page as any view module declares one

    @router.get("/broken/{kind}")
    def broken(kind: str, user: PageUser):
        if kind == "missing":
            raise NotFound("no such thing 'x'")
        if kind == "refused":
            raise PageError(409, "Not now", "the market is closed")
        raise RuntimeError("secret internals at /srv/db")

    api = create_app(app, background=False)
    api.include_router(router)
    client = TestClient(api, follow_redirects=False)
    assert client.get("/broken/boom").status_code == 303  # signed out: to the login page, as every page
    sign_in(client)
    boom = client.get("/broken/boom")
    assert boom.status_code == 500 and "Something went wrong" in boom.text
    assert "secret internals" not in boom.text and "Traceback" not in boom.text
    assert boom.headers["content-type"].startswith("text/html")
    missing = client.get("/broken/missing")
    assert missing.status_code == 404 and "no such thing &#39;x&#39;" in missing.text
    refused = client.get("/broken/refused", headers={"HX-Request": "true"})
    assert refused.status_code == 409 and "the market is closed" in refused.text
    assert refused.headers["HX-Retarget"] == "body"  # htmx shows the error page instead of ignoring it


def test_repeated_wrong_passwords_are_held_off_with_retry_after(client):
    for _ in range(5):
        assert login_form(client, "demo", "not the password").status_code == 401
    held = login_form(client, "demo", PASSWORD)  # even the right one, until the window passes
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0
    assert "too many failed logins" in held.text and "tradetrail_session" not in client.cookies


def test_the_viewer_names_the_rule_that_denied_an_entry(app, client, user_id):
    token = sign_in(client)
    client.post("/trading-state", data={"action": "halt", "reason": "  news\n at 14:00 ", "csrf_token": token})
    execution_id = run_strategy(app, user_id, "demo").execution_id  # a BUY, while trading is halted
    page = client.get(f"/executions/{execution_id}").text
    risk = page[page.index('data-step="risk_check"'):page.index('data-step="place_order"')]
    assert "denied" in risk and "trading_state: trading is HALTED: no new entries" in risk
    assert '<tr data-rule="trading_state"><td>trading_state</td><td>trading is HALTED: no new entries</td>' in risk
    assert 'data-testid="sizing"' in risk  # the sizing it would have had, beside the rule that denied it
    assert trading_state.list_states(app, user_id)[0]["reason"] == "news at 14:00"  # one line, as typed


def test_the_portfolio_page_shows_the_win_rate_as_stored(app, user_id, client):
    """The statistics hold the win rate in percent already; the page multiplied it by 100 again (1 won of 2:
    "5,000.0 %")."""
    from datetime import UTC, datetime

    from tradetrail.db.trading_models import Trade

    at = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
    with app.Session() as s:
        for pnl in (150.0, -50.0):
            s.add(Trade(user_id=user_id, account="SIMDEMO", strategy_id=None, symbol="SPX", status="closed",
                        quantity=1.0, entry_price=100.0, exit_price=100.0 + pnl, entry_at=at, exit_at=at, pnl=pnl,
                        risk_per_unit=50.0, r_multiple=pnl / 50.0))
        s.commit()
    sign_in(client)
    page = client.get("/portfolio")
    assert page.status_code == 200, page.text
    rate = re.search(r"<dt>Win rate</dt><dd>([^<]*)</dd>", page.text)
    assert rate and rate.group(1) == "50.0 %", rate and rate.group(1)
