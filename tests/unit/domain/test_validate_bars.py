"""validate_bars: the frame it returns is the general selection and float conversion whatever path builds it
(a frame of exactly the bar columns is converted from one array), and bad bars are refused with the reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradetrail.domain.bars import COLUMNS, BarsError, strictly_ascending, validate_bars


def _frame(n: int = 6, **columns) -> pd.DataFrame:
    index = pd.date_range("2020-01-06 21:00", periods=n, freq="D", tz="UTC")
    close = np.linspace(100.0, 110.0, n)
    data = {"open": close - 0.5, "high": close + 1.0, "low": close - 1.0, "close": close,
            "volume": np.arange(1_000, 1_000 + n, dtype=np.int64)}
    return pd.DataFrame({**data, **columns}, index=index)


def _general(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(COLUMNS)].astype("float64")
    out.index.name = "time"
    return out


LAYOUTS = {
    "floats and an integer volume": lambda f: f,
    "float32 and int32": lambda f: f.astype({c: np.float32 for c in COLUMNS[:4]} | {"volume": np.int32}),
    "unsigned volume": lambda f: f.astype({"volume": np.uint64}),
    "reordered": lambda f: f[["close", "volume", "open", "low", "high"]],
    "extra columns": lambda f: f.assign(adj=f["close"], note="x"),
    "a nullable column": lambda f: f.astype({"open": "Float64"}),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_gives_the_general_conversion_exactly(layout):
    frame = LAYOUTS[layout](_frame())
    frame.index.name = "stamp"
    out = validate_bars(frame)
    pd.testing.assert_frame_equal(out, _general(frame), check_exact=True, check_flags=True, check_freq=True)
    assert list(out.columns) == list(COLUMNS) and out.columns.dtype == _general(frame).columns.dtype
    assert all(out[c].dtype == np.float64 for c in COLUMNS) and out.index.name == "time"
    assert frame.index.name == "stamp"  # the caller's index is not renamed
    out.iloc[0, 0] = -1.0
    assert frame.iloc[0, 0] != -1.0  # nor its values shared


def test_duplicate_and_unordered_bars_are_refused_with_the_reason():
    frame = _frame()
    dup = frame.iloc[[0, 1, 1, 2]]
    with pytest.raises(BarsError, match="duplicate bar at 2020-01-07T21:00:00"):
        validate_bars(dup)
    with pytest.raises(BarsError, match="not in time order"):
        validate_bars(frame.iloc[[1, 0, 2]])


@pytest.mark.parametrize(("change", "reason"), [
    (lambda f: f.assign(close=np.where(np.arange(len(f)) == 2, np.nan, f["close"])), "non-finite value in the bar"),
    (lambda f: f.assign(low=f["high"] + 5), "inconsistent bar"),
    (lambda f: f.assign(close=["x"] * len(f)), "non-numeric value"),
    (lambda f: f.drop(columns="volume"), "missing columns"),
    (lambda f: f.tz_localize(None), "tz-aware DatetimeIndex"),
])
def test_bad_bars_are_refused_with_the_reason(change, reason):
    with pytest.raises(BarsError, match=reason):
        validate_bars(change(_frame()))


def test_strictly_ascending_is_false_wherever_it_cannot_tell():
    index = _frame().index
    assert strictly_ascending(index)
    assert not strictly_ascending(index[[0, 0, 1]]) and not strictly_ascending(index[[1, 0]])
    assert not strictly_ascending(index[:0])
    assert not strictly_ascending(pd.DatetimeIndex([pd.NaT, "2020-01-01"], tz="UTC"))
