"""The application object every face (CLI, API, workers) builds once: settings, database, artifact store,
broker and the adapters chosen by configuration. Services take it as their first argument."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tradetrail.analyst.port import Analyst
from tradetrail.artifacts.local import LocalArtifactStore
from tradetrail.artifacts.registry import ArtifactRegistry
from tradetrail.broker.port import Broker
from tradetrail.broker.simulated import SimulatedBroker
from tradetrail.db.migrate import upgrade
from tradetrail.db.session import engine_for, session_factory
from tradetrail.marketdata.port import MarketData, MarketDataError
from tradetrail.services.locks import process_lock
from tradetrail.settings import Settings


class ConfigurationError(Exception):
    """The configuration asks for something that cannot work; the message says what to set."""


@dataclass
class App:
    settings: Settings
    engine: Engine
    Session: sessionmaker[Session]
    artifacts: ArtifactRegistry
    broker: Broker
    _market_data: dict[str, MarketData] = field(default_factory=dict)
    _analysts: dict[str, Analyst] = field(default_factory=dict)
    _brokers: dict[str, Broker] = field(default_factory=dict)
    _shared: dict[str, Any] = field(default_factory=dict)  # one IBKR session (and its rate limiter) per App

    def ibkr_session(self):
        """The IBKR session shared by the IBKR broker and market data (one rate limiter for both)."""
        if "ibkr" not in self._shared:
            from tradetrail.ibkr.client import IbkrSession

            self._shared["ibkr"] = IbkrSession(self.settings)
        return self._shared["ibkr"]

    def broker_for(self, name: str | None = None) -> Broker:
        """The broker called ``name`` (a strategy's choice), else the default (``TRADETRAIL_BROKER``)."""
        name = name or self.settings.broker
        if name == self.broker.name:
            return self.broker
        if name not in self._brokers:
            self._brokers[name] = _make_broker(self, name)
        return self._brokers[name]

    def with_broker(self, name: str | None) -> App:
        """This app with another default broker (the same database, caches and adapters otherwise)."""
        broker = self.broker_for(name)
        return self if broker is self.broker else replace(self, broker=broker)

    def market_data(self, source: str | None = None) -> MarketData:
        """The market data adapter for ``source`` (the strategy's choice, else the global setting)."""
        name = source or self.settings.market_data
        if name not in self._market_data:
            if name == "sample":
                from tradetrail.marketdata.sample import SampleMarketData

                self._market_data[name] = SampleMarketData()
            elif name == "ibkr":
                from tradetrail.marketdata.ibkr import IbkrMarketData

                self._market_data[name] = IbkrMarketData(self.ibkr_session(), self.engine)
            elif name == "files":
                folder = self.settings.market_data_dir
                if folder is None:
                    raise MarketDataError("market data 'files' needs TRADETRAIL_MARKET_DATA_DIR (a folder of "
                                          "<SYMBOL>.csv or .parquet files)")
                from tradetrail.marketdata.files import FilesMarketData

                self._market_data[name] = FilesMarketData(folder)
            else:
                raise MarketDataError(f"unknown market data source {name!r}")
        return self._market_data[name]

    def llm_analyst(self, model: str | None = None) -> Analyst:
        """The configured OpenAI-compatible analyst, wrapped in the answer cache; one per model, shared by
        every run (its HTTP client holds the connection pool, and building one costs ~25 ms of TLS set-up)."""
        s = self.settings
        if not s.llm_configured:
            raise ConfigurationError("the strategy asks for a model but TRADETRAIL_LLM_BASE_URL is not set")
        name = model or s.llm_model
        if name in self._analysts:
            return self._analysts[name]
        from tradetrail.analyst.cache import CachingAnalyst, SqlAnswerCache
        from tradetrail.analyst.openai_compat import OpenAICompatAnalyst

        inner = OpenAICompatAnalyst(base_url=s.llm_base_url, model=name,
                                    api_key=s.llm_api_key.get_secret_value() if s.llm_api_key else None,
                                    timeout_s=s.llm_timeout_s, max_attempts=s.llm_max_attempts,
                                    backoff_s=s.llm_backoff_s)
        return self._analysts.setdefault(name, CachingAnalyst(inner, SqlAnswerCache(self.engine), model=name))


def build_app(settings: Settings, *, migrate: bool = True) -> App:
    """Wire the embedded defaults (or what ``settings`` asks for); run migrations unless told not to."""
    engine = engine_for(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    store = _artifact_store(settings)
    app = App(settings=settings, engine=engine, Session=session_factory(engine),
              artifacts=ArtifactRegistry(store, engine), broker=None)  # type: ignore[arg-type]
    app.broker = app._brokers[settings.broker] = _make_broker(app, settings.broker)
    # Everything built so far (modules, pandas/SQLAlchemy internals: ~200k objects) lives as long as the
    # process; freezing it keeps full garbage collections (~100 ms each over those objects) off every run.
    gc.freeze()
    return app


def _make_broker(app: App, name: str) -> Broker:
    settings = app.settings
    if name == "simulated":
        return SimulatedBroker(app.engine, app.market_data, initial_cash=settings.sim_initial_cash,
                               commission_schedule=settings.sim_commission, slippage_bps=settings.sim_slippage_bps,
                               questions=_csv(settings.sim_questions), faults=_csv(settings.sim_faults),
                               locks=lambda lock: process_lock(app, lock, blocking=True))
    if name == "ibkr_web":
        from tradetrail.broker.ibkr_web import IbkrWebBroker

        return IbkrWebBroker(app.ibkr_session(), app.engine, account=settings.ibkr_account)
    raise ConfigurationError(f"unknown broker {name!r} (simulated or ibkr_web)")


def _artifact_store(settings: Settings):
    if settings.artifact_store == "local":
        root = settings.resolved_artifacts_dir
        if root.exists() and not root.is_dir():
            raise ConfigurationError(f"artifact folder {root} is not a folder (TRADETRAIL_ARTIFACTS_DIR, default "
                                     "TRADETRAIL_HOME/artifacts)")
        try:
            return LocalArtifactStore(root)
        except OSError as exc:
            raise ConfigurationError(f"artifact folder {root} cannot be created: {exc.strerror or exc} "
                                     f"({exc.filename or root})") from exc
    from tradetrail.artifacts.s3 import S3ArtifactStore

    def secret(value):
        return value.get_secret_value() if value else None

    store = S3ArtifactStore(endpoint=settings.s3_endpoint, bucket=settings.s3_bucket, prefix=settings.s3_prefix,
                            region=settings.s3_region, access_key=secret(settings.s3_access_key),
                            secret_key=secret(settings.s3_secret_key))
    store.ensure_bucket()
    return store


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())
