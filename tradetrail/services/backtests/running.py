"""Running a backtest: check what was asked, create its execution (trigger ``backtest``) and row, load the
data through the strategy's market-data source, run the loop, and write the results once at the end.

The backtest trades on an account of its own in memory: it writes no order, position or trade to the
user's books. Its execution has one lineage step, ``backtest``, with the strategy version, the data's hash,
the report, and the curves, trades, chart and bars as artifacts.
"""

from __future__ import annotations

import logging
import threading
import time as time_
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import update

from tradetrail.analyst.cache import SqlAnswerCache
from tradetrail.analyst.plugins import PluginError, plugin_analyst
from tradetrail.analyst.rules import RulesAnalyst
from tradetrail.app_context import ConfigurationError
from tradetrail.backtest.engine import BacktestError
from tradetrail.backtest.report_chart import equity_chart_png
from tradetrail.backtest.runner import Costs, backtest, session_dates
from tradetrail.catalogue.symbols import resolve_symbol
from tradetrail.db.backtest_models import Backtest
from tradetrail.db.models import Execution, Strategy, StrategyVersion
from tradetrail.db.types import utcnow
from tradetrail.domain.bars import bars_to_json
from tradetrail.domain.market_hours import EXCHANGE_TZ
from tradetrail.marketdata.port import MarketDataError
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.backtests.model_analyst import (
    DEFAULT_MAX_CALLS,
    MAX_CALLS_LIMIT,
    MODES,
    LiveRequests,
    ModelBacktestAnalyst,
)
from tradetrail.services.errors import InvalidBacktest, TooManyBacktests
from tradetrail.services.strategies.configs import current_version, get_strategy, stored_config
from tradetrail.workflow.jsonable import dumps
from tradetrail.workflow.recorder import LineageRecorder

log = logging.getLogger(__name__)

MAX_CASH = 1e12
EARLIEST = date(1900, 1, 1)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BacktestRequest:
    name: str
    start: date
    end: date
    cash: float | None = None  # None: TRADETRAIL_SIM_INITIAL_CASH
    params: dict | None = None  # analyst params overriding the strategy's (a grid's combination)
    analyst: str | None = None  # the model analyst's mode: "cached" (None: the default) or "model"
    max_calls: int | None = None  # mode "model": the most model calls allowed (None: DEFAULT_MAX_CALLS)


def _check(req: BacktestRequest, today: date) -> None:
    if req.start > req.end:
        raise InvalidBacktest(f"--from {req.start} is after --to {req.end}")
    if req.start < EARLIEST or req.end > today:
        raise InvalidBacktest(f"the range must lie between {EARLIEST} and today ({today}), got {req.start}..{req.end}")
    if req.cash is not None and not (0 < req.cash <= MAX_CASH):
        raise InvalidBacktest(f"cash must be a positive amount up to {MAX_CASH:g}, got {req.cash}")
    if req.analyst is not None and req.analyst not in MODES:
        raise InvalidBacktest(f"analyst must be one of {', '.join(MODES)}, got {req.analyst!r}")
    if req.max_calls is not None:
        if req.analyst != "model":
            raise InvalidBacktest("max_calls bounds the model calls of --analyst model; it means nothing in cached "
                                  "mode, which never calls the model")
        if not 1 <= req.max_calls <= MAX_CALLS_LIMIT:
            raise InvalidBacktest(f"max_calls must be between 1 and {MAX_CALLS_LIMIT}, got {req.max_calls}")


def _config(strategy_config: StrategyConfig, params: dict | None) -> StrategyConfig:
    if not params:
        return strategy_config
    merged = strategy_config.to_json()
    merged["analyst"]["params"] = {**merged["analyst"].get("params", {}), **params}
    try:
        return StrategyConfig.model_validate(merged)
    except ValueError as exc:
        raise InvalidBacktest(f"the parameters {params} do not make a valid strategy: {exc}") from exc


def is_model(app, config: StrategyConfig) -> bool:
    """Whether a live run of ``config`` asks the model (analyst.kind llm, or auto with TRADETRAIL_LLM_BASE_URL)."""
    kind = config.analyst.kind
    return kind == "llm" or (kind == "auto" and app.settings.llm_configured)


def analyst_for(app, config: StrategyConfig):
    """The analyst a live run of ``config`` would ask, when it is the rules or a plug-in (computed again for
    any session). The model analyst is refused here with the reason rather than replaced by another analyst:
    a backtest asks it through :mod:`model_analyst` (see :func:`backtest_analyst`), and a session re-run finds
    its answers in the cache (``sessions._analyst``)."""
    cfg = config.analyst
    kind = cfg.kind
    if kind == "auto":
        kind = "llm" if app.settings.llm_configured else "rules"
    if kind == "rules":
        return RulesAnalyst(cfg.atr_stop_multiple, cfg.reward_risk)
    if kind == "plugin":
        try:
            return plugin_analyst(cfg.plugin, cfg.params, app.settings.analyst_plugins)
        except PluginError as exc:
            raise InvalidBacktest(f"analyst plug-in: {exc}") from exc
    raise InvalidBacktest("this strategy's analyst is the model (analyst.kind llm, or auto with "
                          "TRADETRAIL_LLM_BASE_URL set): it is asked through the model backtest's own path")


def model_name(app, config: StrategyConfig) -> str:
    """The model a live run asks (``analyst.model``, else TRADETRAIL_LLM_MODEL): the first part of the cache key."""
    return config.analyst.model or app.settings.llm_model


def _check_analyst(app, config: StrategyConfig, mode: str | None, max_calls: int | None) -> None:
    """Refuse what cannot run: a mode for an analyst that is not the model, the model without charts (a live run
    fails there too), or mode model without a configured model."""
    if not is_model(app, config):
        if mode == "model" or max_calls is not None:
            raise InvalidBacktest("--analyst model and --max-calls apply to a strategy whose analyst is the model; "
                                  f"this one's is {config.analyst.kind!r}")
        analyst_for(app, config)
        return
    if not config.charts.enabled:
        raise InvalidBacktest("the model analyst needs the chart images, but charts are disabled in the strategy "
                              "(a live run fails its analyze step there too)")
    if mode == "model":
        try:
            app.llm_analyst(config.analyst.model)
        except ConfigurationError as exc:
            raise InvalidBacktest(f"--analyst model: {exc}") from exc


def backtest_analyst(app, backtest_id: str, config: StrategyConfig, contract, params: dict,
                     on_plan: Callable[[dict], None] | None = None):
    """The analyst a backtest asks: the rules or the plug-in (:func:`analyst_for`), or the model's answers for
    each session's live request (cached ones only, or the model too in mode ``model``)."""
    if not is_model(app, config):
        return analyst_for(app, config)
    with app.Session() as s:
        row = s.get(Backtest, backtest_id)
        user_id, name = row.user_id, s.get(Strategy, row.strategy_id).name
    mode = params.get("analyst") or "cached"

    def planned(plan: dict) -> None:  # readers (the API) see the count before any call is made
        with app.engine.begin() as conn:
            conn.execute(update(Backtest).where(Backtest.id == backtest_id).values(params={**params, "plan": plan}))
        if on_plan is not None:
            on_plan(plan)
    return ModelBacktestAnalyst(LiveRequests(app, user_id, name, config, contract), SqlAnswerCache(app.engine),
                                model_name(app, config), mode=mode,
                                max_calls=params.get("max_calls") or DEFAULT_MAX_CALLS,
                                asker=lambda: app.llm_analyst(config.analyst.model), on_plan=planned)


def check(app, user_id: int, req: BacktestRequest) -> None:
    """Refuse a request that cannot run (range, cash, strategy, analyst, parameters) without writing anything."""
    _check(req, datetime.now(EXCHANGE_TZ).date())
    with app.Session() as s:
        version = current_version(s, get_strategy(s, user_id, req.name))
        _check_analyst(app, _config(stored_config(version.config), req.params), req.analyst, req.max_calls)


def create(app, user_id: int, req: BacktestRequest, *, status: str = "running") -> str:
    """Check the request and the strategy, and create the backtest's execution and row (status running)."""
    _check(req, datetime.now(EXCHANGE_TZ).date())
    with app.Session() as s:
        strategy = get_strategy(s, user_id, req.name)
        version = current_version(s, strategy)
        config = _config(stored_config(version.config), req.params)
        _check_analyst(app, config, req.analyst, req.max_calls)  # refuse now, not in the background
        params = {"analyst_params": req.params or {}}
        if is_model(app, config):  # how the model analyst answers (the plan is added once counted)
            params |= {"analyst": req.analyst or "cached", "max_calls": req.max_calls if req.analyst == "model"
                       else None}
        now = utcnow()
        as_of = datetime.combine(req.end, datetime.max.time(), tzinfo=EXCHANGE_TZ)
        backtest_id = str(uuid.uuid4())
        s.add(Execution(id=backtest_id, user_id=user_id, strategy_id=strategy.id, strategy_version_id=version.id,
                        status="running", trigger="backtest", as_of=as_of, started_at=now))
        s.flush()
        s.add(Backtest(id=backtest_id, user_id=user_id, strategy_id=strategy.id, strategy_version_id=version.id,
                       start=req.start, end=req.end,
                       initial_cash=req.cash if req.cash is not None else app.settings.sim_initial_cash,
                       params=params, status=status, done=0, total=0,
                       created_at=now))
        s.commit()
    return backtest_id


def _load(app, config: StrategyConfig, start: date, end: date):
    source = app.market_data(config.market_data.source)
    try:
        with app.Session() as s:
            contract = resolve_symbol(s, source, config.symbol).contract
        as_of = datetime.combine(end, datetime.max.time(), tzinfo=EXCHANGE_TZ)
        sessions = int(len(pd.bdate_range(start, end)) * 1.02) + 5  # at least the sessions of the range
        bars = source.daily_bars(contract, as_of=as_of, lookback=config.market_data.lookback_days + sessions)
    except MarketDataError as exc:
        raise InvalidBacktest(f"market data from {source.name}: {exc}") from exc
    return source, contract, bars


def execute(app, backtest_id: str, progress: Progress | None = None,
            on_plan: Callable[[dict], None] | None = None) -> dict:
    """Run a created backtest to its end and record it; returns the report (raises InvalidBacktest when it
    cannot run, after recording the failure). With the model analyst, ``on_plan`` hears the sessions found in
    the cache and the model calls to make before any is made."""
    started = time_.perf_counter()
    with app.Session() as s:
        row = s.get(Backtest, backtest_id)
        version = s.get(StrategyVersion, row.strategy_version_id)
        config = _config(stored_config(version.config), row.params.get("analyst_params"))
        start, end, cash, params = row.start, row.end, row.initial_cash, dict(row.params)
    with app.engine.begin() as conn:  # a queued backtest starts now
        conn.execute(update(Backtest).where(Backtest.id == backtest_id).values(status="running"))
    store = _ProgressWriter(app, backtest_id, progress)
    try:
        load_started = time_.perf_counter()
        source, contract, bars = _load(app, config, start, end)
        load_ms = (time_.perf_counter() - load_started) * 1000
        costs = Costs(cash, app.settings.sim_commission, app.settings.sim_slippage_bps)
        analyst = backtest_analyst(app, backtest_id, config, contract, params, on_plan)
        outcome = backtest(config, contract.symbol, bars, start, end, analyst, execution_id=backtest_id, costs=costs,
                           progress=store)
    except (BacktestError, InvalidBacktest, ValueError) as exc:
        _fail(app, backtest_id, str(exc), started, traceback.format_exc())
        raise InvalidBacktest(str(exc)) from exc
    except Exception as exc:
        _fail(app, backtest_id, f"{type(exc).__name__}: {exc}", started, traceback.format_exc())
        raise
    report = outcome.report
    report["duration_ms"] = round(report["duration_ms"] + load_ms, 3)  # the data's loading included
    _record(app, backtest_id, config, source.name, contract, bars, outcome, costs, started)
    return report


class _ProgressWriter:
    """Hands progress to the caller, and to the backtest's row at most twice a second (readers poll it)."""

    def __init__(self, app, backtest_id: str, progress: Progress | None):
        self.app, self.id, self.progress, self.last = app, backtest_id, progress, 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)
        now = time_.monotonic()
        if now - self.last >= 0.5 or done == total:
            self.last = now
            with self.app.engine.begin() as conn:
                conn.execute(update(Backtest).where(Backtest.id == self.id).values(done=done, total=total))


def _record(app, backtest_id: str, config: StrategyConfig, source: str, contract, bars, outcome, costs,
            started: float) -> None:
    run, report = outcome.run, outcome.report
    series = run.series
    dates = session_dates(series.times)[run.first:]
    equity = pd.Series(run.equity, index=dates)
    closes = pd.Series(series.close[run.first:], index=dates)
    bars_json = bars_to_json(series.bars)
    artifacts = {
        "report": app.artifacts.save(dumps(report).encode(), "application/json"),
        "equity": app.artifacts.save(dumps({"dates": [d.date().isoformat() for d in dates],
                                            "equity": [float(v) for v in run.equity],
                                            "close": [float(v) for v in closes],
                                            "cash": [float(v) for v in run.cash],
                                            "quantity": [float(v) for v in run.quantity]}).encode(),
                                     "application/json"),
        "trades": app.artifacts.save(dumps(report["trades"]).encode(), "application/json"),
        "chart": app.artifacts.save(equity_chart_png(equity, closes, costs.initial_cash, report["trades"]),
                                    "image/png"),
        "bars_daily": app.artifacts.save(bars_json, "application/json"),
        "orders": app.artifacts.save(dumps(_order_rows(run)).encode(), "application/json"),
    }
    data_sha = artifacts["bars_daily"]
    step_input = {"strategy": config.to_json(), "symbol": contract.symbol, "source": source,
                  "range": {"from": report["stats"]["start"], "to": report["stats"]["end"]},
                  "costs": {"initial_cash": costs.initial_cash, "commission": costs.commission_schedule,
                            "slippage_bps": costs.slippage_bps},
                  "data": {"bars": len(series), "first": series.times[0].isoformat(),
                           "last": series.times[-1].isoformat(), "sha256": data_sha}}
    output = {"stats": report["stats"], "trades": len(report["trades"]), "duration_ms": report["duration_ms"],
              "warmup_sessions": report["warmup_sessions"], "visited_sessions": report["visited_sessions"],
              "paused": report["paused"]}
    elapsed = (time_.perf_counter() - started) * 1000
    recorder = LineageRecorder(app.engine, app.artifacts)
    recorder.record_step(execution_id=backtest_id, number=1, name="backtest", status="succeeded", input=step_input,
                         output=output, meta={"decisions": len(run.decisions)}, artifacts=artifacts, error=None,
                         traceback=None, started_at=utcnow(), duration_ms=elapsed)
    with app.engine.begin() as conn:
        conn.execute(update(Backtest).where(Backtest.id == backtest_id).values(
            status="succeeded", report=report, data_sha256=data_sha, finished_at=utcnow(),
            done=len(dates), total=len(dates)))
    recorder.finish_execution(backtest_id, status="succeeded", finished_at=utcnow(), duration_ms=elapsed)


def _order_rows(run) -> list[dict]:
    """Every order of the backtest's account with the sessions it was placed and closed on (what a session's
    re-run seeds its working orders and books from)."""
    days = [d.date().isoformat() for d in session_dates(run.series.times)]
    return [{"client_order_id": o.client_order_id, "parent_client_order_id": o.parent_client_order_id,
             "leg": o.leg, "side": o.side, "order_type": o.order_type, "quantity": o.quantity,
             "limit_price": o.limit_price, "stop_price": o.stop_price, "tif": o.tif, "state": o.state,
             "placed": days[o.placed], "closed": days[o.closed] if o.closed is not None else None,
             "fill_price": o.fill_price, "commission": o.commission, "sized_price": o.sized_price,
             "risk_per_unit": o.risk_per_unit, "reason": o.reason} for o in run.account.orders]


def _fail(app, backtest_id: str, message: str, started: float, trace: str) -> None:
    elapsed = (time_.perf_counter() - started) * 1000
    recorder = LineageRecorder(app.engine, app.artifacts)
    recorder.record_step(execution_id=backtest_id, number=1, name="backtest", status="failed", input={},
                         output={}, meta={}, artifacts={}, error=message, traceback=trace, started_at=utcnow(),
                         duration_ms=elapsed)
    with app.engine.begin() as conn:
        conn.execute(update(Backtest).where(Backtest.id == backtest_id).values(
            status="failed", error=message, finished_at=utcnow()))
    recorder.finish_execution(backtest_id, status="failed", finished_at=utcnow(), duration_ms=elapsed,
                              failed_step="backtest", error=message)


def run_backtest(app, user_id: int, req: BacktestRequest, progress: Progress | None = None,
                 on_plan: Callable[[dict], None] | None = None) -> tuple[str, dict]:
    """Create and run a backtest in the caller's thread (the command line)."""
    backtest_id = create(app, user_id, req)
    return backtest_id, execute(app, backtest_id, progress, on_plan)


_pool_lock = threading.Lock()
PER_USER = 8  # backtests one user may have waiting or running in this process


def _pool(app) -> tuple[ThreadPoolExecutor, dict[int, int]]:
    with _pool_lock:
        if "backtests" not in app._shared:
            size = max(1, app.settings.run_now_workers)
            app._shared["backtests"] = (ThreadPoolExecutor(max_workers=size, thread_name_prefix="backtest"), {})
        return app._shared["backtests"]


def start_backtest(app, user_id: int, req: BacktestRequest) -> str:
    """Create a backtest and queue it on this process's backtest threads (status ``queued``, then
    ``running``); a user with :data:`PER_USER` backtests waiting or running is refused (TooManyBacktests)."""
    pool, in_flight = _pool(app)
    with _pool_lock:
        if in_flight.get(user_id, 0) >= PER_USER:
            raise TooManyBacktests(PER_USER)
        in_flight[user_id] = in_flight.get(user_id, 0) + 1

    def done() -> None:
        with _pool_lock:
            in_flight[user_id] -= 1

    try:
        backtest_id = create(app, user_id, req, status="queued")
    except BaseException:
        done()
        raise

    def job() -> None:
        try:
            execute(app, backtest_id)
        except InvalidBacktest:
            pass  # recorded on the backtest
        except Exception:  # noqa: BLE001 - recorded on the backtest; the server log has the trace
            log.exception("backtest %s failed", backtest_id)
        finally:
            done()

    pool.submit(job)
    return backtest_id


def mark_interrupted(app) -> int:
    """Backtests left running by a process that ended (a restart): failed, with that reason."""
    with app.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(Backtest.__table__.select().with_only_columns(Backtest.id).where(
            Backtest.status.in_(("queued", "running"))))]
    for backtest_id in ids:
        _fail(app, backtest_id, "interrupted: the process running it ended", time_.perf_counter(), "")
    return len(ids)
