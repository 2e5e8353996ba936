"""SuperTrend: our own implementation of the standard recursive definition (ATR from ta-lib).

With ``atr`` = Wilder's ATR(period) and ``hl2 = (high + low) / 2``:

* basic bands: ``hl2 ± multiplier * atr``;
* final upper = basic upper if basic upper < previous final upper or previous close > previous final upper,
  else previous final upper (the band only moves down until price closes above it); final lower mirrors it;
* direction turns up (+1) when close > previous final upper, down (-1) when close < previous final lower
  (checked in that order), otherwise it carries forward;
* the line is the final lower band in an uptrend and the final upper band in a downtrend.

Initial convention: on the first bar with a defined ATR (index ``period``) the final bands equal the basic
bands and the direction is up when close >= hl2 (price in the upper half of the bands), else down. Earlier
bars are NaN. Inputs are expected finite (validated bars).

Speed: the recursion loops over Python lists; 10,000 bars take about 2 ms including ta-lib's ATR (best of
20 on the development box). The same loop indexing numpy arrays element by element took about 7 ms.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import talib


class SuperTrend(NamedTuple):
    """Arrays aligned with the input; NaN before the first defined ATR."""

    line: np.ndarray
    direction: np.ndarray  # +1.0 uptrend, -1.0 downtrend
    final_upper: np.ndarray
    final_lower: np.ndarray


def _as_array(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"supertrend: {name} must be one-dimensional, got shape {arr.shape}")
    return arr


def supertrend(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 10,
               multiplier: float = 3.0) -> SuperTrend:
    """SuperTrend line, direction and final bands for one series of bars (see the module docstring)."""
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 1:
        raise ValueError(f"supertrend: period must be an integer >= 1, got {period!r}")
    if not np.isfinite(multiplier) or multiplier <= 0:
        raise ValueError(f"supertrend: multiplier must be a positive number, got {multiplier!r}")
    h, lo, c = _as_array(high, "high"), _as_array(low, "low"), _as_array(close, "close")
    n = len(c)
    if not len(h) == len(lo) == n:
        raise ValueError(f"supertrend: high, low and close differ in length ({len(h)}, {len(lo)}, {n})")
    nan = [float("nan")] * n
    line, direction, upper, lower = list(nan), list(nan), list(nan), list(nan)
    if n > period:
        atr = talib.ATR(h, lo, c, timeperiod=int(period))
        hl2 = (h + lo) / 2.0
        basic_upper = (hl2 + multiplier * atr).tolist()
        basic_lower = (hl2 - multiplier * atr).tolist()
        closes = c.tolist()
        start = int(period)
        fu, fl = basic_upper[start], basic_lower[start]
        d = 1.0 if closes[start] >= hl2[start] else -1.0
        upper[start], lower[start], direction[start] = fu, fl, d
        line[start] = fl if d > 0 else fu
        prev_close = closes[start]
        for i in range(start + 1, n):
            bu, bl, cl = basic_upper[i], basic_lower[i], closes[i]
            new_fu = bu if (bu < fu or prev_close > fu) else fu
            new_fl = bl if (bl > fl or prev_close < fl) else fl
            if cl > fu:
                d = 1.0
            elif cl < fl:
                d = -1.0
            fu, fl, prev_close = new_fu, new_fl, cl
            upper[i], lower[i], direction[i] = fu, fl, d
            line[i] = fl if d > 0 else fu
    return SuperTrend(np.array(line), np.array(direction), np.array(upper), np.array(lower))
