"""The strategy, symbol, prompt, settings and broker pages over plain HTTP, on both database backends: the
wizard's previews and its errors by field, saving and running what it wrote, a new version and its diff,
enable/pause, tokens shown once, the password, reconcile, another user's strategy as a 404 page, escaping,
and CSRF on every new form."""

from __future__ import annotations

import re

from tests.support.api_client import PASSWORD
from tests.support.web_http import sign_in, web_client
from tradetrail.catalogue.symbols import cache_stats
from tradetrail.services.accounts.users import create_user, list_tokens
from tradetrail.services.prompts.diffs import diff_prompt_versions
from tradetrail.services.prompts.user_prompts import save_user_prompt
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies import configs as strategies
from tradetrail.services.strategies.drafts import draft_next_runs, sizing_example
from tradetrail.services.strategies.versions import config_diff, diff_versions, list_versions
from tradetrail.web.strategy_form import defaults, form_values

SCRIPT = "<script>alert(1)</script>"


def wizard_form(client, **changes) -> dict:
    """What the wizard posts: every field at its starting value, a replayed S&P 500 sample, and ``changes``."""
    form = {**form_values(defaults()), "symbol": "SPX", "market_data.source": "sample",
            "market_data.replay_start": "2005-01-03", "name": "swing", "csrf_token": client.csrf}
    form.update({k.replace("__", "."): v for k, v in changes.items()})
    return {k: v for k, v in form.items() if v is not None}


def test_the_wizards_previews_answer_for_the_draft(app, client):
    page = client.get("/strategies/new")
    assert page.status_code == 200
    for step in ("symbol", "timeframes", "analyst", "schedule", "risk", "review"):
        assert f'data-wizard-step="{step}"' in page.text
    found = client.get("/strategies/new/symbols", params={"q": "SPX", "market_data.source": "sample"})
    assert 'data-fill-value="SPX"' in found.text
    runs = client.post("/strategies/new/schedule", data=wizard_form(client))
    times = re.findall(r"<li>(\d{4}-\d\d-\d\d \d\d:\d\d E[SD]T)", runs.text)
    assert len(times) == 5 and all(t[11:16] == "09:35" for t in times)  # New York time, weekdays' sessions
    sized = client.post("/strategies/new/sizing", data={**wizard_form(client), "example.entry": "100",
                                                        "example.stop": "95", "example.target": "110"})
    # 1 % of the replay account's 100,000 is 1,000 at risk; 5 a unit → 200; the 20 % position cap allows 200
    assert "buy 200 (LMT 100) risking 1000.00 of 1000.00" in sized.text and "100,000.00 equity" in sized.text
    prompt = client.post("/strategies/new/prompt", data=wizard_form(client))
    assert prompt.text.count("<pre data-prompt-role=") == 3
    valid = client.post("/strategies/new/validate", data=wizard_form(client))
    assert 'data-testid="valid"' in valid.text
    bad = client.post("/strategies/new/validate", data=wizard_form(client, indicators__rsi_period="1",
                                                                    risk__max_position_pct="many"))
    assert 'data-error-for="risk.max_position_pct"' in bad.text and "must be a number" in bad.text
    unknown = client.post("/strategies/new/validate", data=wizard_form(client, analyst__prompts__daily="nope"))
    assert "analyst.prompts.daily" in unknown.text
    for path in ("/strategies/new/schedule", "/strategies/new/validate", "/strategies"):
        assert client.post(path, data={**wizard_form(client), "csrf_token": "forged"}).status_code == 403


def test_the_wizard_saves_a_strategy_that_runs_and_names_each_wrong_field(app, client, user_id):
    refused = client.post("/strategies", data=wizard_form(client, indicators__rsi_period="1",
                                                          schedule__timezone="Mars/Olympus", name="bad name"))
    assert refused.status_code == 422
    for field in ("name", "indicators.rsi_period"):
        assert f'data-error-for="{field}"' in refused.text, field
    assert 'value="Mars/Olympus"' in refused.text  # what was typed stays
    assert strategies.list_strategies(app, user_id)[-1]["name"] == "demo"
    saved = client.post("/strategies", data=wizard_form(client, description="from the wizard"))
    assert saved.status_code == 303 and saved.headers["location"] == "/strategies/swing"
    detail = strategies.strategy_detail(app, user_id, "swing")
    assert detail["config"]["symbol"] == "SPX" and detail["config"]["market_data"]["replay_start"] == "2005-01-03"
    assert detail["enabled"] and detail["config"]["description"] == "from the wizard"
    again = client.post("/strategies", data=wizard_form(client))
    assert again.status_code == 422 and "exists" in again.text
    execution = run_strategy(app, user_id, "swing")
    assert get_execution(app, execution.execution_id)["status"] == "succeeded"
    page = client.get("/strategies/swing")
    assert f'data-execution="{execution.execution_id}"' in page.text
    assert 'data-testid="strategies"' in client.get("/strategies").text


def test_editing_saves_a_new_version_and_the_diff_shows_the_change(app, client, user_id):
    page = client.get("/strategies/demo")
    form = {**{k: v for k, v in form_values(strategies.strategy_detail(app, user_id, "demo")["config"]).items()},
            "csrf_token": client.csrf}
    unchanged = client.post("/strategies/demo/edit", data=form)
    assert unchanged.headers["location"] == "/strategies/demo" and len(list_versions(app, user_id, "demo")) == 1
    edited = client.post("/strategies/demo/edit", data={**form, "indicators.rsi_period": "21",
                                                        "schedule.market_sessions_only": ""})
    assert edited.status_code == 303 and edited.headers["location"] == "/strategies/demo?old=1&new=2#diff"
    assert [v["version"] for v in list_versions(app, user_id, "demo")] == [2, 1]
    diff = client.get("/strategies/demo?old=1&new=2")
    row = re.search(r'data-diff-field="indicators.rsi_period">(.*?)</tr>', diff.text, re.S).group(1)
    assert "14" in row and "21" in row
    assert 'data-diff-field="schedule.market_sessions_only"' in diff.text
    assert [c["field"] for c in diff_versions(app, user_id, "demo", 1, 2)] == ["indicators.rsi_period",
                                                                               "schedule.market_sessions_only"]
    wrong = client.post("/strategies/demo/edit", data={**form, "risk.risk_per_trade_pct": "0"})
    assert wrong.status_code == 422 and 'data-error-for="risk.risk_per_trade_pct"' in wrong.text
    assert len(list_versions(app, user_id, "demo")) == 2
    assert 'data-testid="enabled-state">enabled' in page.text
    assert client.post("/strategies/demo/pause", data={"csrf_token": client.csrf}).status_code == 303
    assert not strategies.strategy_detail(app, user_id, "demo")["enabled"]
    assert "Paused: no scheduled run" in client.get("/strategies/demo").text
    assert client.post("/strategies/demo/enable", data={"csrf_token": client.csrf}).status_code == 303
    assert strategies.strategy_detail(app, user_id, "demo")["enabled"]
    assert client.post("/strategies/demo/pause").status_code == 403  # no CSRF token, no change
    assert strategies.strategy_detail(app, user_id, "demo")["enabled"]


def test_another_users_strategy_is_a_404_page_and_names_are_text(app, client, user_id):
    strategies.update_strategy(app, user_id, "demo", strategies.stored_config(
        {**strategies.strategy_detail(app, user_id, "demo")["config"], "description": SCRIPT}))
    page = client.get("/strategies/demo")
    assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    config = strategies.stored_config(strategies.strategy_detail(app, user_id, "demo")["config"])
    strategies.create_strategy(app, user_id, SCRIPT, config)  # the API refuses such a name; the service does not
    listing = client.get("/strategies").text
    assert SCRIPT not in listing and ">&lt;script&gt;alert(1)&lt;/script&gt;</a>" in listing
    create_user(app, "mallory", PASSWORD)
    other = web_client(app)
    token = sign_in(other, "mallory")
    for path in ("/strategies/demo", "/strategies/demo?old=1&new=2"):
        assert other.get(path).status_code == 404, path
    for path in ("/strategies/demo/edit", "/strategies/demo/pause", "/strategies/demo/enable"):
        assert other.post(path, data={"csrf_token": token}).status_code == 404, path
    assert strategies.strategy_detail(app, user_id, "demo")["enabled"]
    assert "demo" not in re.sub(r"<footer.*", "", other.get("/strategies").text.split("<main")[1], flags=re.S)
    mine = client.post("/settings/tokens", data={"name": "mine", "csrf_token": client.csrf})
    assert mine.status_code == 200
    token_id = list_tokens(app, user_id)[0]["id"]
    assert other.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": token}).status_code == 404
    assert list_tokens(app, user_id)[0]["revoked_at"] is None


def test_a_token_is_shown_once_works_against_the_api_and_is_revoked(app, client, user_id):
    created = client.post("/settings/tokens", data={"name": f"laptop {SCRIPT}", "csrf_token": client.csrf})
    token = re.search(r'data-testid="token-value">([^<]+)<', created.text).group(1)
    assert "&lt;script&gt;" in created.text and SCRIPT not in created.text
    assert created.headers["cache-control"] == "no-store"
    listing = client.get("/settings")
    assert token not in listing.text and token[:10] in listing.text  # only its prefix, ever again
    api = web_client(app)
    assert api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "demo"
    token_id = list_tokens(app, user_id)[0]["id"]
    assert client.post(f"/settings/tokens/{token_id}/revoke", data={}).status_code == 403
    revoked = client.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": client.csrf})
    assert revoked.status_code == 303
    assert api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert 'data-revoked="yes"' in client.get("/settings").text
    assert client.post("/settings/tokens", data={"name": "", "csrf_token": client.csrf}).status_code == 422


def test_changing_the_password_checks_the_current_one_and_signs_out_everywhere(app, client):
    new = "a brand new passphrase"
    wrong = client.post("/settings/password", data={"current_password": "not it", "new_password": new,
                                                    "new_password_again": new, "csrf_token": client.csrf})
    assert wrong.status_code == 422 and 'data-error-for="current_password"' in wrong.text
    differ = client.post("/settings/password", data={"current_password": PASSWORD, "new_password": new,
                                                     "new_password_again": new + "!", "csrf_token": client.csrf})
    assert differ.status_code == 422 and 'data-error-for="new_password_again"' in differ.text
    short = client.post("/settings/password", data={"current_password": PASSWORD, "new_password": "short",
                                                    "new_password_again": "short", "csrf_token": client.csrf})
    assert short.status_code == 422 and 'data-error-for="new_password"' in short.text
    done = client.post("/settings/password", data={"current_password": PASSWORD, "new_password": new,
                                                   "new_password_again": new, "csrf_token": client.csrf})
    assert done.status_code == 303 and done.headers["location"] == "/login?next=/settings"
    assert client.get("/settings").status_code == 303  # this session ended with the old password
    again = web_client(app)
    sign_in(again, password=new)  # the new password signs in (sign_in asserts the redirect)
    assert again.get("/settings").status_code == 200


def test_prompts_edit_preview_and_diff(app, client, user_id):
    builtin = client.get("/prompts/daily")
    assert builtin.status_code == 200 and "built-in" in builtin.text
    preview = client.post("/prompts/daily/preview", data={"body": "Close {{ close }} of {{ symbol }}",
                                                          "csrf_token": client.csrf})
    assert 'data-testid="rendered"' in preview.text and "{{" not in preview.text.split("rendered")[1]
    broken = client.post("/prompts/daily/preview", data={"body": "{{ nope", "csrf_token": client.csrf})
    assert 'class="notice error"' in broken.text
    first = client.post("/prompts/daily", data={"body": "Line one\r\nLine two", "description": "mine",
                                                "csrf_token": client.csrf})
    assert first.status_code == 303
    second = client.post("/prompts/daily", data={"body": "Line one\nLine 2", "description": "mine",
                                                 "csrf_token": client.csrf})
    assert second.headers["location"] == "/prompts/daily?old=1&new=2#diff"
    diff = client.get("/prompts/daily?old=1&new=2").text
    assert '<span class="del" data-line="del">-Line two</span>' in diff
    assert '<span class="add" data-line="add">+Line 2</span>' in diff
    assert [line["kind"] for line in diff_prompt_versions(app, user_id, "daily", 1, 2)] == ["hunk", "same", "del",
                                                                                            "add"]
    refused = client.post("/prompts/daily", data={"body": "", "csrf_token": client.csrf})
    assert refused.status_code == 422 and 'data-error-for="body"' in refused.text
    assert client.post("/prompts/daily", data={"body": "x"}).status_code == 403
    made = client.post("/prompts", data={"name": "limits", "body": "x", "csrf_token": client.csrf})
    assert made.status_code == 422 and 'data-error-for="name"' in made.text
    assert client.get("/prompts/nosuch").status_code == 404


def test_symbols_search_stats_and_refresh_and_broker_reconcile(app, client, user_id):
    found = client.get("/symbols", params={"q": "SPX"})
    assert found.status_code == 200 and 'data-symbol="SPX"' in found.text
    assert f'data-stat="total">{cache_stats(app)["total"]}<' in client.get("/symbols").text
    assert cache_stats(app)["total"] >= 1
    assert client.get("/symbols", params={"q": "a\x01"}).status_code == 400
    refreshed = client.post("/symbols/refresh", data={"csrf_token": client.csrf})
    assert 'data-testid="refresh-report"' in refreshed.text and "0 refreshed" in refreshed.text
    assert client.post("/symbols/refresh").status_code == 403
    run_strategy(app, user_id, "demo")
    broker = client.get("/broker")
    assert 'data-testid="broker-state"' in broker.text and "connected" in broker.text
    report = client.post("/broker/reconcile", data={"csrf_token": client.csrf})
    assert report.status_code == 200 and 'data-testid="reconcile-report"' in report.text
    assert re.search(r'data-report="position_mismatches">0<', report.text)
    assert client.post("/broker/reconcile").status_code == 403


def test_the_draft_services(app, user_id):
    config = strategies.stored_config({**defaults(), "symbol": "SPX"})
    runs = draft_next_runs(config, 5)
    assert len(runs["next"]) == 5 and runs["problem"] is None
    never = strategies.stored_config({**defaults(), "symbol": "SPX",
                                      "schedule": {"cron": "0 3 * * sun", "market_sessions_only": True}})
    assert draft_next_runs(never)["next"] == [] and "never fires" in draft_next_runs(never)["problem"]
    example = sizing_example(app, user_id, config, 50.0, 49.0, 53.0)  # the shared simulated account
    assert example["equity"] > 0 and example["decision"]["numbers"]["risk_budget"] == round(example["equity"] / 100, 2)
    assert config_diff({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 1, "c": [1, 3]}, "d": None}) == [
        {"field": "a.c", "old": "[1, 2]", "new": "[1, 3]"}, {"field": "d", "old": "—", "new": "null"}]
    save_user_prompt(app, user_id, "mine", "one")
    assert diff_prompt_versions(app, user_id, "mine", 1, 1) == []


def test_every_form_of_the_new_pages_needs_the_csrf_token(app, client, user_id):
    """Each POST route of these pages, without the session's token, is refused and changes nothing."""
    from tradetrail.web.views import broker, prompts, settings, symbols
    from tradetrail.web.views import strategies as strategy_views

    paths = {route.path for view in (strategy_views, symbols, prompts, settings, broker)
             for route in view.router.routes if "POST" in route.methods}
    assert len(paths) == 19  # with the notification channels: add, test, remove
    before = (list_versions(app, user_id, "demo"), list_tokens(app, user_id))
    for path in sorted(paths):
        concrete = path.replace("{name}", "demo" if path.startswith("/strategies") else "daily")
        concrete = concrete.replace("{token_id}", "1").replace("{channel_id}", "1")
        refused = client.post(concrete, data={"name": "x", "body": "x", "csrf_token": "forged"})
        assert refused.status_code == 403 and "CSRF" in refused.text, path
    assert (list_versions(app, user_id, "demo"), list_tokens(app, user_id)) == before
