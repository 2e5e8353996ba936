"""A backtest's result as the numbers a trader reads: return, risk ratios, drawdown, trades, months.

Pure functions over the engine's equity curve and trade list, fast enough to run after every backtest
(numpy over the sessions, no pandas resample/groupby). The ratio metrics (Sharpe, Sortino, Calmar, CAGR,
max drawdown %) come from empyrical-reloaded, on daily returns that start from the initial cash, annualised
with 252 sessions and a risk-free rate of 0. The output is JSON-ready: plain numbers, strings and None where a
figure is undefined (never NaN or inf).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import empyrical
import numpy as np
import pandas as pd

from tradetrail.domain.bars import strictly_ascending

SESSIONS_PER_YEAR = 252
MONTHS = tuple(str(m) for m in range(1, 13))  # a year's row: every month, "1" .. "12"
TRADE_KEYS = ("entry_date", "exit_date", "entry_price", "exit_price", "quantity", "pnl", "r_multiple",
              "commission", "holding_sessions")


def build_report(equity: pd.Series, trades: list[dict], closes: pd.Series, in_market: pd.Series,
                 initial_cash: float) -> dict:
    """The report of one backtest, JSON-ready.

    Units: ``*_pct`` are percent numbers (12.5 means 12.5 %); drawdowns are positive percents and positive
    amounts of account currency; ``*_sessions`` count exchange sessions; dates are ISO ``YYYY-MM-DD``;
    money is account currency. Undefined figures are None: Sharpe of a flat curve, Sortino with no losing
    session, Calmar with no drawdown, profit factor with no losing trade, trade averages with no closed trade.

    Returns ``{"stats", "buy_and_hold", "drawdown", "buy_and_hold_drawdown", "monthly_returns"}``:

    - ``stats``: start, end, sessions, initial_equity, final_equity, total_return_pct, cagr_pct,
      max_drawdown_pct, max_drawdown_value, max_drawdown_sessions, sharpe, sortino, calmar,
      time_in_market_pct, trades (closed), open_trades, win_rate_pct (closed trades with pnl > 0),
      profit_factor (gross profit / gross loss of closed trades), average_r (closed trades with an R),
      expectancy (average pnl per closed trade), best_trade, worst_trade (pnl of closed trades),
      average_holding_sessions (closed trades), total_commission (all trades, open ones included).
    - ``buy_and_hold``: the same return and risk keys (start .. calmar) for buying ``initial_cash`` worth
      of the instrument at the first close and holding it to the last, without costs.
    - ``drawdown`` / ``buy_and_hold_drawdown``: see :func:`drawdown_details`.
    - ``monthly_returns``: see :func:`monthly_returns`.
    """
    dates, values, initial = _check_curve(equity, initial_cash)
    close_values = _check_aligned(closes, equity, "closes").astype(np.float64, copy=False)
    if not (np.isfinite(close_values).all() and (close_values > 0).all()):
        raise ValueError("build_report: closes must be finite and positive")
    held = _check_aligned(in_market, equity, "in_market")
    if held.dtype != np.bool_:
        raise ValueError(f"build_report: in_market must be a bool Series, got dtype {held.dtype}")

    hold_values = initial * (close_values / close_values[0])
    dd = drawdown_details(dates, values, initial)
    hold_dd = drawdown_details(dates, hold_values, initial)
    stats = _curve_stats(dates, values, initial, dd)
    stats["time_in_market_pct"] = float(held.mean() * 100.0)
    stats.update(trade_stats(trades))
    return {
        "stats": stats,
        "buy_and_hold": _curve_stats(dates, hold_values, initial, hold_dd),
        "drawdown": dd,
        "buy_and_hold_drawdown": hold_dd,
        "monthly_returns": monthly_returns(dates, values, initial),
    }


def drawdown_series(equity: pd.Series, initial_cash: float | None = None) -> pd.Series:
    """Percent below the running peak at each session (0 at a new high, negative below it).

    With ``initial_cash`` the running peak starts there, as in :func:`build_report` (a first session below
    the starting cash is already a drawdown); without it, at the first session's equity.
    """
    _, values, initial = _check_curve(equity, initial_cash if initial_cash is not None else _first(equity))
    peak = np.maximum.accumulate(np.concatenate(([initial], values)))[1:]
    return pd.Series((values / peak - 1.0) * 100.0, index=equity.index, name="drawdown_pct")


def drawdown_details(dates: pd.DatetimeIndex, values: np.ndarray, initial: float) -> dict:
    """The deepest drawdown of a positive curve that starts from ``initial`` before the first session.

    ``max_pct`` and ``max_value`` (peak minus trough, currency) are of that drawdown; ``peak_date`` is the
    last session at the peak before the trough, None when the peak was the starting cash;
    ``recovery_date`` is the first session back at or above the peak, None if never; ``length_sessions``
    runs from the peak to the recovery, or to the last session when not recovered. ``longest_sessions`` is
    the longest time under water of any depth, measured the same way. A curve that never falls below its
    peak gives zeros and None dates.
    """
    curve = np.concatenate(([initial], values))  # position k is the end of session k - 1; 0 is the start
    peak = np.maximum.accumulate(curve)
    depth = curve / peak - 1.0
    trough = int(np.argmin(depth))
    if depth[trough] >= 0.0:
        return {"max_pct": 0.0, "max_value": 0.0, "peak_date": None, "trough_date": None, "recovery_date": None,
                "length_sessions": 0, "longest_sessions": 0}
    top = trough - int(np.argmax(curve[trough::-1] == peak[trough]))  # last time at that peak
    back = np.flatnonzero(curve[trough + 1:] >= peak[trough])
    recovery = trough + 1 + int(back[0]) if back.size else None
    return {
        "max_pct": float(-depth[trough] * 100.0),
        "max_value": float(peak[trough] - curve[trough]),
        "peak_date": _iso(dates, top - 1) if top > 0 else None,
        "trough_date": _iso(dates, trough - 1),
        "recovery_date": _iso(dates, recovery - 1) if recovery is not None else None,
        "length_sessions": (recovery if recovery is not None else len(curve) - 1) - top,
        "longest_sessions": _longest_under_water(depth < 0.0),
    }


def _longest_under_water(under: np.ndarray) -> int:
    """Longest peak-to-recovery stretch in sessions (a run under water plus its recovery session, if any)."""
    edges = np.diff(np.concatenate(([0], under.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # run is [start, end)
    if not starts.size:
        return 0
    recovered = ends < len(under)
    return int((ends - starts + recovered).max())


def monthly_returns(dates: pd.DatetimeIndex, values: np.ndarray, initial: float) -> list[dict]:
    """Percent return of each calendar month and year, from the previous period's last equity.

    The first period starts from ``initial``, so a partial first or last month (or year) shows the return
    over the tested part of it. ``months`` holds all twelve months as keys "1".."12"; a month with no
    tested session is None. One row per calendar year with tested sessions, oldest first.
    """
    month_no = dates.values.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    ends = np.flatnonzero(np.diff(month_no, append=month_no[-1] + 1))  # last session of each month
    month_end = values[ends]
    month_pct = (month_end / np.concatenate(([initial], month_end[:-1])) - 1.0) * 100.0
    month_ids = month_no[ends]
    years = month_ids // 12 + 1970
    year_last = np.flatnonzero(np.diff(years, append=years[-1] + 1))
    year_end = month_end[year_last]
    year_pct = (year_end / np.concatenate(([initial], year_end[:-1])) - 1.0) * 100.0
    rows, first = [], 0
    month_keys, month_values = [str(m + 1) for m in (month_ids % 12).tolist()], month_pct.tolist()
    for y, last, pct in zip(years[year_last].tolist(), year_last.tolist(), year_pct.tolist(), strict=True):
        months: dict[str, float | None] = dict.fromkeys(MONTHS)
        for k in range(first, last + 1):
            months[month_keys[k]] = month_values[k]
        rows.append({"year": int(y), "months": months, "year_pct": float(pct)})
        first = last + 1
    return rows


def trade_stats(trades: Sequence[dict]) -> dict:
    """Counts and averages over the trades; averages use closed trades, commission counts every trade."""
    closed_pnl, r_values, holding, commission, open_count = [], [], [], 0.0, 0
    for i, trade in enumerate(trades):
        missing = [k for k in TRADE_KEYS if k not in trade]
        if missing:
            raise ValueError(f"build_report: trade {i} lacks {missing}")
        pnl, fee = _finite(trade["pnl"], i, "pnl"), _finite(trade["commission"], i, "commission")
        commission += fee
        if trade["exit_date"] is None:
            open_count += 1
            continue
        closed_pnl.append(pnl)
        holding.append(_finite(trade["holding_sessions"], i, "holding_sessions"))
        if trade["r_multiple"] is not None:
            r_values.append(_finite(trade["r_multiple"], i, "r_multiple"))
    count = len(closed_pnl)
    wins = [p for p in closed_pnl if p > 0.0]
    gross_loss = -sum(p for p in closed_pnl if p < 0.0)
    return {
        "trades": count,
        "open_trades": open_count,
        "win_rate_pct": len(wins) / count * 100.0 if count else None,
        "profit_factor": _defined(sum(wins) / gross_loss) if gross_loss > 0.0 else None,  # inf for a 1e-320 loss
        "average_r": sum(r_values) / len(r_values) if r_values else None,
        "expectancy": sum(closed_pnl) / count if count else None,
        "best_trade": max(closed_pnl) if count else None,
        "worst_trade": min(closed_pnl) if count else None,
        "average_holding_sessions": sum(holding) / count if count else None,
        "total_commission": commission,
    }


def _curve_stats(dates: pd.DatetimeIndex, values: np.ndarray, initial: float, dd: dict) -> dict:
    """Return and risk figures of one equity curve (``dd`` its drawdown); ratios from empyrical."""
    curve = np.concatenate(([initial], values))
    returns = curve[1:] / curve[:-1] - 1.0  # daily, the first from the starting cash
    return {
        "start": _iso(dates, 0),
        "end": _iso(dates, -1),
        "sessions": len(values),
        "initial_equity": float(initial),
        "final_equity": float(values[-1]),
        "total_return_pct": float((values[-1] / initial - 1.0) * 100.0),
        "cagr_pct": _defined(empyrical.annual_return(returns, annualization=SESSIONS_PER_YEAR), 100.0),
        "max_drawdown_pct": dd["max_pct"],
        "max_drawdown_value": dd["max_value"],
        "max_drawdown_sessions": dd["length_sessions"],
        "sharpe": _defined(empyrical.sharpe_ratio(returns, risk_free=0.0, annualization=SESSIONS_PER_YEAR)),
        "sortino": _defined(empyrical.sortino_ratio(returns, required_return=0.0,
                                                    annualization=SESSIONS_PER_YEAR)),
        "calmar": _defined(empyrical.calmar_ratio(returns, annualization=SESSIONS_PER_YEAR)),
    }


def _check_curve(equity: pd.Series, initial_cash: float) -> tuple[pd.DatetimeIndex, np.ndarray, float]:
    """Dates, float values and starting cash of an equity curve, or ValueError saying what is wrong."""
    if not isinstance(equity, pd.Series) or equity.empty:
        raise ValueError("backtest report: equity must be a non-empty pandas Series")
    index = equity.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is not None:
        raise ValueError("backtest report: equity needs a tz-naive DatetimeIndex of session dates")
    if not strictly_ascending(index) and (not index.is_monotonic_increasing or not index.is_unique):
        raise ValueError("backtest report: equity's dates must be unique and ascending")
    values = equity.to_numpy(dtype=np.float64)
    if not (np.isfinite(values).all() and (values > 0.0).all()):
        raise ValueError("backtest report: equity must be finite and positive at every session")
    if isinstance(initial_cash, bool) or not isinstance(initial_cash, int | float | np.floating | np.integer):
        raise ValueError(f"backtest report: initial_cash must be a number, got {initial_cash!r}")
    initial = float(initial_cash)
    if not (math.isfinite(initial) and initial > 0.0):
        raise ValueError(f"backtest report: initial_cash must be finite and positive, got {initial_cash!r}")
    return index, values, initial


def _check_aligned(series: pd.Series, equity: pd.Series, name: str) -> np.ndarray:
    if not isinstance(series, pd.Series) or not series.index.equals(equity.index):
        raise ValueError(f"build_report: {name} must be a Series on the equity's index ({len(equity)} sessions)")
    return series.to_numpy()


def _first(equity: pd.Series) -> float:
    if not isinstance(equity, pd.Series) or equity.empty:
        raise ValueError("backtest report: equity must be a non-empty pandas Series")
    return float(equity.iloc[0])


def _finite(value: object, i: int, key: str) -> float:
    if type(value) is float and math.isfinite(value):  # the usual case, without the checks below
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer) \
            or not math.isfinite(value):
        raise ValueError(f"build_report: trade {i} {key} must be a finite number, got {value!r}")
    return float(value)


def _defined(value: float, scale: float = 1.0) -> float | None:
    """A plain float, or None where the figure is undefined (NaN or infinite)."""
    value = float(value)
    return value * scale if math.isfinite(value) else None


def _iso(dates: pd.DatetimeIndex, k: int) -> str:
    """Session ``k``'s date as ``YYYY-MM-DD`` (what ``dates[k].strftime("%Y-%m-%d")`` gives for the tz-naive
    dates of a curve, read from the array without building a Timestamp)."""
    return str(dates.values[k].astype("datetime64[D]"))
