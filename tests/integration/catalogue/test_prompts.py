"""Prompt templates: validation at save time, immutable versions, per-user overrides and the rendering sandbox."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from tradetrail.app_context import App
from tradetrail.catalogue.prompt_store import latest_template, save_template, seed_default_templates
from tradetrail.db.models import PromptTemplate, PromptTemplateVersion, User
from tradetrail.prompts.templates import (
    DEFAULT_TEMPLATES,
    VARIABLES,
    PromptTemplateError,
    default_body,
    render,
    validate_template,
)


def variables() -> dict:
    daily = {"close": 2506.85, "sma_20": 2600.1, "sma_50": 2700.2, "sma_200": 2750.3, "rsi": 38.5,
             "macd_hist": -12.25, "atr": 55.5, "supertrend": 2650.0}
    conf = {"direction": "BEARISH", "bullish": 0, "bearish": 4}
    return dict(strategy="demo", description="", symbol="SPX", name="S&P 500 Index", exchange="CBOE",
                currency="USD", as_of="2018-12-31T21:00:00+00:00", timeframe="daily",
                timeframes=["daily", "weekly"], close=2506.85, indicators={"daily": daily, "weekly": dict(daily)},
                confirmation={"daily": conf, "weekly": {"direction": "NEUTRAL", "bullish": 1, "bearish": 2}},
                bars={"daily": 1500, "weekly": 313})


def make_user(app: App, username: str) -> int:
    with app.Session() as s:
        user = User(username=username)
        s.add(user)
        s.commit()
        return user.id


def counts(app: App) -> tuple[int, int]:
    with app.Session() as s:
        return (s.scalar(select(func.count()).select_from(PromptTemplate)),
                s.scalar(select(func.count()).select_from(PromptTemplateVersion)))


# ---------------------------------------------------------------------------------------------- built-in templates


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
def test_each_default_template_validates_and_renders(name: str) -> None:
    used = validate_template(default_body(name))
    assert used and used <= VARIABLES.keys()
    assert "symbol" in used
    text = render(default_body(name), variables())
    assert "SPX" in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_default_templates_render_the_values() -> None:
    v = variables()
    assert "You will see 2 chart(s): daily, weekly." in render(default_body("decision"), v)
    assert "the last daily close is 2506.85." in render(default_body("decision"), v)
    daily = render(default_body("daily"), v)
    assert "Daily chart of SPX, 1500 daily bars up to 2018-12-31T21:00:00+00:00." in daily
    assert "RSI 38.5, MACD histogram -12.25, ATR 55.5" in daily
    assert "confirmation (SuperTrend, close vs SMA20, MACD histogram, RSI vs 50): BEARISH\n(0 bullish, 4 bearish)" \
        in daily
    weekly = render(default_body("weekly"), v)
    assert "Weekly 3-of-4 confirmation: NEUTRAL (1 bullish, 2 bearish)." in weekly
    del v["confirmation"]["weekly"]
    assert "Weekly 3-of-4 confirmation" not in render(default_body("weekly"), v)


def test_seeding_defaults_is_idempotent(app: App) -> None:
    with app.Session() as s:
        first = seed_default_templates(s)
        second = seed_default_templates(s)
    assert [r.version for r in first] == [1, 1, 1]
    assert first == second
    assert counts(app) == (3, 3)


# ------------------------------------------------------------------------------------------------- save validation


def test_unknown_variable_is_rejected_naming_it_and_nothing_is_stored(app: App) -> None:
    user_id = make_user(app, "alice")
    with app.Session() as s, pytest.raises(PromptTemplateError) as err:
        save_template(s, "mine", "Trade {{ symbol }} with {{ api_key }} and {{ secrets.token }}", user_id=user_id)
    assert "unknown variable(s) api_key, secrets" in str(err.value)
    assert counts(app) == (0, 0)


def test_unknown_variable_on_an_existing_template_adds_no_version(app: App) -> None:
    user_id = make_user(app, "alice")
    with app.Session() as s:
        save_template(s, "mine", "Look at {{ symbol }}", user_id=user_id)
    with app.Session() as s, pytest.raises(PromptTemplateError, match="unknown variable.*price"):
        save_template(s, "mine", "Look at {{ price }}", user_id=user_id)
    assert counts(app) == (1, 1)
    with app.Session() as s:
        assert latest_template(s, "mine", user_id=user_id).body == "Look at {{ symbol }}"


@pytest.mark.parametrize(
    ("body", "line"),
    [("line one\n{{ symbol }\n", 2), ("a\nb\n{% if close %}\nno end\n", 3), ("{% for x in %}{{ x }}{% endfor %}", 1)],
)
def test_syntax_error_names_the_line(app: App, body: str, line: int) -> None:
    with pytest.raises(PromptTemplateError, match=f"syntax error on line {line}: "):
        validate_template(body)
    with app.Session() as s, pytest.raises(PromptTemplateError, match=f"line {line}"):
        save_template(s, "broken", body, user_id=None)
    assert counts(app) == (0, 0)


@pytest.mark.parametrize("body", ["", "   \n\t"])
def test_empty_template_is_rejected(body: str) -> None:
    with pytest.raises(PromptTemplateError, match="template is empty"):
        validate_template(body)


@pytest.mark.parametrize("body", ["ok\n{{ close | nosuchfilter }}", "{% if close is nosuchtest %}x{% endif %}"])
def test_unknown_filter_or_test_is_a_template_error(body: str) -> None:
    with pytest.raises(PromptTemplateError, match="nosuch"):
        validate_template(body)


# --------------------------------------------------------------------------------------------------------- versions


def test_saving_the_same_body_twice_adds_no_version(app: App) -> None:
    user_id = make_user(app, "alice")
    with app.Session() as s:
        first = save_template(s, "mine", "Look at {{ symbol }}", user_id=user_id)
    with app.Session() as s:
        second = save_template(s, "mine", "Look at {{ symbol }}", user_id=user_id)
    assert (first.version, second.version) == (1, 1)
    assert first == second
    assert counts(app) == (1, 1)


def test_a_changed_body_adds_version_2_and_version_1_keeps_its_text(app: App) -> None:
    user_id = make_user(app, "alice")
    with app.Session() as s:
        v1 = save_template(s, "mine", "Look at {{ symbol }}", user_id=user_id)
    with app.Session() as s:
        v2 = save_template(s, "mine", "Look hard at {{ symbol }} closing at {{ close }}", user_id=user_id)
    assert (v1.template_id, v1.version) == (v2.template_id, 1)
    assert v2.version == 2
    assert v1.sha256 != v2.sha256
    assert counts(app) == (1, 2)
    with app.Session() as s:
        rows = s.execute(select(PromptTemplateVersion.version, PromptTemplateVersion.body)
                         .where(PromptTemplateVersion.template_id == v1.template_id)
                         .order_by(PromptTemplateVersion.version)).all()
        assert [tuple(r) for r in rows] == [(1, "Look at {{ symbol }}"),
                                            (2, "Look hard at {{ symbol }} closing at {{ close }}")]
        assert s.get(PromptTemplate, v1.template_id).latest_version == 2
        assert latest_template(s, "mine", user_id=user_id) == v2
    with app.Session() as s:  # going back to the first text is a new version, not a rewrite of history
        v3 = save_template(s, "mine", "Look at {{ symbol }}", user_id=user_id)
    assert v3.version == 3
    assert counts(app) == (1, 3)


def test_a_users_own_template_wins_for_that_user_only(app: App) -> None:
    alice, bob = make_user(app, "alice"), make_user(app, "bob")
    with app.Session() as s:
        builtin = {r.name: r for r in seed_default_templates(s)}["daily"]
        own = save_template(s, "daily", "Alice's daily view of {{ symbol }}", user_id=alice)
    assert own.template_id != builtin.template_id
    with app.Session() as s:
        assert latest_template(s, "daily", user_id=alice) == own
        assert latest_template(s, "daily", user_id=bob) == builtin
        assert latest_template(s, "daily", user_id=bob).body == default_body("daily")
        assert latest_template(s, "weekly", user_id=alice).body == default_body("weekly")
        with pytest.raises(PromptTemplateError, match="no prompt template named 'nightly'"):
            latest_template(s, "nightly", user_id=alice)


def test_another_users_template_is_invisible(app: App) -> None:
    alice, bob = make_user(app, "alice"), make_user(app, "bob")
    with app.Session() as s:
        save_template(s, "private", "{{ symbol }}", user_id=alice)
    with app.Session() as s, pytest.raises(PromptTemplateError, match="no prompt template named 'private'"):
        latest_template(s, "private", user_id=bob)


# ---------------------------------------------------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "body",
    [
        "{{ symbol.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ symbol.format.__globals__ }}",
        "{{ bars.__init__ }}",
        "{{ indicators.__class__.__base__ }}",
    ],
)
def test_sandbox_refuses_unsafe_access(body: str) -> None:
    validate_template(body)  # uses only known variables: it is the render that must refuse it
    with pytest.raises(PromptTemplateError, match="cannot render template: access to attribute '__"):
        render(body, variables())


@pytest.mark.parametrize("body", ["{{ indicators.daily.update({'atr': 0.01}) }}",
                                  "{% set _ = timeframes.append('monthly') %}{{ symbol }}"])
def test_a_template_cannot_change_the_values_it_is_given(body: str) -> None:
    given = variables()
    before = copy.deepcopy(given)
    with pytest.raises(PromptTemplateError):
        render(body, given)
    assert given == before


@pytest.mark.parametrize("body", ["{{ bars.daily / 0 }}", "{{ range(10**9) | length }}"])
def test_any_render_failure_is_a_template_error(body: str) -> None:
    with pytest.raises(PromptTemplateError, match="cannot render template"):
        render(body, variables())


def test_missing_value_fails_instead_of_rendering_blank() -> None:
    v = variables()
    del v["indicators"]["daily"]["rsi"]
    body = "RSI {{ indicators.daily.rsi }}"
    with pytest.raises(PromptTemplateError, match="has no attribute 'rsi'"):
        render(body, v)
    with pytest.raises(PromptTemplateError, match="cannot render template"):
        render("{{ indicators.daily.rsi | round(1) }}", v)
    with pytest.raises(PromptTemplateError, match="'symbol' is undefined"):
        render("{{ symbol }}", {})
    assert render(body, variables()) == "RSI 38.5\n"


def test_none_renders_as_n_a() -> None:
    v = variables()
    v["close"] = None
    v["indicators"]["daily"]["rsi"] = None
    assert render("close {{ close }}, RSI {{ indicators.daily.rsi }}", v) == "close n/a, RSI n/a\n"
    assert render("{{ description }}|", v) == "|\n"  # an empty string stays empty, it is not None


# ------------------------------------------------------------------------------------------------------------ API


def test_the_limits_are_published_and_a_preview_bounds_its_variables(app) -> None:
    from tests.support.api_client import api_user
    from tests.support.helpers import demo
    from tradetrail.prompts.templates import (
        ALLOWED_FILTERS,
        MAX_OUTPUT_CHARS,
        MAX_STEPS,
        MAX_TOKENS,
        MAX_VARIABLES_CHARS,
    )

    demo(app)
    user = api_user(app, "demo")
    published = user.get("/api/prompts/limits").json()
    assert published["limits"]["output_chars"] == MAX_OUTPUT_CHARS and published["limits"]["tokens"] == MAX_TOKENS
    assert published["filters"] == list(ALLOWED_FILTERS) and "random" not in published["filters"]
    assert "{% include %}" in published["not_available"]
    ok = user.post("/api/prompts/render", json={"body": "{{ symbol }}", "variables": {"symbol": "x" * 1000}})
    assert ok.status_code == 200 and ok.json()["rendered"] == "x" * 1000 + "\n"
    big = user.post("/api/prompts/render", json={"body": "{{ symbol }}", "variables": {"symbol": "x" * 30_000}})
    assert big.status_code == 422 and big.json()["error"]["fields"][0]["field"] == "body.variables"
    assert f"longer than {MAX_VARIABLES_CHARS:,} characters" in big.json()["error"]["message"]
    deep: list = []
    for _ in range(10):
        deep = [deep]
    nested = user.post("/api/prompts/render", json={"body": "{{ timeframes }}", "variables": {"timeframes": deep}})
    assert nested.status_code == 422 and "nest deeper than 6 levels" in nested.json()["error"]["message"]
    loop = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    refused = user.post("/api/prompts/render", json={"body": loop})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_template"
    assert f"more than {MAX_STEPS:,} steps" in refused.json()["error"]["message"]


def test_preview_and_save_say_what_they_refuse(app) -> None:
    """Found by the contract run: a name that routes shadow, an empty render request, another user's template
    name in a preview (was 422, unlike every other lookup of another user's resource)."""
    from tests.support.api_client import api_user

    alice, bob = api_user(app, "alice"), api_user(app, "bob")
    body = "Look at {{ symbol }}."
    assert alice.post("/api/prompts", json={"name": "mine", "body": body}).status_code == 201
    for reserved in ("variables", "limits"):
        r = alice.post("/api/prompts", json={"name": reserved, "body": body})
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "body.name", r.text
    assert alice.post("/api/prompts", json={"name": "variables2", "body": body}).status_code == 201
    r = alice.post("/api/prompts/render", json={})
    assert r.status_code == 422 and "body or a template name" in r.json()["error"]["message"]
    r = bob.post("/api/prompts/render", json={"name": "mine"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert alice.post("/api/prompts/render", json={"name": "mine"}).json()["rendered"].startswith("Look at ")
    schema = app_openapi(alice)["components"]["schemas"]
    assert schema["RenderIn"]["anyOf"] == [{"required": ["body"]}, {"required": ["name"]}]
    assert schema["PromptIn"]["properties"]["body"]["pattern"] == "^[^\\x00]*$"


def app_openapi(user) -> dict:
    return user.get("/openapi.json").json()
