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

from tradetrail.analyst.plugins import PluginError, plugin_analyst
from tradetrail.analyst.rules import RulesAnalyst
from tradetrail.backtest.engine import BacktestError
from tradetrail.backtest.report_chart import equity_chart_png
from tradetrail.backtest.runner import Costs, backtest, session_dates
from tradetrail.catalogue.symbols import resolve_symbol
from tradetrail.db.backtest_models import Backtest
from tradetrail.db.models import Execution, StrategyVersion
from tradetrail.db.types import utcnow
from tradetrail.domain.bars import bars_to_json
from tradetrail.domain.market_hours import EXCHANGE_TZ
from tradetrail.marketdata.port import MarketDataError
from tradetrail.schemas.strategy import StrategyConfig
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


def _check(req: BacktestRequest, today: date) -> None:
    if req.start > req.end:
        raise InvalidBacktest(f"--from {req.start} is after --to {req.end}")
    if req.start < EARLIEST or req.end > today:
        raise InvalidBacktest(f"the range must lie between {EARLIEST} and today ({today}), got {req.start}..{req.end}")
    if req.cash is not None and not (0 < req.cash <= MAX_CASH):
        raise InvalidBacktest(f"cash must be a positive amount up to {MAX_CASH:g}, got {req.cash}")


def _config(strategy_config: StrategyConfig, params: dict | None) -> StrategyConfig:
    if not params:
        return strategy_config
    merged = strategy_config.to_json()
    merged["analyst"]["params"] = {**merged["analyst"].get("params", {}), **params}
    try:
        return StrategyConfig.model_validate(merged)
    except ValueError as exc:
        raise InvalidBacktest(f"the parameters {params} do not make a valid strategy: {exc}") from exc


def analyst_for(app, config: StrategyConfig):
    """The analyst a live run of ``config`` would ask, for a backtest: the rules or a plug-in. The model
    analyst answers backtests from its answer cache only, which needs each session's prompts and charts:
    not available yet, so it is refused with that reason rather than replaced by another analyst."""
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
                          "TRADETRAIL_LLM_BASE_URL set); backtests with the model analyst are not available yet: "
                          "use analyst.kind rules or a plug-in")


def create(app, user_id: int, req: BacktestRequest, *, status: str = "running") -> str:
    """Check the request and the strategy, and create the backtest's execution and row (status running)."""
    _check(req, datetime.now(EXCHANGE_TZ).date())
    with app.Session() as s:
        strategy = get_strategy(s, user_id, req.name)
        version = current_version(s, strategy)
        config = _config(stored_config(version.config), req.params)
        analyst_for(app, config)  # refuse now, not in the background
        now = utcnow()
        as_of = datetime.combine(req.end, datetime.max.time(), tzinfo=EXCHANGE_TZ)
        backtest_id = str(uuid.uuid4())
        s.add(Execution(id=backtest_id, user_id=user_id, strategy_id=strategy.id, strategy_version_id=version.id,
                        status="running", trigger="backtest", as_of=as_of, started_at=now))
        s.flush()
        s.add(Backtest(id=backtest_id, user_id=user_id, strategy_id=strategy.id, strategy_version_id=version.id,
                       start=req.start, end=req.end,
                       initial_cash=req.cash if req.cash is not None else app.settings.sim_initial_cash,
                       params={"analyst_params": req.params or {}}, status=status, done=0, total=0,
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


def execute(app, backtest_id: str, progress: Progress | None = None) -> dict:
    """Run a created backtest to its end and record it; returns the report (raises InvalidBacktest when it
    cannot run, after recording the failure)."""
    started = time_.perf_counter()
    with app.Session() as s:
        row = s.get(Backtest, backtest_id)
        version = s.get(StrategyVersion, row.strategy_version_id)
        config = _config(stored_config(version.config), row.params.get("analyst_params"))
        start, end, cash = row.start, row.end, row.initial_cash
    with app.engine.begin() as conn:  # a queued backtest starts now
        conn.execute(update(Backtest).where(Backtest.id == backtest_id).values(status="running"))
    store = _ProgressWriter(app, backtest_id, progress)
    try:
        load_started = time_.perf_counter()
        source, contract, bars = _load(app, config, start, end)
        load_ms = (time_.perf_counter() - load_started) * 1000
        costs = Costs(cash, app.settings.sim_commission, app.settings.sim_slippage_bps)
        outcome = backtest(config, contract.symbol, bars, start, end, analyst_for(app, config),
                           execution_id=backtest_id, costs=costs, progress=store)
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


def run_backtest(app, user_id: int, req: BacktestRequest, progress: Progress | None = None) -> tuple[str, dict]:
    """Create and run a backtest in the caller's thread (the command line)."""
    backtest_id = create(app, user_id, req)
    return backtest_id, execute(app, backtest_id, progress)


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
