"""The adapter names a setting or a strategy may give are exactly the names the composition root can build.

The names are declared once as types in ``settings.py`` (validation and the OpenAPI enums need them there)
and mapped to factories in ``runtime/registries.py``; these tests keep the two from drifting apart."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from tradetrail.app_context import ConfigurationError
from tradetrail.runtime import registries
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.settings import (
    GATEWAY_BROKERS,
    GATEWAY_MARKET_DATA,
    SIMULATED,
    ArtifactStoreName,
    BrokerName,
    MarketDataName,
    Settings,
)


def test_every_declared_name_has_a_factory_and_every_factory_a_name():
    assert set(get_args(BrokerName)) == set(registries.BROKERS)
    assert set(get_args(MarketDataName)) == set(registries.MARKET_DATA)
    assert set(get_args(ArtifactStoreName)) == set(registries.ARTIFACT_STORES)
    assert SIMULATED in registries.BROKERS
    assert GATEWAY_BROKERS <= set(registries.BROKERS) and GATEWAY_MARKET_DATA <= set(registries.MARKET_DATA)


def test_the_settings_and_the_strategy_schema_accept_the_declared_names_and_refuse_others():
    for name in get_args(BrokerName):
        assert StrategyConfig(symbol="SPX", broker=name).broker == name
    for name in get_args(MarketDataName):
        config = StrategyConfig.model_validate({"symbol": "SPX", "market_data": {"source": name}})
        assert config.market_data.source == name
    with pytest.raises(ValidationError):
        StrategyConfig(symbol="SPX", broker="ibkr_tws_not_yet")
    with pytest.raises(ValidationError):
        Settings(broker="paper_trader")


def test_an_unknown_name_reaching_the_composition_root_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="unknown broker 'nope' \\(simulated or ibkr_web or ibkr_tws\\)"):
        registries.make_broker(None, "nope")
