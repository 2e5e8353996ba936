"""The full lineage of one backtest decision: that session re-run through the 13 steps of a live run, from
the backtest's stored inputs, on a simulated account of its own.

What the re-run is given (and nothing else):

- the strategy version the backtest was pinned to, with the backtest's analyst parameters, and its analyst
  (the rules or the plug-in computed again; the model's answers from the cache only, never a model call). Its
  ``load_strategy`` step stands in for the pipeline's: it neither advances a replay clock nor changes broker,
  and names the account below; the other twelve steps are the pipeline's own;
- as of the session's bar time, the backtest's stored ``bars_daily`` up to and including the session — all
  of them, through :class:`marketdata.stored.StoredBars` (it ignores ``lookback``), so the indicators are
  seeded on the backtest's first bar;
- a new simulated account (``BTS…``, one per re-run, not registered among the user's trading accounts, so
  no reconciliation or listing of accounts moves it), holding the backtest's books at the end of the
  previous session (``session_books``): cash, position, round trips, working orders, the day's starting
  equity; a simulated broker of its own with the backtest's commission and slippage, whatever broker the
  strategy names: its orders never reach a real one.

One re-run per backtest and session (``backtest_sessions``, unique): asking again returns the same execution.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tradetrail.analyst.cache import CacheOnlyAnalyst, SqlAnswerCache
from tradetrail.broker.simulated import SimulatedBroker
from tradetrail.db.backtest_models import SESSION_ACCOUNT_PREFIX, BacktestSession
from tradetrail.db.models import Execution, LineageStep, Strategy, StrategyVersion
from tradetrail.db.types import utcnow
from tradetrail.domain.bars import bars_from_json
from tradetrail.domain.errors import NotFound
from tradetrail.marketdata.stored import StoredBars
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.backtests.queries import artifact, get_backtest
from tradetrail.services.backtests.running import analyst_for, model_name, session_dates
from tradetrail.services.backtests.session_books import Books, books_before, seed
from tradetrail.services.errors import InvalidBacktest
from tradetrail.services.runs.executions import _ReportingRecorder
from tradetrail.trading.locks import process_lock
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.executor import execute
from tradetrail.workflow.pipeline import STEPS
from tradetrail.workflow.recorder import LineageRecorder

TRIGGER = "backtest-session"


def find_rerun(app, user_id: int, backtest_id: str, session: date) -> str | None:
    """The execution of an earlier re-run of this backtest's session, if there is one."""
    with app.Session() as s:
        return s.scalar(select(BacktestSession.id).where(BacktestSession.backtest_id == backtest_id,
                                                         BacktestSession.session == session,
                                                         BacktestSession.user_id == user_id))


def _json(app, user_id: int, backtest_id: str, name: str) -> Any:
    try:
        return json.loads(artifact(app, user_id, backtest_id, name)[0])
    except NotFound as exc:
        raise InvalidBacktest(f"this backtest has no {name!r} artifact (recorded before session re-runs "
                              "existed, or it did not finish): run it again") from exc


def decision_sessions(orders: list[dict], trades: list[dict]) -> list[dict[str, str | None]]:
    """Per trade (as the report lists them), the sessions whose decisions made it: the entry's (the session
    its entry order was placed on) and the exit's (an exit order's placement, or the session a stop or target
    filled on, whose re-run shows that fill)."""
    out = []
    for trade in trades:
        entry = next((o["placed"] for o in orders if o["leg"] == "entry" and o["state"] == "FILLED"
                      and o["closed"] == trade["entry_date"]), None)
        exit_ = None
        if trade["exit_date"] is not None:
            leg = next((o for o in orders if o["leg"] in ("exit", "stop", "target") and o["state"] == "FILLED"
                        and o["closed"] == trade["exit_date"]), None)
            exit_ = leg["placed"] if leg is not None and leg["leg"] == "exit" else trade["exit_date"]
        out.append({"entry": entry, "exit": exit_})
    return out


def trade_sessions(app, user_id: int, backtest_id: str, trades: list[dict]) -> list[dict[str, str | None]] | None:
    """:func:`decision_sessions` of the backtest's trades; None for a backtest recorded without its orders."""
    try:
        orders = _json(app, user_id, backtest_id, "orders")
    except InvalidBacktest:
        return None
    return decision_sessions(orders, trades)


def rerun_session(app, user_id: int, backtest_id: str, session: date,
                  on_step: Callable[[dict[str, Any]], None] | None = None) -> str:
    """Re-run ``session`` of the user's backtest (or find its earlier re-run); returns the execution id.
    NotFound for another user's backtest or a session it did not test; InvalidBacktest when it cannot be
    re-run (not finished, artifacts missing)."""
    found = get_backtest(app, user_id, backtest_id)
    existing = find_rerun(app, user_id, backtest_id, session)
    if existing is not None:
        return existing
    if found["status"] != "succeeded":
        raise InvalidBacktest(f"backtest {backtest_id} is {found['status']}: only a finished one can be re-run")
    equity = _json(app, user_id, backtest_id, "equity")
    day = session.isoformat()
    if day not in equity["dates"]:
        raise NotFound(f"backtest {backtest_id} did not test {day} (it tested {equity['dates'][0]} to "
                       f"{equity['dates'][-1]}, sessions only)")
    orders = _json(app, user_id, backtest_id, "orders")
    with app.Session() as s:
        step = s.scalar(select(LineageStep).where(LineageStep.execution_id == backtest_id,
                                                  LineageStep.step_name == "backtest"))
        step_input = dict(step.input)
    config = StrategyConfig.model_validate(step_input["strategy"])
    analyst = _analyst(app, config, found)
    bars = bars_from_json(artifact(app, user_id, backtest_id, "bars_daily")[0])
    days = [d.date().isoformat() for d in session_dates(bars.index)]
    row = days.index(day)
    books = books_before(orders, equity, found["initial_cash"], day, days[row - 1] if row > 0 else None)
    times = {d: t.to_pydatetime() for d, t in zip(days, bars.index, strict=True)}
    execution_id = str(uuid.uuid4())
    account = SESSION_ACCOUNT_PREFIX + execution_id.replace("-", "")[:24]
    run_app = _isolated_app(app, step_input, config, bars, windowed=isinstance(analyst, CacheOnlyAnalyst))
    with app.Session() as s:
        version = s.get(StrategyVersion, s.get(Execution, backtest_id).strategy_version_id)
        strategy = s.get(Strategy, version.strategy_id)
        s.add(Execution(id=execution_id, user_id=user_id, strategy_id=strategy.id, strategy_version_id=version.id,
                        status="running", trigger=TRIGGER, as_of=times[day], started_at=utcnow()))
        s.flush()
        s.add(BacktestSession(id=execution_id, backtest_id=backtest_id, user_id=user_id, session=session,
                              account=account))
        try:
            s.flush()
        except IntegrityError:  # asked twice at once: the other request's re-run is the one
            s.rollback()
            return find_rerun(app, user_id, backtest_id, session)
        contract = run_app.market_data(step_input["source"]).resolve(config.symbol)
        seed(s, books, user_id=user_id, strategy_id=strategy.id, account=account, contract=contract,
             initial_cash=found["initial_cash"], times=times)
        s.commit()
        ctx = RunContext(app=run_app, execution_id=execution_id, user_id=user_id, strategy_id=strategy.id,
                         strategy_version_id=version.id, as_of=times[day], trigger=TRIGGER)
    load = _load_step(backtest_id, config, analyst, account, books, step_input)
    recorder = LineageRecorder(app.engine, app.artifacts) if on_step is None else \
        _ReportingRecorder(app.engine, app.artifacts, on_step)
    execute(ctx, [("load_strategy", load), *STEPS[1:]], recorder)
    return execution_id


def _analyst(app, config: StrategyConfig, found: dict):
    """The analyst the backtest asked: the rules or the plug-in, computed again; the model's answers from the
    cache only (the session's request is built by the live steps as the backtest built it, so its answer is
    found under the same key; a session the backtest held for want of an answer fails its analyze step with
    that reason, and nothing ever reaches a model)."""
    analysis = (found.get("report") or {}).get("analysis")
    if analysis is None:
        return analyst_for(app, config)
    if not config.charts.enabled:
        raise InvalidBacktest("the model analyst needs the chart images, but charts are disabled in the strategy")
    return CacheOnlyAnalyst(SqlAnswerCache(app.engine), model=analysis.get("model") or model_name(app, config))


def _isolated_app(app, step_input: dict, config: StrategyConfig, bars: pd.DataFrame, *, windowed: bool = False):
    """The app the re-run sees: the stored bars as its market data, a simulated broker of its own with the
    backtest's costs (the risk gate reads the commission schedule from the settings)."""
    costs = step_input["costs"]
    settings = app.settings.model_copy(update={"sim_commission": costs["commission"],
                                               "sim_slippage_bps": costs["slippage_bps"],
                                               "sim_initial_cash": costs["initial_cash"]})
    stored = StoredBars(app.market_data(step_input["source"]), {config.symbol, step_input["symbol"]}, bars,
                        windowed=windowed)  # the model's requests were built from a live run's window
    run_app = replace(app, settings=settings, _market_data={step_input["source"]: stored}, _brokers={})
    run_app.broker = SimulatedBroker(app.engine, run_app.market_data, initial_cash=costs["initial_cash"],
                                     commission_schedule=costs["commission"], slippage_bps=costs["slippage_bps"],
                                     locks=lambda name: process_lock(app, name, blocking=True))
    return run_app


def _load_step(backtest_id: str, config: StrategyConfig, analyst, account: str, books: Books, step_input: dict):
    def load_strategy(ctx: RunContext) -> StepOutcome:
        """The backtest's strategy version and analyst, as of the session; the account of this re-run."""
        ctx.step_input.update(strategy_id=ctx.strategy_id, strategy_version_id=ctx.strategy_version_id,
                              backtest_id=backtest_id, session=books.session)
        with ctx.app.Session() as s:
            strategy = s.get(Strategy, ctx.strategy_id)
            version = s.get(StrategyVersion, ctx.strategy_version_id)
            if strategy is None or version is None:
                raise StepError("the strategy or its version no longer exists")
            ctx.strategy_name = strategy.name
            out = {"name": strategy.name, "version": version.version}
        ctx.config = config
        ctx.account = account  # risk_check keeps an account the harness chose
        ctx.choose_analyst = lambda _ctx: analyst
        return StepOutcome(output={**out, "as_of": ctx.as_of.isoformat(), "config": config.to_json(),
                                   "backtest": {"id": backtest_id, "session": books.session,
                                                "costs": step_input["costs"], "data": step_input["data"]},
                                   "account": account, "broker": ctx.app.broker.name, "books": books.summary()})
    return load_strategy
