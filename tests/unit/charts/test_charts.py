"""Chart PNGs: valid images of the agreed size, byte-for-byte reproducible, leak-free, and tolerant of
missing indicators. (Speed is measured in benchmarks/bench_charts.py, not asserted here.)"""

from __future__ import annotations

import gc
import io
import struct
from collections.abc import Callable

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from tradetrail.charts.render import DOWN, HEIGHT_PX, ST_DOWN, ST_UP, UP, WIDTH_PX, render_chart
from tradetrail.domain.bars import resample_weekly
from tradetrail.domain.indicators import IndicatorParams, compute_indicators
from tradetrail.marketdata.sample import load_sample_daily

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Damage = Callable[[pd.DataFrame], pd.DataFrame]
UNUSED = ["atr", "obv", "stoch_k", "stoch_d", "adx", "supertrend_upper", "supertrend_lower"]


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return load_sample_daily("SPX")


@pytest.fixture(scope="module")
def indicators(daily: pd.DataFrame) -> pd.DataFrame:
    return compute_indicators(daily, IndicatorParams())


@pytest.fixture(scope="module")
def reference(daily: pd.DataFrame, indicators: pd.DataFrame) -> bytes:
    return render_chart(daily, indicators, title="SPX · daily")


def decode(png: bytes) -> np.ndarray:
    """Pixels (height, width, RGB), after checking the bytes really are one complete PNG."""
    assert png[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (WIDTH_PX, HEIGHT_PX)
        return np.asarray(image.convert("RGB"))


def chunk_types(png: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        types.append(png[pos + 4:pos + 8])
        pos += 12 + length
    return types


def pixels_of(pixels: np.ndarray, color: str) -> int:
    rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    return int((pixels == rgb).all(axis=2).sum())


def live_figures() -> int:
    return sum(isinstance(o, Figure) for o in gc.get_objects())


def test_png_is_1200x900_and_shows_candles(reference: bytes) -> None:
    pixels = decode(reference)
    assert pixels.shape == (900, 1200, 3)
    # Up and down candle bodies are drawn in their exact colours (nothing shaded on top of them).
    assert pixels_of(pixels, UP) > 300
    assert pixels_of(pixels, DOWN) > 300


def test_png_carries_no_metadata_that_could_vary(reference: bytes) -> None:
    assert chunk_types(reference)[0] == b"IHDR" and chunk_types(reference)[-1] == b"IEND"
    assert not {b"tEXt", b"zTXt", b"iTXt", b"tIME"} & set(chunk_types(reference))


def test_equal_input_gives_identical_bytes(daily: pd.DataFrame, indicators: pd.DataFrame,
                                           reference: bytes) -> None:
    # Fresh copies, so equality cannot come from object identity or a cache keyed on it.
    again = render_chart(daily.copy(), indicators.copy(), title="SPX · daily")
    assert again == reference


def test_global_style_changes_do_not_change_the_bytes(daily: pd.DataFrame, indicators: pd.DataFrame,
                                                      reference: bytes) -> None:
    other_style = {"font.size": 17.0, "font.family": "serif", "axes.facecolor": "black", "axes.grid": False,
                   "xtick.major.size": 9.0, "ytick.direction": "in", "patch.linewidth": 3.0}
    with matplotlib.rc_context(other_style):
        assert render_chart(daily, indicators, title="SPX · daily") == reference


def test_rendering_leaves_global_state_as_it_found_it(daily: pd.DataFrame, indicators: pd.DataFrame) -> None:
    before = dict(matplotlib.rcParams)
    render_chart(daily, indicators, title="SPX · daily")
    assert dict(matplotlib.rcParams) == before
    assert gc.isenabled()


def test_different_input_gives_different_bytes(daily: pd.DataFrame, indicators: pd.DataFrame,
                                               reference: bytes) -> None:
    assert render_chart(daily, indicators, title="SPX · weekly") != reference
    assert render_chart(daily.iloc[:-1], indicators.iloc[:-1], title="SPX · daily") != reference
    assert render_chart(daily, indicators.drop(columns=["sma_50"]), title="SPX · daily") != reference


def test_only_the_last_max_bars_are_drawn(daily: pd.DataFrame, indicators: pd.DataFrame,
                                          reference: bytes) -> None:
    # Indicators come from the full history; the window alone draws the same picture.
    assert render_chart(daily.iloc[-150:], indicators.iloc[-150:], title="SPX · daily") == reference
    assert render_chart(daily, indicators, title="SPX · daily", max_bars=100) != reference


def test_unused_indicator_columns_are_ignored(daily: pd.DataFrame, indicators: pd.DataFrame,
                                              reference: bytes) -> None:
    assert render_chart(daily, indicators.drop(columns=UNUSED), title="SPX · daily") == reference


def test_supertrend_colour_follows_direction(daily: pd.DataFrame, indicators: pd.DataFrame) -> None:
    defined = indicators["supertrend_dir"].notna()
    all_up = indicators.assign(supertrend_dir=np.where(defined, 1.0, np.nan))
    all_down = indicators.assign(supertrend_dir=np.where(defined, -1.0, np.nan))
    up = decode(render_chart(daily, all_up, title="SPX · daily"))
    down = decode(render_chart(daily, all_down, title="SPX · daily"))
    assert pixels_of(up, ST_UP) > 500 and pixels_of(up, ST_DOWN) == 0
    assert pixels_of(down, ST_DOWN) > 500 and pixels_of(down, ST_UP) == 0
    without = decode(render_chart(daily, indicators.drop(columns=["supertrend"]), title="SPX · daily"))
    assert pixels_of(without, ST_UP) == 0 and pixels_of(without, ST_DOWN) == 0


@pytest.mark.parametrize(
    ("damage", "changes_picture"),
    [
        pytest.param(lambda ind: ind[[]], True, id="no-columns"),
        pytest.param(lambda ind: ind * np.nan, True, id="all-nan"),
        pytest.param(lambda ind: ind.drop(columns=["macd", "macd_signal", "macd_hist", "rsi"]), True,
                     id="no-macd-no-rsi"),
        pytest.param(lambda ind: ind.drop(columns=["bb_lower", "supertrend_dir"]), True, id="half-bands"),
        pytest.param(lambda ind: ind.assign(sma_200=np.nan, macd_hist=np.nan), True, id="nan-columns"),
        pytest.param(lambda ind: ind.assign(rsi=ind["rsi"].astype(object)), False, id="object-dtype"),
    ],
)
def test_missing_or_empty_indicator_columns_are_skipped(daily: pd.DataFrame, indicators: pd.DataFrame,
                                                        reference: bytes, damage: Damage,
                                                        changes_picture: bool) -> None:
    png = render_chart(daily, damage(indicators), title="SPX · daily")
    decode(png)
    assert (png != reference) == changes_picture


def test_short_history_with_undefined_sma200(daily: pd.DataFrame) -> None:
    bars = daily.iloc[:60]
    ind = compute_indicators(bars, IndicatorParams())
    assert ind["sma_200"].isna().all()
    decode(render_chart(bars, ind, title="SPX · daily"))
    decode(render_chart(bars.iloc[:1], ind.iloc[:1], title="SPX · daily"))


def test_weekly_bars_render(daily: pd.DataFrame, reference: bytes) -> None:
    weekly = resample_weekly(daily)
    png = render_chart(weekly, compute_indicators(weekly, IndicatorParams()), title="SPX · weekly")
    pixels = decode(png)
    assert png != reference
    assert pixels_of(pixels, UP) > 300 and pixels_of(pixels, DOWN) > 300


def test_empty_bars_are_refused(daily: pd.DataFrame, indicators: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="empty"):
        render_chart(daily.iloc[:0], indicators.iloc[:0], title="SPX · daily")


def test_mismatched_indexes_are_refused(daily: pd.DataFrame, indicators: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="index"):
        render_chart(daily, indicators.iloc[:-1], title="SPX · daily")
    with pytest.raises(ValueError, match="index"):
        render_chart(daily.iloc[1:], indicators.iloc[:-1], title="SPX · daily")  # same length, shifted
    with pytest.raises(ValueError, match="max_bars"):
        render_chart(daily, indicators, title="SPX · daily", max_bars=0)


@pytest.mark.slow
@pytest.mark.once
def test_no_figure_survives_many_renders(daily: pd.DataFrame, indicators: pd.DataFrame) -> None:
    gc.collect()
    before = live_figures()
    for i in range(30):
        render_chart(daily.iloc[: len(daily) - i], indicators.iloc[: len(daily) - i], title="SPX · daily")
        assert plt.get_fignums() == []
    # Not even as uncollected garbage waiting for a full collection: freed by the time render returns.
    assert live_figures() == before


def test_failing_render_leaves_no_figure_and_restores_state(daily: pd.DataFrame,
                                                            indicators: pd.DataFrame) -> None:
    broken = daily.iloc[-150:].astype(object)
    broken.iloc[-1, broken.columns.get_loc("close")] = "n/a"  # passes the checks, fails mid-drawing
    gc.collect()
    before, rc_before = live_figures(), dict(matplotlib.rcParams)
    with pytest.raises(ValueError):
        render_chart(broken, indicators.iloc[-150:], title="SPX · daily")
    assert plt.get_fignums() == []
    assert dict(matplotlib.rcParams) == rc_before
    assert gc.isenabled()
    gc.collect()
    assert live_figures() == before
