"""SuperTrend against a hand-worked example, plus its structural invariants on real data."""

from __future__ import annotations

import numpy as np
import pytest

from tradetrail.domain.supertrend import supertrend
from tradetrail.marketdata.sample import load_sample_daily

NAN = float("nan")

# period=2, multiplier=1.5. TR_i = max(h-l, |h-c[i-1]|, |l-c[i-1]|); ATR2 = (TR1+TR2)/2, then
# ATR_i = (ATR_{i-1} + TR_i)/2 (Wilder with period 2). Bands: hl2 ± 1.5*ATR.
# FU/FL = final upper/lower; "carry" = keep the previous final band; dir checked against the PREVIOUS bands.
#
# i  h      l     c      TR    ATR    hl2     basicU   basicL   FU        FL       dir  line
# 0  11     9     10     -     -      -       -        -        -         -        -    -
# 1  11     9     9.5    2     -      -       -        -        -         -        -    -
# 2  10.5   8.5   9      2     2      9.5     12.5     6.5      12.5      6.5      -1   12.5
#      start: c 9 < hl2 9.5 -> down
# 3  10     8     8.5    2     2      9       12       6        12        6.5      -1   12
#      FU: 12<12.5 take; FL: 6<6.5 and pc 9 not <6.5 -> carry 6.5
# 4  11     9     10.5   2.5   2.25   10      13.375   6.625    12        6.625    -1   12
#      TR=|11-8.5|; FU: 13.375>12, pc 8.5 not >12 -> carry 12; FL: 6.625>6.5 take; c 10.5 not >12
# 5  12.25  10.5  12.25  1.75  2      11.375  14.375   8.375    12        8.375    +1   8.375
#      FU carry 12 (pc 10.5 <= 12); FL 8.375 take; c 12.25 > prev FU 12 -> FLIP UP
# 6  13     11    12.5   2     2      12      15       9        15        9        +1   9
#      FU: 15>12 but pc 12.25 > 12 -> reset to 15; FL: 9 take
# 7  12.5   10.5  11     2     2      11.5    14.5     8.5      14.5      9        +1   9
#      FU 14.5<15 take; FL: 8.5<9, pc 12.5 not <9 -> carry 9; c 11 between 9 and 15
# 8  11.5   9.5   10     2     2      10.5    13.5     7.5      13.5      9        +1   9
#      FU take; FL carry 9; c 10 not < 9
# 9  10     8     8.5    2     2      9       12       6        12        9        -1   12
#      FU take; FL: 6<9, pc 10 not <9 -> carry 9; c 8.5 < prev FL 9 -> FLIP DOWN
# 10 9.5    7.5   8      2     2      8.5     11.5     5.5      11.5      5.5      -1   11.5
#      FU take; FL: 5.5<9 but pc 8.5 < 9 -> reset to 5.5
# 11 10     8     9.5    2     2      9       12       6        11.5      6        -1   11.5
#      FU: 12>11.5, pc 8 not >11.5 -> carry 11.5; FL 6 take
# 12 12     10    11.75  2.5   2.25   11      14.375   7.625    11.5      7.625    +1   7.625
#      TR=|12-9.5|; FU carry 11.5 (pc 9.5); FL take; c 11.75 > prev FU 11.5 -> FLIP UP
# 13 12.5   11    12     1.5   1.875  11.75   14.5625  8.9375   14.5625   8.9375   +1   8.9375
#      ATR=(2.25+1.5)/2; 1.5*1.875=2.8125; FU: pc 11.75 > 11.5 -> reset to 14.5625; FL take
HIGH = [11, 11, 10.5, 10, 11, 12.25, 13, 12.5, 11.5, 10, 9.5, 10, 12, 12.5]
LOW = [9, 9, 8.5, 8, 9, 10.5, 11, 10.5, 9.5, 8, 7.5, 8, 10, 11]
CLOSE = [10, 9.5, 9, 8.5, 10.5, 12.25, 12.5, 11, 10, 8.5, 8, 9.5, 11.75, 12]
EXPECTED_UPPER = [NAN, NAN, 12.5, 12, 12, 12, 15, 14.5, 13.5, 12, 11.5, 11.5, 11.5, 14.5625]
EXPECTED_LOWER = [NAN, NAN, 6.5, 6.5, 6.625, 8.375, 9, 9, 9, 9, 5.5, 6, 7.625, 8.9375]
EXPECTED_DIR = [NAN, NAN, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, 1, 1]
EXPECTED_LINE = [NAN, NAN, 12.5, 12, 12, 8.375, 9, 9, 9, 12, 11.5, 11.5, 7.625, 8.9375]


def _arrays(*lists: list[float]) -> list[np.ndarray]:
    return [np.array(x, dtype=float) for x in lists]


def test_hand_worked_example() -> None:
    st = supertrend(*_arrays(HIGH, LOW, CLOSE), period=2, multiplier=1.5)
    np.testing.assert_allclose(st.final_upper, EXPECTED_UPPER, rtol=0, atol=1e-12)
    np.testing.assert_allclose(st.final_lower, EXPECTED_LOWER, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(st.direction, EXPECTED_DIR)
    np.testing.assert_allclose(st.line, EXPECTED_LINE, rtol=0, atol=1e-12)


# period=2, multiplier=0.5: a wide bar (3) can close beyond its OWN final band without flipping.
# i  h     l    c     TR  ATR  hl2  basicU  basicL  FU     FL    dir  line
# 0  11    9    10    -   -    -    -       -       -      -     -    -
# 1  11    9    10    2   -    -    -       -       -      -     -    -
# 2  10.5  8.5  9     2   2    9.5  10.5    8.5     10.5   8.5   -1   10.5   (c 9 < hl2: start down)
# 3  10    4    9.8   6   4    7    9       5       9      8.5   -1   9      (9.8 > FU 9 but not > 10.5)
# 4  10.5  9.5  10.2  1   2.5  10   11.25   8.75    11.25  8.75  +1   8.75   (10.2 > prev FU 9: flip;
#                                                                               FU reset as pc 9.8 > 9)
# The second case is the mirror image p -> 20 - p (high and low swap, bands swap, directions negate).
PREVIOUS_BAND_CASES = [
    ([11, 11, 10.5, 10, 10.5], [9, 9, 8.5, 4, 9.5], [10, 10, 9, 9.8, 10.2],
     [NAN, NAN, 10.5, 9, 11.25], [NAN, NAN, 8.5, 8.5, 8.75], [NAN, NAN, -1, -1, 1],
     [NAN, NAN, 10.5, 9, 8.75]),
    ([11, 11, 11.5, 16, 10.5], [9, 9, 9.5, 10, 9.5], [10, 10, 11, 10.2, 9.8],
     [NAN, NAN, 11.5, 11.5, 11.25], [NAN, NAN, 9.5, 11, 8.75], [NAN, NAN, 1, 1, -1],
     [NAN, NAN, 9.5, 11, 11.25]),
]


@pytest.mark.parametrize(("high", "low", "close", "upper", "lower", "direction", "line"), PREVIOUS_BAND_CASES)
def test_direction_compares_close_with_the_previous_final_bands(
        high: list, low: list, close: list, upper: list, lower: list, direction: list, line: list) -> None:
    st = supertrend(*_arrays(high, low, close), period=2, multiplier=0.5)
    np.testing.assert_array_equal(st.final_upper, upper)
    np.testing.assert_array_equal(st.final_lower, lower)
    np.testing.assert_array_equal(st.direction, direction)
    np.testing.assert_array_equal(st.line, line)


def test_initial_direction_is_up_when_close_at_or_above_midpoint() -> None:
    close = list(CLOSE)
    close[2] = 10.0  # hl2 of bar 2 is 9.5
    st = supertrend(*_arrays(HIGH, LOW, close), period=2, multiplier=1.5)
    assert st.direction[2] == 1.0
    assert st.line[2] == st.final_lower[2]


def test_too_few_bars_is_all_nan() -> None:
    st = supertrend(*_arrays(HIGH[:2], LOW[:2], CLOSE[:2]), period=2, multiplier=1.5)
    assert all(np.isnan(a).all() and len(a) == 2 for a in st)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"period": 0}, "period"), ({"period": 2.5}, "period"), ({"multiplier": 0.0}, "multiplier"),
     ({"multiplier": float("nan")}, "multiplier")],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        supertrend(*_arrays(HIGH, LOW, CLOSE), **kwargs)


def test_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="length"):
        supertrend(*_arrays(HIGH, LOW, CLOSE[:-1]))


def test_invariants_on_real_data() -> None:
    bars = load_sample_daily("SPX")
    h, low, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
    st = supertrend(h, low, c, period=10, multiplier=3.0)
    ok = ~np.isnan(st.direction)
    assert ok[10:].all() and not ok[:10].any()
    up, down = st.direction == 1.0, st.direction == -1.0
    assert (up | down)[ok].all() and up.any() and down.any()
    np.testing.assert_array_equal(st.line[up], st.final_lower[up])
    np.testing.assert_array_equal(st.line[down], st.final_upper[down])
    assert (st.final_lower[ok] < st.final_upper[ok]).all()
    # Outside a reset, the final upper band never rises and the final lower band never falls.
    prev_c = c[10:-1]
    no_reset_u = prev_c <= st.final_upper[10:-1]
    assert (np.diff(st.final_upper[10:])[no_reset_u] <= 0).all()
    no_reset_l = prev_c >= st.final_lower[10:-1]
    assert (np.diff(st.final_lower[10:])[no_reset_l] >= 0).all()


def test_ten_thousand_bars_give_a_line_on_every_bar_after_the_warm_up() -> None:
    """10,000 bars (the sample repeated) end to end; how fast is benchmarks/bench_supertrend.py's figure."""
    bars = load_sample_daily("SPX")
    h, low, c = (np.tile(bars[k].to_numpy(), 2)[:10_000] for k in ("high", "low", "close"))
    st = supertrend(h, low, c)
    assert len(st.line) == 10_000
    assert np.isnan(st.line[:10]).all() and np.isfinite(st.line[10:]).all()
    assert set(np.unique(st.direction[10:])) <= {-1.0, 1.0}
