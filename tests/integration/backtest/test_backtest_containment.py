"""A backtest's analyst reads copies: a plug-in that rescales the bars or the indicators it was given, or tries
to write into an indicator column, changes nothing the loop fills, sizes or checks at (review of #14, H1)."""

from __future__ import annotations

import pytest

from tests.support.backtrader_crossover import END, NO_COSTS, START, crossover_config
from tradetrail.analyst.plugins import plugin_analyst
from tradetrail.backtest.runner import backtest
from tradetrail.backtest.series import Series
from tradetrail.marketdata.sample import load_sample_daily

pytestmark = pytest.mark.once
ALLOWED = ["tradetrail.analyst.examples", "tests.support.plugins"]


def _run(ref: str):
    config = crossover_config()
    analyst = plugin_analyst(ref, {"fast": 20, "slow": 50}, ALLOWED)
    bars = load_sample_daily("SPX")
    before = bars.copy()
    outcome = backtest(config, "SPX", bars, START, END, analyst, execution_id="x", costs=NO_COSTS)
    assert bars.equals(before), "the loaded bars are as they were"
    return outcome.report


def test_a_plugin_rescaling_its_series_changes_no_trade():
    clean = _run("tradetrail.analyst.examples.sma_cross:SmaCross")
    rescaled = _run("tests.support.plugins.misbehaving:SeriesRescaling")
    assert rescaled["trades"] == clean["trades"] and rescaled["stats"] == clean["stats"]
    assert len(clean["trades"]) == 57


def test_the_per_session_requests_hand_out_copies_of_the_bars():
    series = Series(crossover_config(), "SPX", load_sample_daily("SPX").iloc[:300])
    close = series.close.copy()
    request = series.request(299)
    request.bars["daily"].loc[:, "close"] *= 0.01
    assert (series.close == close).all() and series.bars["close"].iloc[-1] == close[-1]
    assert series.request(299).bars["daily"]["close"].iloc[-1] == close[-1]
