"""The indicator columns read one by one (IndicatorColumns, what a backtest reads) are the columns of
compute_indicators, in its order, each computed only when one of its columns is read."""

from __future__ import annotations

import numpy as np
import pytest

from tradetrail.domain.indicators import IndicatorColumns, IndicatorParams, compute_indicators, indicator_columns
from tradetrail.marketdata.sample import load_sample_daily

PARAMS = [IndicatorParams(), IndicatorParams(sma_periods=[20, 50, 200], ema_periods=[9, 20], rsi_period=7,
                                             supertrend_multiplier=2.0, stoch_k=5, adx_period=10)]


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("rows", [0, 30, 1500])
def test_each_column_read_alone_is_the_computed_column(params: IndicatorParams, rows: int) -> None:
    bars = load_sample_daily("COMP").iloc[:rows]
    frame = compute_indicators(bars, params)
    assert list(IndicatorColumns(bars, params)) == list(frame.columns) == list(dict.fromkeys(
        indicator_columns(params)))
    for name in frame.columns:  # each from a fresh mapping: the column alone
        alone = IndicatorColumns(bars, params)[name]
        assert alone.dtype == np.float64
        np.testing.assert_array_equal(alone, frame[name].to_numpy())


def test_only_the_indicator_read_is_computed() -> None:
    columns = IndicatorColumns(load_sample_daily("SPX"), IndicatorParams())
    columns["macd_hist"]
    assert sorted(columns._values) == ["macd", "macd_hist", "macd_signal"]
    columns["atr"]
    assert "supertrend" not in columns._values and "atr" in columns._values
    assert len(columns) == len(indicator_columns(IndicatorParams()))
    with pytest.raises(KeyError):
        columns["sma_999"]


def test_missing_inputs_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        IndicatorColumns(load_sample_daily("SPX").drop(columns=["volume"]), IndicatorParams())
