"""A finished backtest's series for interactive charts: equity beside buy and hold with both drawdowns, and
the bars it traded with each trade's entry and exit placed on its bar.

Both come from the backtest's recorded artifacts (``equity``, ``bars_daily``) and report, with the report's
own rules: buy and hold buys ``initial_cash`` worth at the first tested close, and the drawdown's running
peak starts at the initial cash, so the deepest point of the curve is the report's ``max_drawdown_pct``.
"""

from __future__ import annotations

import json

import pandas as pd

from tradetrail.backtest.report import drawdown_series
from tradetrail.backtest.runner import session_dates
from tradetrail.domain.bars import bars_from_json
from tradetrail.domain.errors import NotFound
from tradetrail.services.backtests.queries import get_backtest
from tradetrail.services.runs.artifacts import load_for_user


def _artifact_of(app, user_id: int, found: dict, name: str) -> bytes:
    digest = found["artifacts"].get(name)
    if digest is None:
        raise NotFound(f"backtest {found['id']} has no {name!r} (status {found['status']})")
    return load_for_user(app, user_id, digest)[0]


def equity_curves(app, user_id: int, backtest_id: str) -> dict:
    """``dates`` (exchange dates), ``equity``, ``buy_and_hold`` (account currency) and their drawdowns in
    percent below the running peak (``drawdown_pct``, ``buy_and_hold_drawdown_pct``: 0 or negative)."""
    found = get_backtest(app, user_id, backtest_id)
    curve = json.loads(_artifact_of(app, user_id, found, "equity"))
    initial = float(found["initial_cash"])
    index = pd.DatetimeIndex(pd.to_datetime(curve["dates"]))
    equity = pd.Series(curve["equity"], index=index, dtype="float64")
    closes = pd.Series(curve["close"], index=index, dtype="float64")
    hold = initial * closes / closes.iloc[0]
    return {"dates": curve["dates"], "initial_cash": initial,
            "equity": equity.tolist(), "buy_and_hold": hold.tolist(),
            "drawdown_pct": drawdown_series(equity, initial).tolist(),
            "buy_and_hold_drawdown_pct": drawdown_series(hold, initial).tolist()}


def trade_bars(app, user_id: int, backtest_id: str) -> dict:
    """``bars`` as stored (columnar, ``t`` in epoch seconds: the lookback before the tested range included),
    ``trades`` with the bar times of their entry and exit (``exit_t`` None for a trade still open at the
    end), and ``tested``: the bar times of the first and last tested sessions."""
    found = get_backtest(app, user_id, backtest_id)
    payload = _artifact_of(app, user_id, found, "bars_daily")
    frame = bars_from_json(payload)
    times = (frame.index.as_unit("ns").asi8 // 1_000_000_000).tolist()
    bar_of = {day.date().isoformat(): t for day, t in zip(session_dates(frame.index), times, strict=True)}
    report = found.get("report") or {}
    stats = report.get("stats") or {}
    trades = []
    for trade in report.get("trades", []):
        trades.append({**trade, "entry_t": bar_of.get(trade["entry_date"]),
                       "exit_t": bar_of.get(trade["exit_date"]) if trade["exit_date"] else None})
    return {"bars": json.loads(payload), "trades": trades,
            "tested": {"first_t": bar_of.get(stats.get("start")), "last_t": bar_of.get(stats.get("end"))}}
