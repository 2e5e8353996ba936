"""The application object every layer above the adapters receives: settings, database, artifact store, the
default broker and the adapters a strategy names. It knows no adapter by name: the composition root
(``runtime/``) hands it one factory per port and it keeps what they build, one per name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tradetrail.analyst.port import Analyst
from tradetrail.artifacts.registry import ArtifactRegistry
from tradetrail.broker.port import Broker
from tradetrail.marketdata.port import MarketData
from tradetrail.settings import Settings


class ConfigurationError(Exception):
    """The configuration asks for something that cannot work; the message says what to set."""


@dataclass(frozen=True)
class Factories:
    """How to build each port's adapter from its configured name (filled in by ``runtime/registries.py``)."""

    broker: Callable[[App, str], Broker]
    market_data: Callable[[App, str], MarketData]
    llm_analyst: Callable[[App, str], Analyst]
    ibkr_session: Callable[[App], Any]
    tws_connection: Callable[[App], Any] | None = None


@dataclass
class App:
    settings: Settings
    engine: Engine
    Session: sessionmaker[Session]
    artifacts: ArtifactRegistry
    broker: Broker
    factories: Factories | None = None
    _market_data: dict[str, MarketData] = field(default_factory=dict)
    _analysts: dict[str, Analyst] = field(default_factory=dict)
    _brokers: dict[str, Broker] = field(default_factory=dict)
    _shared: dict[str, Any] = field(default_factory=dict)  # one IBKR session / TWS connection (and limiter) per App

    def ibkr_session(self):
        """The IBKR session shared by the IBKR broker and market data (one rate limiter for both)."""
        if "gateway" not in self._shared:
            self._shared["gateway"] = self.factories.ibkr_session(self)
        return self._shared["gateway"]

    def tws_connection(self):
        """The TWS / IB Gateway connection shared by the TWS broker and market data (one clientId, one pacing
        limiter for both)."""
        if "tws" not in self._shared:
            self._shared["tws"] = self.factories.tws_connection(self)
        return self._shared["tws"]

    def broker_for(self, name: str | None = None) -> Broker:
        """The broker called ``name`` (a strategy's choice), else the default (``TRADETRAIL_BROKER``)."""
        name = name or self.settings.broker
        if name == self.broker.name:
            return self.broker
        if name not in self._brokers:
            self._brokers[name] = self.factories.broker(self, name)
        return self._brokers[name]

    def with_broker(self, name: str | None) -> App:
        """This app with another default broker (the same database, caches and adapters otherwise)."""
        broker = self.broker_for(name)
        return self if broker is self.broker else replace(self, broker=broker)

    def market_data(self, source: str | None = None) -> MarketData:
        """The market data adapter for ``source`` (the strategy's choice, else the global setting)."""
        name = source or self.settings.market_data
        if name not in self._market_data:
            self._market_data[name] = self.factories.market_data(self, name)
        return self._market_data[name]

    def llm_analyst(self, model: str | None = None) -> Analyst:
        """The configured OpenAI-compatible analyst, wrapped in the answer cache; one per model, shared by
        every run (its HTTP client holds the connection pool, and building one costs ~25 ms of TLS set-up)."""
        name = model or self.settings.llm_model
        if name not in self._analysts:
            self._analysts[name] = self.factories.llm_analyst(self, name)
        return self._analysts[name]
