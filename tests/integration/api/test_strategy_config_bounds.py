"""Issue #11 (items 6 and 11): a strategy configuration says in its schema what it refuses, refuses it with a
422 naming the field, and never coerces: a 5,000-character time zone, a non-boolean flag, a number written as
a string, a control character in the description. Checked on the model and through the real API (the
OpenAPI document the app serves, and Schemathesis' negative data on the two strategy write routes)."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.support.api_client import api_user
from tests.support.helpers import demo
from tradetrail.domain.indicators import PARAM_BOUNDS
from tradetrail.domain.risk import LIMIT_BOUNDS
from tradetrail.domain.signal_policy import POLICY_BOUNDS
from tradetrail.schemas.strategy import TIMEZONE_PATTERN, StrategyConfig
from tradetrail.server.app import create_app
from tradetrail.services.accounts.bootstrap import demo_config

SECTIONS = {"risk": LIMIT_BOUNDS, "signal_policy": POLICY_BOUNDS, "indicators": PARAM_BOUNDS}


def _config(**sections) -> dict:
    data = demo_config().to_json()
    for name, changes in sections.items():
        data[name] = {**data[name], **changes} if isinstance(changes, dict) else changes
    return data


def _refused(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as err:
        StrategyConfig.model_validate(data)
    return [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]


# -- the model -----------------------------------------------------------------------------------------------------

def test_a_five_thousand_character_time_zone_is_a_validation_error_not_an_os_error():
    assert _refused(_config(schedule={"timezone": "A" * 5000})) == ["schedule.timezone"]
    assert _refused(_config(schedule={"timezone": "a/" * 40})) == ["schedule.timezone"]


@pytest.mark.parametrize(("section", "field"), [("schedule", "market_sessions_only"), ("charts", "enabled"),
                                                ("signal_policy", "require_confirmation"),
                                                ("signal_policy", "require_higher_timeframe")])
@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "1", None])
def test_booleans_are_strict(section, field, value):
    assert _refused(_config(**{section: {field: value}})) == [f"{section}.{field}"]


@pytest.mark.parametrize(("section", "field", "value"), [
    ("risk", "max_position_pct", "20"), ("risk", "max_open_positions", 2.0), ("signal_policy", "min_confidence", "60"),
    ("indicators", "rsi_period", 14.0), ("orders", "slippage_allowance_pct", "2"), ("charts", "daily_bars", "150"),
    ("market_data", "lookback_days", 1500.0)])
def test_numbers_are_not_coerced(section, field, value):
    assert _refused(_config(**{section: {field: value}})) == [f"{section}.{field}"]


@pytest.mark.parametrize("value", [0, "2010-06-01T00:00:00Z", b"2010-06-01", "20100601", True])
def test_replay_start_is_a_date_in_the_schemas_format(value):
    assert _refused(_config(market_data={"replay_start": value})) == ["market_data.replay_start"]
    assert StrategyConfig.model_validate(_config(market_data={"replay_start": "2010-06-01"})).market_data.replay_start


@pytest.mark.parametrize("text", ["\x00", "bell\x07", "\x1b[31mred", "form\x0cfeed", "del\x7f", "next\x85line"])
def test_control_characters_in_the_description_are_refused(text):
    assert _refused(_config(description=text)) == ["description"]


def test_newlines_tabs_and_any_other_text_are_a_description():
    text = "Swing on SPX\r\n\t— stop 2×ATR, target 2R; 日本語 ✓"  # a browser's textarea sends CRLF
    assert StrategyConfig.model_validate(_config(description=text)).description == text


@pytest.mark.parametrize(("section", "bounds"), SECTIONS.items())
def test_every_domain_bound_is_enforced_at_its_edges(section, bounds):
    for name, bound in bounds.items():
        step = 1 if bound.whole else 1e-6
        for inside in (bound.hi, bound.lo + step if bound.lo_open else bound.lo):
            extra = {"macd_fast": {"macd_slow": 500}, "macd_slow": {"macd_fast": 2}}.get(name, {})  # kept ordered
            StrategyConfig.model_validate(_config(**{section: {name: inside, **extra}}))
        for outside in (bound.hi + step, bound.lo if bound.lo_open else bound.lo - step):
            assert _refused(_config(**{section: {name: outside}})) == [f"{section}.{name}"], (name, outside)


def test_blank_symbol_is_stated_by_the_pattern():
    schema = StrategyConfig.model_json_schema()
    pattern = schema["properties"]["symbol"]["pattern"]
    assert re.fullmatch(pattern, " spx ") and not re.fullmatch(pattern, "   ")


# -- the API -------------------------------------------------------------------------------------------------------

@pytest.fixture
def client(app):
    demo(app)
    return api_user(app, "demo")


def _resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_openapi_document_states_every_bound_the_configuration_refuses(client):
    doc = client.get("/openapi.json").json()
    config = _resolve(doc, doc["components"]["schemas"]["ValidateIn"]["properties"]["config"])
    for section, bounds in SECTIONS.items():
        props = _resolve(doc, config["properties"][section])["properties"]
        for name, bound in bounds.items():
            prop = props[name]
            assert prop["type"] == ("integer" if bound.whole else "number"), (section, name)
            assert prop["maximum"] == bound.hi, (section, name)
            assert prop["exclusiveMinimum" if bound.lo_open else "minimum"] == bound.lo, (section, name)
    policy = _resolve(doc, config["properties"]["signal_policy"])["properties"]
    assert policy["max_entry_distance_atr"]["description"]
    orders = _resolve(doc, config["properties"]["orders"])["properties"]
    assert (orders["slippage_allowance_pct"]["minimum"], orders["slippage_allowance_pct"]["maximum"]) == (0, 50)
    schedule = _resolve(doc, config["properties"]["schedule"])["properties"]
    assert schedule["timezone"]["maxLength"] == 64 and schedule["timezone"]["pattern"] == TIMEZONE_PATTERN
    assert schedule["market_sessions_only"]["type"] == "boolean"
    assert "pattern" in _resolve(doc, config)["properties"]["description"]


def test_every_zone_of_the_tz_database_is_accepted_and_others_refused():
    import re
    from zoneinfo import available_timezones

    for zone in available_timezones():
        if len(zone) <= 64:
            assert re.fullmatch(TIMEZONE_PATTERN, zone), zone
            StrategyConfig.model_validate(_config(schedule={"timezone": zone}))
    for zone in ("Mars/Olympus", "America", "../etc/passwd", "America/../UTC", "/usr/share/zoneinfo/UTC",
                 "zone.tab", "leapseconds", "America/New_York/", " UTC"):
        assert _refused(_config(schedule={"timezone": zone})) == ["schedule.timezone"], zone


@pytest.mark.parametrize("route", ["put", "validate"])
def test_an_oversized_time_zone_is_a_422_naming_the_field(client, route):
    body = {"config": _config(schedule={"timezone": "A" * 5000})}
    response = client.put("/api/strategies/demo", json=body) if route == "put" else \
        client.post("/api/strategies/validate", json=body)
    assert response.status_code == 422, response.text
    fields = [f["field"] for f in response.json()["error"]["fields"]]
    assert any(f.endswith("schedule.timezone") for f in fields), fields


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_validate_refuses_a_non_boolean_market_sessions_only(client, value):
    response = client.post("/api/strategies/validate", json={"config": _config(schedule={
        "market_sessions_only": value})})
    assert response.status_code == 422, response.text
    assert any(f["field"].endswith("schedule.market_sessions_only") for f in response.json()["error"]["fields"])


def test_validate_accepts_the_edges_the_schema_states(client):
    body = {"config": _config(risk={"max_position_pct": 100.0, "risk_per_trade_pct": 5.0},
                              signal_policy={"max_entry_distance_atr": 10.0, "min_reward_risk": 20},
                              indicators={"macd_fast": 499, "macd_slow": 500})}
    response = client.post("/api/strategies/validate", json=body)
    assert response.status_code == 200 and response.json()["valid"] is True, response.text
    assert json.loads(json.dumps(body))  # plain JSON, as a client sends it


def test_schema_violating_strategy_writes_are_refused(app, client):
    """Schemathesis' negative data (values the schema forbids) on the two strategy write routes: every one
    must be refused with a 4xx — before, a non-boolean market_sessions_only was accepted."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app, background=False))
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in {("POST", "/api/strategies/validate"),
                                                              ("PUT", "/api/strategies/{name}")}:
            continue

        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=30, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=client.auth, checks=[negative_data_rejection])

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - report both routes
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
