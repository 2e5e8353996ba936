"""One registry per port: the adapter names a setting or a strategy may use, each with its factory. Adding an
adapter means one entry here (and its module under its port's package); nothing else compares names."""

from __future__ import annotations

from tradetrail.analyst.port import Analyst
from tradetrail.app_context import App, ConfigurationError, Factories
from tradetrail.broker.port import Broker
from tradetrail.marketdata.port import MarketData, MarketDataError
from tradetrail.settings import GATEWAY_BROKERS, GATEWAY_MARKET_DATA, TWS_ADAPTERS, Settings
from tradetrail.trading.locks import process_lock


def _simulated(app: App) -> Broker:
    from tradetrail.broker.simulated import SimulatedBroker

    s = app.settings
    return SimulatedBroker(app.engine, app.market_data, initial_cash=s.sim_initial_cash,
                           commission_schedule=s.sim_commission, slippage_bps=s.sim_slippage_bps,
                           questions=_csv(s.sim_questions), faults=_csv(s.sim_faults),
                           locks=lambda lock: process_lock(app, lock, blocking=True))


def _ibkr_web(app: App) -> Broker:
    from tradetrail.ibkr.broker import IbkrWebBroker

    return IbkrWebBroker(app.ibkr_session(), app.engine, account=app.settings.ibkr_account)


def _ibkr_tws(app: App) -> Broker:
    from tradetrail.tws.broker import TwsBroker

    return TwsBroker(app.tws_connection(), app.engine, account=app.settings.tws_account)


BROKERS = {"simulated": _simulated, "ibkr_web": _ibkr_web, "ibkr_tws": _ibkr_tws}


def _sample(app: App) -> MarketData:
    from tradetrail.marketdata.sample import SampleMarketData

    return SampleMarketData()


def _ibkr_data(app: App) -> MarketData:
    from tradetrail.ibkr.marketdata import IbkrMarketData

    return IbkrMarketData(app.ibkr_session(), app.engine)


def _tws_data(app: App) -> MarketData:
    from tradetrail.tws.marketdata import TwsMarketData

    return TwsMarketData(app.tws_connection(), app.engine)


def _files(app: App) -> MarketData:
    folder = app.settings.market_data_dir
    if folder is None:
        raise MarketDataError("market data 'files' needs TRADETRAIL_MARKET_DATA_DIR (a folder of "
                              "<SYMBOL>.csv or .parquet files)")
    from tradetrail.marketdata.files import FilesMarketData

    return FilesMarketData(folder)


MARKET_DATA = {"sample": _sample, "ibkr": _ibkr_data, "files": _files, "ibkr_tws": _tws_data}


def _local_store(settings: Settings):
    from tradetrail.artifacts.local import LocalArtifactStore

    root = settings.resolved_artifacts_dir
    if root.exists() and not root.is_dir():
        raise ConfigurationError(f"artifact folder {root} is not a folder (TRADETRAIL_ARTIFACTS_DIR, default "
                                 "TRADETRAIL_HOME/artifacts)")
    try:
        return LocalArtifactStore(root)
    except OSError as exc:
        raise ConfigurationError(f"artifact folder {root} cannot be created: {exc.strerror or exc} "
                                 f"({exc.filename or root})") from exc


def _s3_store(settings: Settings):
    from tradetrail.artifacts.s3 import S3ArtifactStore

    def secret(value):
        return value.get_secret_value() if value else None

    store = S3ArtifactStore(endpoint=settings.s3_endpoint, bucket=settings.s3_bucket, prefix=settings.s3_prefix,
                            region=settings.s3_region, access_key=secret(settings.s3_access_key),
                            secret_key=secret(settings.s3_secret_key))
    store.ensure_bucket()
    return store


ARTIFACT_STORES = {"local": _local_store, "s3": _s3_store}




def uses_gateway_session(broker: str | None, market_data: str | None) -> bool:
    """Whether a broker or market data of these names talks through an IBKR gateway (its strategies run in the
    serving process only: one session, one connection)."""
    return broker in GATEWAY_BROKERS or market_data in GATEWAY_MARKET_DATA


def uses_tws(broker: str | None, market_data: str | None) -> bool:
    """Whether they talk to TWS / IB Gateway over the socket API (a connection, no keep-alive)."""
    return broker in TWS_ADAPTERS or market_data in TWS_ADAPTERS


def uses_web_api(broker: str | None, market_data: str | None) -> bool:
    """Whether they use the Client Portal Web API session (keep-alive tickles, brokerage session)."""
    return (broker in GATEWAY_BROKERS - TWS_ADAPTERS) or (market_data in GATEWAY_MARKET_DATA - TWS_ADAPTERS)


def market_data_is_live(name: str) -> bool:
    """A source of live bars of tradable instruments (the demo then trades an ETF on a paper account)."""
    return name in GATEWAY_MARKET_DATA


def make_broker(app: App, name: str) -> Broker:
    if name not in BROKERS:
        raise ConfigurationError(f"unknown broker {name!r} ({' or '.join(BROKERS)})")
    return BROKERS[name](app)


def make_market_data(app: App, name: str) -> MarketData:
    if name not in MARKET_DATA:
        raise MarketDataError(f"unknown market data source {name!r}")
    return MARKET_DATA[name](app)


def make_llm_analyst(app: App, model: str) -> Analyst:
    """The OpenAI-compatible analyst for ``model``, wrapped in the answer cache."""
    s = app.settings
    if not s.llm_configured:
        raise ConfigurationError("the strategy asks for a model but TRADETRAIL_LLM_BASE_URL is not set")
    from tradetrail.analyst.cache import CachingAnalyst, SqlAnswerCache
    from tradetrail.analyst.openai_compat import OpenAICompatAnalyst

    inner = OpenAICompatAnalyst(base_url=s.llm_base_url, model=model,
                                api_key=s.llm_api_key.get_secret_value() if s.llm_api_key else None,
                                timeout_s=s.llm_timeout_s, max_attempts=s.llm_max_attempts, backoff_s=s.llm_backoff_s,
                                response_format=s.llm_response_format_for(model))
    return CachingAnalyst(inner, SqlAnswerCache(app.engine), model=model)


def make_ibkr_session(app: App):
    from tradetrail.ibkr.client import IbkrSession

    return IbkrSession(app.settings)


def make_tws_connection(app: App):
    from tradetrail.tws.connection import TwsConnection

    return TwsConnection(app.settings)


def make_artifact_store(settings: Settings):
    """The artifact store ``TRADETRAIL_ARTIFACT_STORE`` names (anything but ``local`` is S3, as before)."""
    return ARTIFACT_STORES.get(settings.artifact_store, _s3_store)(settings)


FACTORIES = Factories(broker=make_broker, market_data=make_market_data, llm_analyst=make_llm_analyst,
                      ibkr_session=make_ibkr_session, tws_connection=make_tws_connection)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())
