"""Our backtest against backtrader: the SMA(20/50) crossover on the bundled S&P 500 daily series, 1999-2018,
gives the same closed trades (entry and exit sessions and prices) in both (issue #14)."""

from __future__ import annotations

import pytest

from tests.support.backtrader_crossover import (
    END,
    START,
    backtrader_closed_trades,
    closed_trades,
    crossover_config,
    exchange_frame,
    first_decision_date,
    run_backtrader,
    run_ours,
)
from tradetrail.marketdata.sample import load_sample_daily

pytestmark = pytest.mark.once  # no database: the same on either backend


@pytest.fixture(scope="module")
def runs():
    bars = load_sample_daily("SPX")
    frame = exchange_frame(bars)
    return bars, frame, run_ours(crossover_config(20, 50), bars), run_backtrader(frame, 20, 50)


def test_the_run_covers_the_whole_series_and_decides_from_the_same_session(runs):
    bars, frame, ours, theirs = runs
    assert (frame.index[0].date(), frame.index[-1].date(), len(frame)) == (START, END, 5031)
    assert ours.report["sessions"] == 5031
    # SmaCross needs slow + 1 bars, backtrader's CrossOver(SMA50) has a minimum period of 51: both decide
    # first on the 51st session.
    assert first_decision_date(ours) == theirs.first_decision == frame.index[50].date().isoformat()
    assert ours.report["undecided_sessions"] == []


def test_closed_trades_are_identical_to_backtrader(runs):
    bars, frame, ours, theirs = runs
    mine, reference = closed_trades(ours), backtrader_closed_trades(theirs)
    assert len(reference) == 57  # the count for backtrader
    assert len(mine) == len(reference)
    for n, (a, b) in enumerate(zip(mine, reference, strict=True)):
        assert a == b, f"trade {n}: ours {a}, backtrader {b}"
    # Neither holds a position at the end: every trade is closed in both.
    assert all(t["exit_date"] is not None for t in ours.report["trades"])
    assert ours.run.account.position.quantity == 0 and not theirs.position
    # fixed size 1, no costs: the pnl is the price difference
    for t in ours.report["trades"]:
        assert (t["quantity"], t["commission"]) == (1, 0)
        assert t["pnl"] == pytest.approx(t["exit_price"] - t["entry_price"])


def test_market_orders_fill_at_the_next_sessions_open(runs):
    bars, frame, ours, _ = runs
    dates = [d.date().isoformat() for d in frame.index]
    opens = frame["open"].tolist()
    decided = {ours.run.series.times[d.row] for d in ours.run.decisions if d.orders}
    assert len(decided) == 2 * 57
    for entry, exit_, entry_price, exit_price in closed_trades(ours):
        i, j = dates.index(entry), dates.index(exit_)
        assert (entry_price, exit_price) == (opens[i], opens[j])
        # the orders were placed on the sessions before the fills
        assert {bars.index[i - 1], bars.index[j - 1]} <= decided

