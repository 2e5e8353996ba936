"""Indicator settings, the indicator frame, and its point-in-time guarantee."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pydantic
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from talib import abstract

from tradetrail.domain.indicators import IndicatorParams, compute_indicators, latest_values
from tradetrail.domain.supertrend import supertrend
from tradetrail.marketdata.sample import load_sample_daily

DEFAULT_COLUMNS = [
    "sma_20", "sma_50", "sma_200", "ema_20", "ema_50", "ema_200", "rsi", "macd", "macd_signal", "macd_hist",
    "atr", "bb_upper", "bb_middle", "bb_lower", "supertrend", "supertrend_dir", "supertrend_upper",
    "supertrend_lower", "obv", "stoch_k", "stoch_d", "adx",
]


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return load_sample_daily("SPX")


@pytest.fixture(scope="module")
def frame(spx: pd.DataFrame) -> pd.DataFrame:
    return compute_indicators(spx, IndicatorParams())


def _arr(bars: pd.DataFrame, col: str) -> np.ndarray:
    return bars[col].to_numpy(dtype=float)


@st.composite
def params_strategy(draw: st.DrawFn) -> IndicatorParams:
    small = st.integers(2, 40)
    others = draw(st.lists(small.filter(lambda n: n != 20), max_size=4, unique=True))
    fast = draw(st.integers(2, 20))
    return IndicatorParams(
        sma_periods=tuple(draw(st.permutations([20, *others]))),
        ema_periods=tuple(draw(st.lists(small, max_size=5, unique=True))),
        rsi_period=draw(small), macd_fast=fast, macd_slow=fast + draw(st.integers(1, 20)),
        macd_signal=draw(small), atr_period=draw(small), bb_period=draw(small),
        bb_std=draw(st.floats(0.5, 5.0)), supertrend_period=draw(small),
        supertrend_multiplier=draw(st.floats(0.5, 10.0)), stoch_k=draw(small),
        stoch_smooth_k=draw(st.integers(1, 10)), stoch_d=draw(st.integers(1, 10)), adx_period=draw(small),
    )


# ---- the frame -------------------------------------------------------------------------------------------

def test_default_frame_has_exactly_the_documented_columns(spx: pd.DataFrame, frame: pd.DataFrame) -> None:
    assert list(frame.columns) == DEFAULT_COLUMNS
    assert frame.index.equals(spx.index)
    assert (frame.dtypes == np.float64).all()


def test_columns_follow_the_configured_periods(spx: pd.DataFrame) -> None:
    out = compute_indicators(spx.iloc[:100], IndicatorParams(sma_periods=(30, 20), ema_periods=()))
    assert list(out.columns) == ["sma_30", "sma_20", *DEFAULT_COLUMNS[6:]]


def test_empty_bars_give_an_empty_frame_with_the_columns(spx: pd.DataFrame) -> None:
    out = compute_indicators(spx.iloc[:0], IndicatorParams())
    assert list(out.columns) == DEFAULT_COLUMNS and len(out) == 0


def test_missing_bar_columns_are_named(spx: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="volume"):
        compute_indicators(spx.drop(columns=["volume"]), IndicatorParams())


def test_plain_talib_indicators_agree_with_talib(spx: pd.DataFrame, frame: pd.DataFrame) -> None:
    h, low, c, v = (_arr(spx, k) for k in ("high", "low", "close", "volume"))
    expected = {f"sma_{n}": talib.SMA(c, n) for n in (20, 50, 200)}
    expected.update({f"ema_{n}": talib.EMA(c, n) for n in (20, 50, 200)})
    expected["rsi"] = talib.RSI(c, 14)
    expected["macd"], expected["macd_signal"], expected["macd_hist"] = talib.MACD(c, 12, 26, 9)
    expected["atr"] = talib.ATR(h, low, c, 14)
    expected["bb_upper"], expected["bb_middle"], expected["bb_lower"] = talib.BBANDS(c, 20, 2.0, 2.0)
    expected["obv"] = talib.OBV(c, v)
    expected["stoch_k"], expected["stoch_d"] = talib.STOCH(h, low, c, 14, 3, 0, 3, 0)
    expected["adx"] = talib.ADX(h, low, c, 14)
    for name, values in expected.items():
        np.testing.assert_array_equal(frame[name].to_numpy(), values, err_msg=name)


def test_independent_checks_of_sma_and_population_bollinger(spx: pd.DataFrame, frame: pd.DataFrame) -> None:
    close = spx["close"]
    np.testing.assert_allclose(frame["sma_50"], close.rolling(50).mean(), rtol=1e-10)
    half_width = 2.0 * close.rolling(20).std(ddof=0)
    np.testing.assert_allclose(frame["bb_upper"] - frame["bb_middle"], half_width, rtol=1e-6)
    np.testing.assert_allclose(frame["bb_middle"] - frame["bb_lower"], half_width, rtol=1e-6)


def test_supertrend_columns_come_from_our_supertrend(spx: pd.DataFrame, frame: pd.DataFrame) -> None:
    st_ = supertrend(_arr(spx, "high"), _arr(spx, "low"), _arr(spx, "close"), period=10, multiplier=3.0)
    np.testing.assert_array_equal(frame["supertrend"], st_.line)
    np.testing.assert_array_equal(frame["supertrend_dir"], st_.direction)
    np.testing.assert_array_equal(frame["supertrend_upper"], st_.final_upper)
    np.testing.assert_array_equal(frame["supertrend_lower"], st_.final_lower)
    assert set(np.unique(frame["supertrend_dir"].dropna())) == {-1.0, 1.0}


@settings(max_examples=60, deadline=None)
@given(params=params_strategy(), start=st.integers(0, 4500), cut=st.integers(1, 400))
def test_prefix_equals_truncated_full_series(params: IndicatorParams, start: int, cut: int) -> None:
    bars = load_sample_daily("SPX").iloc[start:start + 400]
    full = compute_indicators(bars, params)
    prefix = compute_indicators(bars.iloc[:cut], params)
    pd.testing.assert_frame_equal(prefix, full.iloc[:cut], check_exact=True)


# ---- warm-up ---------------------------------------------------------------------------------------------

def _talib_lookbacks(p: IndicatorParams) -> dict[str, int]:
    def lookback(name: str, **kw: float) -> int:
        fn = abstract.Function(name)
        fn.set_parameters(kw)
        return fn.lookback

    out = {f"sma_{n}": lookback("SMA", timeperiod=n) for n in p.sma_periods}
    out.update({f"ema_{n}": lookback("EMA", timeperiod=n) for n in p.ema_periods})
    macd = lookback("MACD", fastperiod=p.macd_fast, slowperiod=p.macd_slow, signalperiod=p.macd_signal)
    bb = lookback("BBANDS", timeperiod=p.bb_period, nbdevup=p.bb_std, nbdevdn=p.bb_std)
    stoch = lookback("STOCH", fastk_period=p.stoch_k, slowk_period=p.stoch_smooth_k, slowd_period=p.stoch_d)
    atr_st = lookback("ATR", timeperiod=p.supertrend_period)
    out.update(rsi=lookback("RSI", timeperiod=p.rsi_period), macd=macd, macd_signal=macd, macd_hist=macd,
               atr=lookback("ATR", timeperiod=p.atr_period), bb_upper=bb, bb_middle=bb, bb_lower=bb,
               supertrend=atr_st, supertrend_dir=atr_st, supertrend_upper=atr_st, supertrend_lower=atr_st,
               obv=lookback("OBV"), stoch_k=stoch, stoch_d=stoch,
               adx=lookback("ADX", timeperiod=p.adx_period))
    return out


def test_default_warmup_numbers() -> None:
    p = IndicatorParams()
    assert p.warmup_bars() == 200
    lb = p.lookbacks()
    assert (lb["macd"] + 1, lb["adx"] + 1, lb["stoch_d"] + 1, lb["rsi"] + 1, lb["supertrend"] + 1) == \
        (34, 28, 18, 15, 11)
    assert lb == _talib_lookbacks(p)


def test_first_defined_index_matches_lookbacks(frame: pd.DataFrame) -> None:
    first = {c: int(np.argmax(frame[c].notna().to_numpy())) for c in frame.columns}
    assert first == IndicatorParams().lookbacks()
    assert frame.iloc[199:].notna().all().all()


@settings(max_examples=60, deadline=None)
@given(params=params_strategy())
def test_warmup_is_exactly_enough(params: IndicatorParams) -> None:
    assert params.lookbacks() == _talib_lookbacks(params)
    bars = load_sample_daily("SPX").iloc[1000:1200]
    n = params.warmup_bars()
    assert compute_indicators(bars.iloc[:n], params).iloc[-1].notna().all()
    assert compute_indicators(bars.iloc[:n - 1], params).iloc[-1].isna().any()


# ---- settings validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"sma_periods": (50, 200)}, "sma_periods", "(50, 200)"),
        ({"sma_periods": (20, 20)}, "sma_periods", "(20, 20)"),
        ({"sma_periods": (20, 1)}, "sma_periods", "(20, 1)"),
        ({"sma_periods": (20, 501)}, "sma_periods", "(20, 501)"),
        ({"sma_periods": (20, 30, 40, 50, 60, 70)}, "sma_periods", "70"),
        ({"ema_periods": (20, 20.5)}, "ema_periods", "20.5"),
        ({"ema_periods": "20"}, "ema_periods", "'20'"),
        ({"rsi_period": 1}, "rsi_period", "1"),
        ({"rsi_period": 501}, "rsi_period", "501"),
        ({"rsi_period": 14.0}, "rsi_period", "14.0"),
        ({"rsi_period": True}, "rsi_period", "True"),
        ({"macd_fast": 0}, "macd_fast", "0"),
        ({"macd_slow": 1000}, "macd_slow", "1000"),
        ({"macd_fast": 26, "macd_slow": 26}, "macd_fast", "26"),
        ({"macd_fast": 30, "macd_slow": 26}, "macd_slow", "26"),
        ({"macd_signal": 1}, "macd_signal", "1"),
        ({"atr_period": -3}, "atr_period", "-3"),
        ({"bb_period": 1}, "bb_period", "1"),
        ({"bb_std": 0.4}, "bb_std", "0.4"),
        ({"bb_std": 5.5}, "bb_std", "5.5"),
        ({"bb_std": float("nan")}, "bb_std", "nan"),
        ({"supertrend_period": 1}, "supertrend_period", "1"),
        ({"supertrend_multiplier": 0.1}, "supertrend_multiplier", "0.1"),
        ({"supertrend_multiplier": 11}, "supertrend_multiplier", "11"),
        ({"stoch_k": 1}, "stoch_k", "1"),
        ({"stoch_smooth_k": 0}, "stoch_smooth_k", "0"),
        ({"stoch_d": 501}, "stoch_d", "501"),
        ({"adx_period": 600}, "adx_period", "600"),
    ],
)
def test_bad_setting_names_field_and_value(kwargs: dict, field: str, value: str) -> None:
    with pytest.raises(ValueError) as err:
        IndicatorParams(**kwargs)
    message = str(err.value)
    assert field in message and value in message


def test_lists_are_normalised_to_tuples_and_round_trip() -> None:
    p = IndicatorParams(sma_periods=[20, np.int64(100)], ema_periods=[], bb_std=2)
    assert p.sma_periods == (20, 100) and p.ema_periods == () and isinstance(p.bb_std, float)
    data = p.to_dict()
    assert json.loads(json.dumps(data)) == data and data["sma_periods"] == [20, 100]
    assert IndicatorParams(**data) == p
    assert hash(p) == hash(IndicatorParams(**data))


class _Workflow(pydantic.BaseModel):
    indicators: IndicatorParams = IndicatorParams()


def test_works_inside_a_pydantic_model() -> None:
    wf = _Workflow.model_validate_json('{"indicators": {"sma_periods": [20, 100], "ema_periods": [9]}}')
    assert wf.indicators == IndicatorParams(sma_periods=(20, 100), ema_periods=(9,))
    assert isinstance(wf.indicators.sma_periods, tuple)
    assert _Workflow().indicators == IndicatorParams()
    assert _Workflow.model_validate_json(wf.model_dump_json()) == wf
    with pytest.raises(pydantic.ValidationError, match="bb_std"):
        _Workflow.model_validate_json('{"indicators": {"bb_std": 9}}')
    with pytest.raises(pydantic.ValidationError, match="sma_periods"):
        _Workflow.model_validate({"indicators": {"sma_periods": [50]}})


# ---- latest values ---------------------------------------------------------------------------------------

def test_latest_values_are_json_friendly(spx: pd.DataFrame, frame: pd.DataFrame) -> None:
    latest = latest_values(frame, spx)
    assert list(latest) == ["close", *DEFAULT_COLUMNS]
    assert json.loads(json.dumps(latest, allow_nan=False)) == latest
    assert latest["close"] == 2506.8501  # the last SPX close in the sample
    assert latest["supertrend_dir"] in (-1.0, 1.0)
    for name in DEFAULT_COLUMNS:
        raw = float(frame[name].iloc[-1])
        assert type(latest[name]) is float
        assert math.isclose(latest[name], raw, rel_tol=1e-7)


def test_latest_values_turn_warmup_nan_into_none(spx: pd.DataFrame) -> None:
    short = spx.iloc[:25]
    latest = latest_values(compute_indicators(short, IndicatorParams()))
    assert "close" not in latest
    assert latest["sma_200"] is None and latest["adx"] is None and latest["macd"] is None
    assert latest["sma_20"] is not None and latest["obv"] is not None


def test_latest_values_reject_mismatched_bars(spx: pd.DataFrame, frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="same time"):
        latest_values(frame, spx.iloc[:-1])
    with pytest.raises(ValueError, match="empty"):
        latest_values(frame.iloc[:0])
