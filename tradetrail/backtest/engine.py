"""The backtest loop: one pass over the sessions, visiting only those where something can happen.

Per session t, in the order a live run on the replay clock does it: the simulator fills or expires what
worked before t on bar t (risk_check's broker sync), then — past the warm-up, where the analyst's action can
lead to an order (a BUY while flat with nothing working, a SELL while holding) — the decision is taken by the
functions the pipeline's steps call (``trading.decisions``: signal policy, entry levels on the tick, the risk
gate, the orders), and the orders are placed at t to work from the next bar. A session where the analyst
says HOLD, or where its action can only be denied, changes nothing and is not visited; the equity curve is
computed for every session at the end.
"""

from __future__ import annotations

import bisect
import time as time_
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tradetrail.analyst.port import AnalysisFailed, Analyst, SeriesAnalyst, SeriesAnswers
from tradetrail.backtest.account import Account
from tradetrail.backtest.series import Series
from tradetrail.domain.confirmation import confirm
from tradetrail.trading import decisions

Progress = Callable[[int, int], None]


class BacktestError(Exception):
    """The backtest cannot run as asked (too few bars, an analyst that fails): the message says why."""


@dataclass
class Decision:
    """One visited session where the analyst's action was taken through the policy and the gate."""

    row: int
    action: str
    signal: str
    reason: str
    approved: bool
    quantity: float
    orders: list[str] = field(default_factory=list)


@dataclass
class BacktestRun:
    """Everything the loop produced, before the report."""

    series: Series
    first: int  # the first tested row
    warmup: int  # tested rows before the analyst and indicators could decide
    account: Account
    decisions: list[Decision]
    failures: list[dict]  # sessions the analyst could not decide (a live run would fail there)
    equity: np.ndarray  # per tested row, at the close
    cash: np.ndarray  # per tested row, after the session (the books a live run leaves at its snapshot)
    quantity: np.ndarray  # the position held after the session
    in_market: np.ndarray
    visited: int
    paused: dict | None  # where the strategy paused for good (consecutive losses while flat), if it did
    seconds: float


def warmup_rows(series: Series, analyst: Analyst, *, whole_series: bool | None = None) -> int:
    """The first row a live run could decide on: enough daily (and weekly) bars for the indicators, the
    strategy's minimum and the analyst (``whole_series``: whether it is a :class:`SeriesAnalyst`, when the
    caller knows)."""
    cfg = series.config
    if whole_series is None:
        whole_series = isinstance(analyst, SeriesAnalyst)
    need = max(cfg.market_data.min_daily_bars, cfg.indicators.warmup_bars(),
               analyst.bars_needed() if whole_series else 1)
    first = need - 1
    if series.weekly_configured:
        weeks = np.nonzero(series.weekly_counts >= cfg.indicators.warmup_bars())[0]
        first = max(first, int(weeks[0]) if len(weeks) else len(series))
    return first


def _answers(series: Series, analyst: Analyst, whole_series: bool) -> SeriesAnswers:
    if whole_series:
        return analyst.analyze_series(series.analysis_series())
    # No whole-series method: ask session by session (the per-session method is the fallback).
    results: dict[int, object] = {}

    def result(t: int):
        if t not in results:
            results[t] = analyst.analyze(series.request(t))
        return results[t]

    actions = np.full(len(series), "", dtype=object)
    for t in range(len(series)):
        try:
            actions[t] = result(t).answer.action
        except AnalysisFailed:
            actions[t] = ""
    return SeriesAnswers(actions=actions.astype(str), result=result)


def run(series: Series, analyst: Analyst, *, first: int, execution_id: str, initial_cash: float,
        commission_schedule: str, slippage_bps: float, progress: Progress | None = None) -> BacktestRun:
    """Run the strategy over rows ``first``.. of ``series`` on a fresh account of its own."""
    started = time_.perf_counter()
    cfg = series.config
    n = len(series)
    account = Account(cash=initial_cash, schedule=commission_schedule, slippage=slippage_bps / 10_000)
    whole_series = isinstance(analyst, SeriesAnalyst)  # a runtime protocol check costs ~20 µs: once
    ready = max(first, warmup_rows(series, analyst, whole_series=whole_series))
    answers = _answers(series, analyst, whole_series)
    actions = answers.actions
    decisions_: list[Decision] = []
    cash_after = np.full(n, np.nan)
    qty_after = np.full(n, np.nan)
    cash_after[first - 1 if first > 0 else 0] = account.cash
    qty_after[first - 1 if first > 0 else 0] = 0.0
    candidates = np.zeros(n, dtype=bool)
    candidates[ready:] = (actions[ready:] == "BUY") | (actions[ready:] == "SELL")
    failures = [{"row": int(t), "reason": "the analyst could not decide"}
                for t in np.nonzero(actions[ready:] == "")[0] + ready]
    rows = np.nonzero(candidates)[0].tolist()  # the sessions where the analyst's action may lead to an order
    opens, highs, lows, closes = series.open, series.high, series.low, series.close  # read as floats, where visited
    visited = 0
    paused: dict | None = None  # flat after max_consecutive_losses: no BUY can pass until a person resumes
    step = max(1, (n - first) // 100)
    next_progress = first
    t = first
    k = bisect.bisect_left(rows, first)  # rows[k] is the next candidate at or after t
    while t < n:
        if progress is not None and t >= next_progress:
            progress(t - first, n - first)
            next_progress = t + step
        cash_before, qty_before = account.cash, account.position.quantity  # the books at the end of t - 1
        touched = bool(account.working) and account.process_bar(t, None, float(opens[t]), float(highs[t]),
                                                                float(lows[t]))
        candidate = k < len(rows) and rows[k] == t
        if candidate:
            k += 1
            action = str(actions[t])
            if paused is None and action == "BUY" and _paused_for_good(account, cfg):
                paused = {"row": t, "consecutive_losses": cfg.risk.max_consecutive_losses}
            if _can_act(account, action) and not (paused and paused["row"] != t):
                visited += 1
                # The last snapshot before today: the previous session's, when a live run decided there.
                day_start = round(cash_before + qty_before * float(closes[t - 1]), 6) if t - 1 >= ready else None
                decisions_.append(_decide(series, answers, account, t, execution_id, cfg, day_start))
                touched = True
        if touched:
            cash_after[t], qty_after[t] = account.cash, account.position.quantity
        if account.working:  # a working order may fill or expire on the next bar
            t += 1
        else:  # nothing can happen before the next candidate session
            t = rows[k] if k < len(rows) else n
    if progress is not None:
        progress(n - first, n - first)
    cash, qty = _carried(cash_after)[first:], _carried(qty_after)[first:]
    equity = rounded_6(cash + qty * series.close[first:])
    return BacktestRun(series=series, first=first, warmup=max(0, ready - first), account=account,
                       decisions=decisions_, failures=failures, equity=equity, cash=cash, quantity=qty,
                       in_market=qty != 0,
                       visited=visited, paused=paused, seconds=time_.perf_counter() - started)


def _carried(values: np.ndarray) -> np.ndarray:
    """Each NaN replaced by the last value before it (the books did not change on that session)."""
    known = np.where(np.isnan(values), 0, np.arange(len(values)))
    return values[np.maximum.accumulate(known)] if len(values) else values


def rounded_6(values: np.ndarray) -> np.ndarray:
    """``round(v, 6)`` of every value, as Python rounds an account's value (as the broker reports it).

    Python rounds the exact decimal value of v·10**6 to an integer n (half to even) and returns the float
    nearest to n/10**6; numpy rounds the float product s = v*1e6, within half a unit in the last place of
    the exact one, and divides back, which also gives the float nearest to its integer over 10**6. The two
    integers can differ only where s lies within that error of a half: such values (with twice the margin,
    and NaN or inf) are rounded by Python, the rest by numpy.
    """
    scaled = values * 1e6
    out = np.rint(scaled) / 1e6
    with np.errstate(invalid="ignore"):
        near_half = ~(np.abs(scaled - np.floor(scaled) - 0.5) > 2 * np.spacing(np.abs(scaled)))
    for i in np.flatnonzero(near_half).tolist():
        out[i] = round(float(values[i]), 6)
    return out


def _can_act(account: Account, action: str) -> bool:
    """Whether the analyst's action can lead to an order: otherwise the gate can only deny it (a BUY while
    holding or with an order working, a SELL with nothing held or an exit working), so the session is
    skipped — the decision would change nothing."""
    flat = account.position.quantity == 0
    if action == "BUY":
        return flat and not account.working
    return not flat and not any(o.leg in ("entry", "exit") for o in account.working)


def _paused_for_good(account: Account, cfg) -> bool:
    """Flat, nothing working, and the last ``max_consecutive_losses`` trades lost: the gate denies every
    entry from here on (no trade can close while flat, and a backtest has nobody to resume the strategy), so
    the BUY sessions after the first such denial are not visited."""
    if account.position.quantity != 0 or account.working:
        return False
    return account.losses_in_a_row >= cfg.risk.max_consecutive_losses


def _decide(series: Series, answers: SeriesAnswers, account: Account, t: int, execution_id: str, cfg,
            day_start: float | None) -> Decision:
    """The decision of session t, by the functions the live steps call (decide_signal, risk_check,
    place_order)."""
    try:
        result = answers.result(t)
    except AnalysisFailed as exc:
        return Decision(t, "", "HOLD", f"analysis failed: {exc}", False, 0)
    latest = series.latest_view(t)  # each value rounded when read, as series.latest(t) has it
    primary = confirm(latest) if cfg.signal_policy.require_confirmation else None  # no other rule reads it
    higher = _confirmation(series, t, "weekly") if cfg.signal_policy.require_higher_timeframe else None
    signal = decisions.signal_decision(cfg, result.answer, primary, higher, latest)
    plan = decisions.entry_plan(cfg, signal, latest.get("close"))
    inputs = account.risk_inputs(float(series.close[t]), day_start)  # a float: Python's round, as the broker
    risk = decisions.risk_decision(cfg, signal, plan, inputs)
    decision = Decision(t, result.answer.action, signal.action, risk.reason if signal.action != "HOLD"
                        else signal.reason, risk.approved, risk.quantity)
    if not risk.approved:
        return decision
    session_id = f"{execution_id}:{series.day(t)}"
    if risk.action == "enter":
        specs = decisions.entry_orders(cfg, session_id, risk, plan)
        stop = plan.levels.get("stop_loss")
        per_unit = risk.numbers["reference_price"] - stop if stop is not None else None
        placed = account.place(specs, t, sized_price=risk.numbers.get("sizing_price"), risk_per_unit=per_unit)
    else:
        for order in [o for o in account.working if o.leg in ("stop", "target")]:
            account.cancel(order, t)
        placed = account.place(decisions.exit_orders(session_id, account.position.quantity), t)
    decision.orders = [o.client_order_id for o in placed]
    return decision


def _confirmation(series: Series, t: int, timeframe: str):
    return series.weekly(t)[1] if timeframe == "weekly" and series.weekly_configured else None
