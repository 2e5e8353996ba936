"""What makes the backtest's one pass equal to a run per session: indicators computed once over the whole
series equal those computed on the bars up to each session (causality), and the rules analyst's
whole-series actions equal its per-session answers, session by session."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradetrail.analyst.port import AnalysisFailed
from tradetrail.analyst.rules import RulesAnalyst
from tradetrail.backtest.series import Series
from tradetrail.domain.indicators import IndicatorParams, compute_indicators
from tradetrail.marketdata.sample import load_sample_daily
from tradetrail.services.accounts.bootstrap import demo_config

pytestmark = pytest.mark.once


@settings(max_examples=25, deadline=None)
@given(start=st.integers(0, 4000), length=st.integers(260, 700), cut=st.integers(1, 259))
def test_each_indicator_value_at_t_equals_the_value_computed_on_the_bars_up_to_t(start, length, cut):
    bars = load_sample_daily("SPX").iloc[start:start + length]
    whole = compute_indicators(bars, IndicatorParams())
    t = len(bars) - cut
    prefix = compute_indicators(bars.iloc[:t + 1], IndicatorParams())
    np.testing.assert_array_equal(whole.iloc[:t + 1].to_numpy(), prefix.to_numpy())


@pytest.mark.parametrize("symbol", ["SPX", "COMP"])
def test_the_rules_analysts_whole_series_actions_equal_its_answers_session_by_session(symbol):
    config = demo_config()
    series = Series(config, symbol, load_sample_daily(symbol).iloc[:1800])
    analyst = RulesAnalyst(config.analyst.atr_stop_multiple, config.analyst.reward_risk)
    answers = analyst.analyze_series(series.analysis_series())
    assert len(answers.actions) == len(series)
    decided = 0
    for t in range(len(series)):
        try:
            one = analyst.analyze(series.request(t))
        except AnalysisFailed:
            assert answers.actions[t] == "", t
            continue
        decided += 1
        assert answers.actions[t] == one.answer.action, t
        if t % 97 == 0:
            assert answers.result(t).answer == one.answer
    assert decided > 1500 and {"BUY", "SELL", "HOLD"} <= set(answers.actions.tolist())
