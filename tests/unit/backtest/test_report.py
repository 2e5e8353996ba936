"""Backtest report: figures equal a hand computation on a tiny curve and empyrical's on generated ones,
undefined figures are None (JSON-ready), and bad input is refused with the reason."""

from __future__ import annotations

import json
import math
import statistics

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradetrail.backtest.report import build_report, drawdown_series

DAYS = pd.DatetimeIndex(["2024-01-30", "2024-01-31", "2024-02-01", "2024-03-04"])
EQUITY = pd.Series([110.0, 99.0, 121.0, 110.0], index=DAYS)
CLOSES = pd.Series([10.0, 11.0, 9.0, 12.0], index=DAYS)
HELD = pd.Series([True, True, False, False], index=DAYS)


def trade(pnl: float, *, r: float | None = 1.0, exit_date: str | None = "2024-01-31", commission: float = 1.0,
          holding: int = 1) -> dict:
    return {"entry_date": "2024-01-30", "exit_date": exit_date, "entry_price": 10.0,
            "exit_price": None if exit_date is None else 11.0, "quantity": 5, "pnl": pnl, "r_multiple": r,
            "commission": commission, "holding_sessions": holding}


TRADES = [trade(100.0, r=2.0, holding=3), trade(-50.0, r=-1.0, holding=1, commission=2.0),
          trade(30.0, r=None, holding=5), trade(20.0, r=0.4, exit_date=None, holding=2, commission=0.5)]


def curve(seed: int, n: int = 600, drift: float = 0.0004, vol: float = 0.012) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2015-01-02", periods=n)
    return pd.Series(50_000.0 * np.cumprod(1.0 + rng.normal(drift, vol, n)), index=index)


def report_of(equity: pd.Series, trades: list[dict] | None = None, initial: float | None = None) -> dict:
    closes = pd.Series(np.linspace(10.0, 20.0, len(equity)), index=equity.index)
    held = pd.Series(np.zeros(len(equity), dtype=bool), index=equity.index)
    return build_report(equity, trades or [], closes, held, initial if initial is not None else 50_000.0)


def test_tiny_curve_by_hand() -> None:
    report = build_report(EQUITY, TRADES, CLOSES, HELD, 100.0)
    stats = report["stats"]
    daily = [0.10, 99 / 110 - 1, 121 / 99 - 1, 110 / 121 - 1]
    cagr = 1.10 ** (252 / 4) - 1
    assert stats["start"] == "2024-01-30" and stats["end"] == "2024-03-04" and stats["sessions"] == 4
    assert stats["initial_equity"] == 100.0 and stats["final_equity"] == 110.0
    assert stats["total_return_pct"] == pytest.approx(10.0)
    assert stats["cagr_pct"] == pytest.approx(cagr * 100.0)
    assert stats["sharpe"] == pytest.approx(statistics.mean(daily) / statistics.stdev(daily) * math.sqrt(252))
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in daily) / 4) * math.sqrt(252)
    assert stats["sortino"] == pytest.approx(statistics.mean(daily) * 252 / downside)
    assert stats["calmar"] == pytest.approx(cagr / 0.10)
    assert stats["max_drawdown_pct"] == pytest.approx(10.0)  # 110 -> 99, not the later 121 -> 110 (9.1 %)
    assert stats["max_drawdown_value"] == pytest.approx(11.0)
    assert stats["max_drawdown_sessions"] == 2
    assert stats["time_in_market_pct"] == 50.0
    assert report["drawdown"] == {"max_pct": pytest.approx(10.0), "max_value": pytest.approx(11.0),
                                  "peak_date": "2024-01-30", "trough_date": "2024-01-31",
                                  "recovery_date": "2024-02-01", "length_sessions": 2, "longest_sessions": 2}


def test_trade_figures_by_hand() -> None:
    stats = build_report(EQUITY, TRADES, CLOSES, HELD, 100.0)["stats"]
    assert stats["trades"] == 3 and stats["open_trades"] == 1
    assert stats["win_rate_pct"] == pytest.approx(200.0 / 3)
    assert stats["profit_factor"] == pytest.approx(130.0 / 50.0)
    assert stats["average_r"] == pytest.approx(0.5)  # closed trades with an R: 2 and -1; the open 0.4 is not
    assert stats["expectancy"] == pytest.approx(80.0 / 3)
    assert stats["best_trade"] == 100.0 and stats["worst_trade"] == -50.0
    assert stats["average_holding_sessions"] == pytest.approx(3.0)
    assert stats["total_commission"] == pytest.approx(4.5)  # the open trade's commission counts


def test_a_break_even_trade_is_not_a_win_nor_a_loss() -> None:
    stats = build_report(EQUITY, [trade(0.0), trade(40.0), trade(-10.0)], CLOSES, HELD, 100.0)["stats"]
    assert stats["win_rate_pct"] == pytest.approx(100.0 / 3)
    assert stats["profit_factor"] == pytest.approx(4.0)


def test_buy_and_hold_by_hand() -> None:
    report = build_report(EQUITY, TRADES, CLOSES, HELD, 100.0)
    hold = report["buy_and_hold"]  # 100, 110, 90, 120: bought at the first close
    assert hold["final_equity"] == pytest.approx(120.0)
    assert hold["total_return_pct"] == pytest.approx(20.0)
    assert hold["max_drawdown_pct"] == pytest.approx(100.0 * 20 / 110)
    assert hold["max_drawdown_value"] == pytest.approx(20.0)
    daily = [0.0, 0.10, 90 / 110 - 1, 120 / 90 - 1]
    assert hold["sharpe"] == pytest.approx(statistics.mean(daily) / statistics.stdev(daily) * math.sqrt(252))
    assert report["buy_and_hold_drawdown"]["peak_date"] == "2024-01-31"
    assert report["buy_and_hold_drawdown"]["recovery_date"] == "2024-03-04"
    assert set(hold) == {"start", "end", "sessions", "initial_equity", "final_equity", "total_return_pct",
                         "cagr_pct", "max_drawdown_pct", "max_drawdown_value", "max_drawdown_sessions", "sharpe",
                         "sortino", "calmar"}


def test_monthly_returns_by_hand() -> None:
    rows = build_report(EQUITY, [], CLOSES, HELD, 100.0)["monthly_returns"]
    assert len(rows) == 1 and rows[0]["year"] == 2024
    months = rows[0]["months"]
    assert list(months) == [str(m) for m in range(1, 13)]
    assert months["1"] == pytest.approx(-1.0)  # 100 -> 99
    assert months["2"] == pytest.approx((121 / 99 - 1) * 100)
    assert months["3"] == pytest.approx((110 / 121 - 1) * 100)
    assert all(months[str(m)] is None for m in range(4, 13))
    assert rows[0]["year_pct"] == pytest.approx(10.0)


def test_monthly_returns_across_years_start_from_the_previous_period() -> None:
    index = pd.DatetimeIndex(["2023-11-30", "2023-12-29", "2024-02-01", "2024-02-29"])
    equity = pd.Series([105.0, 126.0, 113.4, 124.74], index=index)
    rows = report_of(equity, initial=100.0)["monthly_returns"]
    assert [r["year"] for r in rows] == [2023, 2024]
    assert rows[0]["months"]["11"] == pytest.approx(5.0) and rows[0]["months"]["12"] == pytest.approx(20.0)
    assert rows[0]["months"]["1"] is None and rows[1]["months"]["1"] is None
    assert rows[1]["months"]["2"] == pytest.approx(-1.0)  # 126 -> 124.74 over February (Jan has no session)
    assert rows[0]["year_pct"] == pytest.approx(26.0) and rows[1]["year_pct"] == pytest.approx(-1.0)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_ratios_equal_empyrical(seed: int) -> None:
    equity = curve(seed, drift=0.0002 * seed, vol=0.006 * seed)
    returns = pd.concat([pd.Series([50_000.0]), pd.Series(equity.to_numpy())]).pct_change().dropna()
    stats = report_of(equity)["stats"]
    assert stats["sharpe"] == pytest.approx(empyrical.sharpe_ratio(returns))
    assert stats["sortino"] == pytest.approx(empyrical.sortino_ratio(returns))
    assert stats["calmar"] == pytest.approx(empyrical.calmar_ratio(returns))
    assert stats["cagr_pct"] == pytest.approx(empyrical.annual_return(returns) * 100.0)
    assert stats["max_drawdown_pct"] == pytest.approx(-empyrical.max_drawdown(returns) * 100.0)


def test_undefined_figures_are_none_and_json_ready() -> None:
    flat = pd.Series(100.0, index=pd.bdate_range("2024-01-02", periods=30))
    report = report_of(flat, [trade(10.0, r=None)], initial=100.0)
    stats = report["stats"]
    assert stats["sharpe"] is None and stats["sortino"] is None and stats["calmar"] is None
    assert stats["max_drawdown_pct"] == 0.0 and stats["max_drawdown_sessions"] == 0
    assert stats["profit_factor"] is None  # no losing trade
    assert stats["average_r"] is None  # no trade with a stop
    assert stats["total_return_pct"] == 0.0 and stats["cagr_pct"] == 0.0
    assert report["drawdown"]["peak_date"] is None and report["drawdown"]["trough_date"] is None
    none = report_of(flat, [], initial=100.0)["stats"]
    assert none["trades"] == 0 and none["win_rate_pct"] is None and none["expectancy"] is None
    assert none["best_trade"] is None and none["average_holding_sessions"] is None
    json.dumps(report, allow_nan=False)  # raises on NaN/inf or a numpy type


def test_rising_curve_has_no_sortino_or_calmar() -> None:
    rising = pd.Series([101.0, 102.0, 104.0], index=pd.bdate_range("2024-01-02", periods=3))
    stats = report_of(rising, initial=100.0)["stats"]
    assert stats["sharpe"] is not None and stats["sortino"] is None and stats["calmar"] is None


def test_drawdown_from_the_starting_cash_and_not_recovered() -> None:
    equity = pd.Series([95.0, 98.0, 90.0, 92.0], index=pd.bdate_range("2024-01-02", periods=4))
    dd = report_of(equity, initial=100.0)["drawdown"]
    assert dd["peak_date"] is None  # the peak was the cash before the first session
    assert dd["trough_date"] == "2024-01-04" and dd["recovery_date"] is None
    assert dd["max_pct"] == pytest.approx(10.0) and dd["max_value"] == pytest.approx(10.0)
    assert dd["length_sessions"] == 4 and dd["longest_sessions"] == 4
    series = drawdown_series(equity, 100.0)
    assert series.tolist() == pytest.approx([-5.0, -2.0, -10.0, -8.0])
    assert drawdown_series(equity).tolist() == pytest.approx([0.0, 0.0, (90 / 98 - 1) * 100, (92 / 98 - 1) * 100])
    assert series.index.equals(equity.index)


def test_longest_time_under_water_can_be_a_shallower_drawdown() -> None:
    values = [100.0, 90.0, 100.0, 99.0, 98.0, 99.5, 99.9, 101.0]  # 10 % for 2 sessions, 2 % for 5
    equity = pd.Series(values, index=pd.bdate_range("2024-01-02", periods=len(values)))
    dd = report_of(equity, initial=100.0)["drawdown"]
    assert dd["max_pct"] == pytest.approx(10.0) and dd["length_sessions"] == 2
    assert dd["peak_date"] == "2024-01-02" and dd["recovery_date"] == "2024-01-04"
    assert dd["longest_sessions"] == 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.2, 0.2), min_size=1, max_size=120),
       st.lists(st.tuples(st.floats(-1000, 1000), st.booleans()), max_size=30))
def test_properties(daily: list[float], trade_spec: list[tuple[float, bool]]) -> None:
    index = pd.bdate_range("2023-12-20", periods=len(daily))
    equity = pd.Series(1000.0 * np.cumprod(1.0 + np.asarray(daily)), index=index)
    trades = [trade(pnl, exit_date=None if is_open else "2024-01-02") for pnl, is_open in trade_spec]
    report = report_of(equity, trades, initial=1000.0)
    stats = report["stats"]
    json.dumps(report, allow_nan=False)
    assert 0.0 <= stats["max_drawdown_pct"] <= 100.0
    assert stats["max_drawdown_pct"] == pytest.approx(-float(drawdown_series(equity, 1000.0).min()), abs=1e-9)
    closed = [t["pnl"] for t in trades if t["exit_date"] is not None]
    assert stats["trades"] + stats["open_trades"] == len(trades)
    if closed:
        assert stats["win_rate_pct"] == pytest.approx(100.0 * sum(p > 0 for p in closed) / len(closed))
        assert stats["worst_trade"] <= stats["expectancy"] <= stats["best_trade"]
    # Months and years compound to the whole return.
    growth = math.prod(1 + m / 100 for row in report["monthly_returns"] for m in row["months"].values()
                       if m is not None)
    years = math.prod(1 + row["year_pct"] / 100 for row in report["monthly_returns"])
    assert growth - 1 == pytest.approx(stats["total_return_pct"] / 100, abs=1e-9)
    assert years - 1 == pytest.approx(stats["total_return_pct"] / 100, abs=1e-9)
    dd = report["drawdown"]
    assert (dd["recovery_date"] is None) == (dd["max_pct"] == 0.0 or not recovers(equity, 1000.0))
    assert dd["length_sessions"] <= dd["longest_sessions"] <= len(equity)


def recovers(equity: pd.Series, initial: float) -> bool:
    """Whether the curve gets back to the peak before its deepest drawdown, recomputed with pandas."""
    whole = pd.concat([pd.Series([initial]), pd.Series(equity.to_numpy())], ignore_index=True)
    peak = whole.cummax()
    trough = int((whole / peak).idxmin())
    return bool((whole.iloc[trough + 1:] >= peak.iloc[trough]).any())


@pytest.mark.parametrize(("damage", "message"), [
    (lambda e, c, h: (e.iloc[:0], c.iloc[:0], h.iloc[:0]), "non-empty"),
    (lambda e, c, h: (e.tz_localize("UTC"), c, h), "tz-naive"),
    (lambda e, c, h: (e.iloc[::-1], c.iloc[::-1], h.iloc[::-1]), "ascending"),
    (lambda e, c, h: (e.where(e < 120.0, 0.0), c, h), "positive"),
    (lambda e, c, h: (e.where(e < 120.0, np.nan), c, h), "finite"),
    (lambda e, c, h: (e, c.iloc[1:], h), "closes"),
    (lambda e, c, h: (e, c.where(c < 11.5, -1.0), h), "closes"),
    (lambda e, c, h: (e, c, h.astype(int)), "bool"),
])
def test_bad_series_are_refused(damage, message: str) -> None:
    equity, closes, held = damage(EQUITY, CLOSES, HELD)
    with pytest.raises(ValueError, match=message):
        build_report(equity, [], closes, held, 100.0)


@pytest.mark.parametrize(("bad", "message"), [
    ({"pnl": float("nan")}, "pnl"),
    ({"commission": None}, "commission"),
    ({"r_multiple": float("inf")}, "r_multiple"),
])
def test_bad_trades_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_report(EQUITY, [trade(1.0) | bad], CLOSES, HELD, 100.0)
    incomplete = trade(1.0)
    del incomplete["holding_sessions"]
    with pytest.raises(ValueError, match="lacks"):
        build_report(EQUITY, [incomplete], CLOSES, HELD, 100.0)


@pytest.mark.parametrize("cash", [0.0, -5.0, float("nan"), "100", True])
def test_bad_initial_cash_is_refused(cash: object) -> None:
    with pytest.raises(ValueError, match="initial_cash"):
        build_report(EQUITY, [], CLOSES, HELD, cash)  # type: ignore[arg-type]
