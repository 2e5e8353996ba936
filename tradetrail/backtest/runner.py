"""One backtest from a strategy configuration and a daily series to its report (no database).

``duration_ms`` in the report is the time from here — the configuration and the bars — to the finished
report: the indicators, the analyst's answers, the loop and the statistics (the caller adds loading the
data when it loads them). Recording the result is the caller's (``services/backtests``).
"""

from __future__ import annotations

import bisect
import time as time_
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from tradetrail.analyst.port import Analyst
from tradetrail.backtest import engine
from tradetrail.backtest.engine import BacktestError, BacktestRun, Progress
from tradetrail.backtest.report import build_report
from tradetrail.backtest.series import Series
from tradetrail.domain.market_hours import EXCHANGE_TZ_NAME
from tradetrail.schemas.strategy import StrategyConfig


@dataclass(frozen=True)
class Costs:
    """The simulator's settings the backtest trades with (TRADETRAIL_SIM_*)."""

    initial_cash: float = 100_000.0
    commission_schedule: str = "fixed"
    slippage_bps: float = 5.0


@runtime_checkable
class PreparedAnalyst(Protocol):
    """An analyst that answers the tested sessions from work done before the loop — the model analyst builds
    each session's request, takes the cached answers and asks the model for the others — and says in the
    report what it did (``report["analysis"]``). ``prepare`` may refuse with :class:`BacktestError`."""

    def prepare(self, series: Series, rows: range, progress: Progress | None) -> None: ...

    def report(self, series: Series) -> dict: ...


@dataclass
class Outcome:
    run: BacktestRun
    report: dict


def session_dates(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Exchange dates (tz-naive midnight) of bar times: the exchange time floored to its day (as
    ``normalize()`` does, without inferring a frequency nothing reads)."""
    local = index.tz_convert(EXCHANGE_TZ_NAME).tz_localize(None)
    return pd.DatetimeIndex(local.to_numpy().astype("datetime64[D]").astype(local.dtype), name=index.name)


def tested_rows(bars: pd.DataFrame, start: date, end: date, lookback: int) -> tuple[pd.DataFrame, int]:
    """The bars a backtest of ``start``..``end`` runs over (from ``lookback`` bars before the first tested
    session, as a live run on it would fetch) and the row of its first tested session."""
    dates = session_dates(bars.index)
    inside = np.nonzero((dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end)))[0]
    if len(inside) == 0:
        raise BacktestError(f"the data has no session between {start} and {end} (it covers "
                            f"{dates[0].date() if len(dates) else '-'} to {dates[-1].date() if len(dates) else '-'})")
    begin = max(0, int(inside[0]) - lookback + 1)
    return bars.iloc[begin:int(inside[-1]) + 1], int(inside[0]) - begin


def backtest(config: StrategyConfig, symbol: str, bars: pd.DataFrame, start: date, end: date, analyst: Analyst,
             *, execution_id: str, costs: Costs = Costs(), progress: Progress | None = None) -> Outcome:
    started = time_.perf_counter()
    window, first = tested_rows(bars, start, end, config.market_data.lookback_days)
    series = Series(config, symbol, window)
    if isinstance(analyst, PreparedAnalyst):  # the sessions the loop will ask about: past the range's start and
        ready = max(first, engine.warmup_rows(series, analyst))  # the warm-up, as engine.run counts them
        analyst.prepare(series, range(ready, len(series)), progress)
    run = engine.run(series, analyst, first=first, execution_id=execution_id, initial_cash=costs.initial_cash,
                     commission_schedule=costs.commission_schedule, slippage_bps=costs.slippage_bps,
                     progress=progress)
    report = make_report(run, costs.initial_cash)
    if isinstance(analyst, PreparedAnalyst):
        report["analysis"] = analyst.report(series)
    report["duration_ms"] = round((time_.perf_counter() - started) * 1000, 3)
    return Outcome(run, report)


def trade_rows(run: BacktestRun) -> list[dict]:
    """The round trips as the report lists them: fill sessions as exchange dates, plain numbers."""
    day = run.series.day
    last = len(run.series) - 1
    rows = []
    account = run.account
    fill_rows = [f["row"] for f in account.fills]  # in time order: a trade's fills are one slice of them
    trades = list(account.trades) + ([account.open_trade] if account.open_trade is not None else [])
    for trade in trades:
        closed = trade.status == "closed"
        pnl = float(trade.pnl)
        if not closed:  # unrealised at the last close, on what is still held
            pnl = round(pnl + account.position.unrealized(float(run.series.close[last])), 6)
        fills = account.fills[bisect.bisect_left(fill_rows, trade.entry_at):
                              bisect.bisect_right(fill_rows, trade.exit_at if closed else last)]
        commission = sum(f["commission"] for f in fills)
        rows.append({"entry_date": day(trade.entry_at),
                     "exit_date": day(trade.exit_at) if closed else None,
                     "entry_price": float(trade.entry_price),
                     "exit_price": float(trade.exit_price) if closed and trade.exit_price is not None else None,
                     "quantity": float(trade.quantity), "pnl": pnl,
                     "r_multiple": float(trade.r_multiple) if trade.r_multiple is not None else None,
                     "commission": round(float(commission), 6),
                     "holding_sessions": int((trade.exit_at if closed else last) - trade.entry_at)})
    return rows


def make_report(run: BacktestRun, initial_cash: float) -> dict:
    series, first = run.series, run.first
    dates = session_dates(series.times)
    index = pd.DatetimeIndex(dates[first:])
    trades = trade_rows(run)
    report = build_report(pd.Series(run.equity, index=index), trades, pd.Series(series.close[first:], index=index),
                          pd.Series(run.in_market, index=index), initial_cash)
    report.update(bars=len(series), sessions=len(index), warmup_sessions=run.warmup,
                  visited_sessions=run.visited, trades=trades,
                  paused=None if run.paused is None else {
                      "date": series.day(run.paused["row"]),
                      "reason": f"{run.paused['consecutive_losses']} losing trades in a row: the risk gate refuses "
                                "every entry until the strategy is resumed (a live strategy would wait for a person)"},
                  undecided_sessions=[series.day(f["row"]) for f in run.failures])
    return report
