"""Equity/drawdown PNG: a complete image of the agreed size, byte-for-byte reproducible whatever the global
matplotlib style, no figure left open, trades drawn, bad input refused. (Speed is measured, not asserted.)"""

from __future__ import annotations

import io

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tradetrail.backtest.report_chart import EQUITY, HEIGHT_PX, WIDTH_PX, equity_chart_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def series() -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(7)
    index = pd.bdate_range("2010-01-04", periods=1500)
    equity = pd.Series(100_000.0 * np.cumprod(1.0 + rng.normal(0.0004, 0.01, len(index))), index=index)
    closes = pd.Series(40.0 * np.cumprod(1.0 + rng.normal(0.0003, 0.012, len(index))), index=index)
    return equity, closes


@pytest.fixture(scope="module")
def trades(series: tuple[pd.Series, pd.Series]) -> list[dict]:
    index = series[0].index
    return [{"entry_date": f"{index[i]:%Y-%m-%d}", "exit_date": f"{index[i + 20]:%Y-%m-%d}" if i < 1400 else None}
            for i in range(100, 1500, 100)]


def pixels(png: bytes) -> np.ndarray:
    assert png[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)
        assert not image.info  # no metadata chunk (time, software) that would change the bytes
        return np.asarray(image.convert("RGB"))


def test_same_input_same_bytes_whatever_the_global_style(series, trades) -> None:
    equity, closes = series
    first = equity_chart_png(equity, closes, 100_000.0, trades)
    with matplotlib.rc_context({"lines.linewidth": 6.0, "font.size": 20.0, "axes.facecolor": "#000000"}):
        assert equity_chart_png(equity, closes, 100_000.0, trades) == first
    assert equity_chart_png(equity, closes, 100_000.0, trades) == first


def test_draws_the_curve_and_the_trades(series, trades) -> None:
    equity, closes = series
    plain = equity_chart_png(equity, closes, 100_000.0)
    marked = equity_chart_png(equity, closes, 100_000.0, trades)
    image = pixels(plain)
    blue = tuple(int(EQUITY[i:i + 2], 16) for i in (1, 3, 5))
    assert (np.abs(image.astype(int) - blue).sum(axis=2) < 30).sum() > 2000  # the equity line is there
    entries_only = equity_chart_png(equity, closes, 100_000.0, [t | {"exit_date": None} for t in trades])
    assert len({plain, entries_only, marked}) == 3  # entries drawn, and exits on top of them
    changed = (pixels(marked) != image).any(axis=2)
    assert changed[: HEIGHT_PX // 2].sum() > changed[HEIGHT_PX * 2 // 3:].sum()  # marks on the equity panel
    assert equity_chart_png(equity * 1.5, closes, 100_000.0) != plain


def test_leaves_no_figure_and_no_global_change(series) -> None:
    equity, closes = series
    before = dict(matplotlib.rcParams)
    equity_chart_png(equity, closes, 100_000.0)
    assert plt.get_fignums() == []
    assert dict(matplotlib.rcParams) == before


@pytest.mark.parametrize("n", [1, 2, 15])
def test_short_and_flat_curves_render(n: int) -> None:
    index = pd.bdate_range("2024-05-01", periods=n)
    pixels(equity_chart_png(pd.Series(1000.0, index=index), pd.Series(10.0, index=index), 1000.0))


def test_bad_input_is_refused(series, trades) -> None:
    equity, closes = series
    with pytest.raises(ValueError, match="closes"):
        equity_chart_png(equity, closes.iloc[1:], 100_000.0)
    with pytest.raises(ValueError, match="closes"):
        equity_chart_png(equity, closes * 0.0, 100_000.0)
    with pytest.raises(ValueError, match="not a session"):
        equity_chart_png(equity, closes, 100_000.0, [{"entry_date": "2009-06-01", "exit_date": None}])
    with pytest.raises(ValueError, match="entry_date"):
        equity_chart_png(equity, closes, 100_000.0, [{"entry_date": None, "exit_date": None}])
    with pytest.raises(ValueError, match="positive"):
        equity_chart_png(equity * -1.0, closes, 100_000.0)
    with pytest.raises(ValueError, match="initial_cash"):
        equity_chart_png(equity, closes, 0.0, trades)
