"""The bundled SMA-crossover plug-in: its crossings on a hand-made series, and its whole-series answers equal to
its per-session answers (every session of the bundled S&P 500 series, and generated series)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradetrail.analyst.examples.sma_cross import SmaCross
from tradetrail.analyst.port import AnalysisFailed, AnalysisRequest, AnalysisSeries
from tradetrail.marketdata.sample import load_sample_daily


def _bars(closes) -> pd.DataFrame:
    index = pd.bdate_range("2020-01-01", periods=len(closes))
    close = np.asarray(closes, dtype=float)
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=index)


def _request(bars: pd.DataFrame, t: int) -> AnalysisRequest:
    """Session t as a live run sees it: the bars up to t, never one after."""
    return AnalysisRequest(symbol="X", as_of=bars.index[t].isoformat(), system_prompt="", timeframe_prompts={},
                           images=[], indicators={}, confirmation={}, prompt_hash="", bars={"daily": bars.iloc[:t + 1]})


def _series(bars: pd.DataFrame) -> AnalysisSeries:
    return AnalysisSeries(symbol="X", bars=bars, indicators=pd.DataFrame(index=bars.index),
                          request=lambda t: _request(bars, t))


def _same_as_per_session(analyst: SmaCross, bars: pd.DataFrame) -> int:
    answers = analyst.analyze_series(_series(bars))
    assert len(answers.actions) == len(bars)
    acted = 0
    for t in range(len(bars)):
        if t + 1 < analyst.bars_needed():
            assert answers.actions[t] == ""
            with pytest.raises(AnalysisFailed):
                analyst.analyze(_request(bars, t))
            continue
        single = analyst.analyze(_request(bars, t))
        assert answers.actions[t] == single.answer.action, t
        if single.answer.action != "HOLD":
            acted += 1
            assert answers.result(t) == single, t
    return acted


def test_a_crossing_up_buys_and_a_crossing_down_sells_at_the_close():
    analyst = SmaCross(fast=2, slow=3)
    bars = _bars([10, 10, 10, 12, 13, 13, 9, 8, 8])
    actions = analyst.analyze_series(_series(bars)).actions.tolist()
    # SMA2 vs SMA3 from t=2: 10/10, 11/10.67 (up), 12.5/11.67, 13/12.67, 11/11.67 (down), 8.5/10, 8/8.33
    assert actions == ["", "", "", "BUY", "HOLD", "HOLD", "SELL", "HOLD", "HOLD"]
    buy = analyst.analyze(_request(bars, 3)).answer
    assert (buy.action, buy.entry, buy.stop_loss, buy.take_profit, buy.confidence) == ("BUY", 12.0, None, None, 100)
    assert buy.trend == "bullish" and "SMA2 11 vs SMA3 10.6667" in buy.reasoning
    sell = analyst.analyze(_request(bars, 6)).answer
    assert (sell.action, sell.entry, sell.trend) == ("SELL", 9.0, "bearish")
    hold = analyst.analyze(_request(bars, 5)).answer
    assert (hold.action, hold.entry) == ("HOLD", None)


def test_touching_without_crossing_is_not_a_signal():
    analyst = SmaCross(fast=2, slow=3)
    actions = analyst.analyze_series(_series(_bars([10, 10, 10, 10, 10, 10]))).actions.tolist()
    assert actions == ["", "", "", "HOLD", "HOLD", "HOLD"]


def test_too_few_bars_fail_instead_of_guessing():
    with pytest.raises(AnalysisFailed, match="needs 31 daily bars, got 30"):
        SmaCross(fast=10, slow=30).analyze(_request(_bars(np.arange(1, 31)), 29))
    assert SmaCross(fast=5, slow=20).bars_needed() == 21


@pytest.mark.parametrize("params", [{"fast": 30, "slow": 10}, {"fast": 10, "slow": 10}, {"fast": 1, "slow": 5},
                                    {"fast": 2.0, "slow": 5}, {"fast": True, "slow": 5}, {"fast": 5, "slow": 5000}])
def test_bad_params_are_refused_with_the_reason(params):
    with pytest.raises(ValueError, match="fast|slow"):
        SmaCross(**params)


def test_the_series_answers_equal_the_per_session_answers_on_the_sp500():
    bars = load_sample_daily("SPX")
    assert _same_as_per_session(SmaCross(fast=10, slow=30), bars) > 50


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.5, 2_000, allow_nan=False), min_size=1, max_size=60),
       st.integers(2, 6), st.integers(1, 8))
def test_the_series_answers_equal_the_per_session_answers_on_any_series(closes, fast, gap):
    _same_as_per_session(SmaCross(fast=fast, slow=fast + gap), _bars(closes))
