"""StrategyConfig: valid defaults, one clear ValidationError per bad field, and a lossless JSON round trip."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pydantic import ValidationError

from tradetrail.domain.indicators import IndicatorParams
from tradetrail.domain.signal_policy import SignalPolicy
from tradetrail.schemas.strategy import StrategyConfig


def test_defaults_are_valid() -> None:
    config = StrategyConfig(symbol=" spx ")
    assert config.symbol == "SPX"
    assert config.mode == "paper"
    assert config.market_data.lookback_days == 1500
    assert config.market_data.source is None
    assert config.indicators == IndicatorParams()
    assert config.signal_policy == SignalPolicy()
    assert config.schedule.cron is None
    assert config.schedule.timezone == "America/New_York"
    assert config.analyst.prompts.model_dump() == {"system": "decision", "daily": "daily", "weekly": "weekly"}


def test_the_symbol_is_required() -> None:
    with pytest.raises(ValidationError) as err:
        StrategyConfig.model_validate({})
    assert [e["loc"] for e in err.value.errors()] == [("symbol",)]


def bad(data: dict) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        StrategyConfig.model_validate({"symbol": "SPX"} | data)
    assert len(err.value.errors()) == 1, err.value.errors()
    return err.value


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"symbol": "SP;X"}, "symbol", "String should match pattern"),
        ({"symbol": "A/B"}, "symbol", "String should match pattern"),
        ({"symbol": "$SPX"}, "symbol", "String should match pattern"),
        ({"symbol": ""}, "symbol", "at least 1 character"),
        ({"symbol": "X" * 33}, "symbol", "at most 32 characters"),
        ({"mode": "yolo"}, "mode", "Input should be 'paper' or 'live'"),
        ({"market_data": {"lookback_days": 10}}, "market_data.lookback_days", "greater than or equal to 60"),
        ({"market_data": {"source": "yahoo"}}, "market_data.source",
         "Input should be 'sample', 'files', 'ibkr' or 'ibkr_tws'"),
        ({"market_data": {"replay_start": "2005-02-30"}}, "market_data.replay_start", "valid date"),
        ({"schedule": {"cron": "61 * * * *"}}, "schedule.cron", "invalid cron expression '61 * * * *'"),
        ({"schedule": {"cron": "0 24 * * *"}}, "schedule.cron", "invalid cron expression"),
        ({"schedule": {"cron": "*/0 * * * *"}}, "schedule.cron", "invalid cron expression"),
        ({"schedule": {"cron": "* * * *"}}, "schedule.cron", "cron must have 5 fields"),
        ({"schedule": {"cron": "* * * * * *"}}, "schedule.cron", "cron must have 5 fields"),
        ({"schedule": {"cron": "@daily"}}, "schedule.cron", "cron must have 5 fields"),
        ({"schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone", "unknown time zone 'Mars/Olympus'"),
        ({"schedule": {"timezone": "../../etc/passwd"}}, "schedule.timezone", "unknown time zone"),
        ({"schedule": {"timezone": ""}}, "schedule.timezone", "unknown time zone"),
        ({"indicators": {"rsi_period": 1}}, "indicators.rsi_period", "greater than or equal to 2"),
        ({"indicators": {"macd_fast": 26}}, "indicators", "IndicatorParams.macd_fast must be less than macd_slow"),
        ({"indicators": {"macd_fast": 30, "macd_slow": 20}}, "indicators", "macd_fast must be less than macd_slow"),
        ({"indicators": {"sma_periods": [50, 200]}}, "indicators", "IndicatorParams.sma_periods"),
        ({"indicators": {"bb_std": 9}}, "indicators.bb_std", "less than or equal to 5"),
        ({"indicators": {"rsi_period": 14.5}}, "indicators.rsi_period", "valid integer"),
        ({"signal_policy": {"min_confidence": 101}}, "signal_policy.min_confidence", "less than or equal to 100"),
        ({"signal_policy": {"min_confidence": -1}}, "signal_policy.min_confidence", "greater than or equal to 0"),
        ({"signal_policy": {"min_reward_risk": 0}}, "signal_policy.min_reward_risk", "greater than 0"),
        ({"charts": {"daily_bars": 5}}, "charts.daily_bars", "greater than or equal to 20"),
        ({"analyst": {"kind": "oracle"}}, "analyst.kind", "Input should be 'auto', 'rules', 'llm' or 'plugin'"),
        ({"analyst": {"prompts": {"daily": "../x"}}}, "analyst.prompts.daily", "String should match pattern"),
        ({"analyst": {"atr_stop_multiple": 0}}, "analyst.atr_stop_multiple", "greater than 0"),
    ],
)
def test_each_bad_field_is_named(data: dict, field: str, reason: str) -> None:
    err = bad(data)
    [error] = err.errors()
    assert ".".join(str(p) for p in error["loc"]) == field
    message = str(err)
    assert field in message
    assert reason in message
    # the field the user got wrong also appears by name in the message for dataclass-level checks
    leaf = next(iter(data.values()))
    if isinstance(leaf, dict):
        assert next(iter(leaf)) in message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"bogus": 1}, "bogus"),
        ({"market_data": {"lookback": 500}}, "market_data.lookback"),
        ({"schedule": {"crontab": "0 9 * * *"}}, "schedule.crontab"),
        ({"indicators": {"rsi_perid": 7}}, "indicators.rsi_perid"),  # a typo must not fall back to the default
        ({"signal_policy": {"min_confidance": 70}}, "signal_policy.min_confidance"),
    ],
)
def test_unknown_keys_are_rejected(data: dict, field: str) -> None:
    err = bad(data)
    assert ".".join(str(p) for p in err.errors()[0]["loc"]) == field
    assert field in str(err)


def test_cron_is_normalised_and_blank_means_none() -> None:
    assert StrategyConfig(symbol="SPX", schedule={"cron": " 35  9 * *\tmon-fri "}).schedule.cron == "35 9 * * mon-fri"
    assert StrategyConfig(symbol="SPX", schedule={"cron": "   "}).schedule.cron is None


def test_blank_symbol_is_rejected() -> None:
    with pytest.raises(ValidationError, match="symbol"):
        StrategyConfig(symbol="   ")


def custom() -> StrategyConfig:
    return StrategyConfig.model_validate({
        "symbol": "brk.b",
        "description": "custom → everything off the defaults",
        "mode": "live",
        "market_data": {"source": "files", "lookback_days": 800, "min_daily_bars": 100,
                        "confirmation_timeframe": None, "replay_start": "2010-06-01"},
        "indicators": {"sma_periods": [10, 20, 100], "ema_periods": [9], "rsi_period": 7, "macd_fast": 5,
                       "macd_slow": 35, "bb_std": 2.5, "supertrend_multiplier": 2.0},
        "charts": {"enabled": False, "daily_bars": 60, "weekly_bars": 30},
        "analyst": {"kind": "llm", "model": "some-model", "prompts": {"daily": "my_daily"},
                    "atr_stop_multiple": 1.5, "reward_risk": 3.0},
        "signal_policy": {"min_confidence": 70, "require_confirmation": False, "require_higher_timeframe": True,
                          "min_reward_risk": 1.5},
        "schedule": {"cron": "35 9 * * mon-fri", "timezone": "Europe/London", "market_sessions_only": True},
    })


@pytest.mark.parametrize("make", [lambda: StrategyConfig(symbol="SPX"), custom], ids=["defaults", "custom"])
def test_json_round_trip_gives_an_equal_config(make) -> None:
    config = make()
    data = config.to_json()
    text = json.dumps(data)  # what the database stores
    back = StrategyConfig.model_validate(json.loads(text))
    assert back == config
    assert back.to_json() == data


def test_custom_values_survive_the_round_trip() -> None:
    back = StrategyConfig.model_validate(json.loads(json.dumps(custom().to_json())))
    assert back.symbol == "BRK.B"
    assert back.indicators.sma_periods == (10, 20, 100)
    assert back.indicators.ema_periods == (9,)
    assert back.market_data.replay_start == date(2010, 6, 1)
    assert back.signal_policy == SignalPolicy(min_confidence=70, require_confirmation=False,
                                              require_higher_timeframe=True, min_reward_risk=1.5)
    assert back.schedule.timezone == "Europe/London"
