"""Chart PNGs for one timeframe: what the vision model and the human both look at.

Performance (placeholder, filled in after measuring).
"""

from __future__ import annotations

import io
import re
import sys
import threading
from functools import lru_cache

import matplotlib
import matplotlib.style

if "matplotlib.pyplot" not in sys.modules:
    # Only pick the pyplot default when nobody has yet: switching later would close other code's figures.
    matplotlib.use("Agg")

import mplfinance as mpf  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import PIL.Image  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator  # noqa: E402

WIDTH_PX, HEIGHT_PX, DPI = 1200, 900, 100
PNG_COMPRESS_LEVEL = 6

UP, DOWN = "#26a69a", "#ef5350"
ST_UP, ST_DOWN = "#00a000", "#d00000"
MA_COLORS = ("#ff7f0e", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BB_COLOR = "#7f7f7f"

_MA_RE = re.compile(r"^(sma|ema)_(\d+)$")
_RENDER_LOCK = threading.Lock()  # rc_context swaps the process-wide rcParams: one render at a time

# Fixed rcParams (on top of matplotlib's defaults) so the picture, and its bytes, do not depend on what
# other code in the process did to the global style.
_RC = {
    "font.size": 9.0,
    "axes.facecolor": "#ffffff",
    "axes.edgecolor": "#b0b0b0",
    "axes.linewidth": 0.8,
    "axes.labelsize": 9.0,
    "axes.grid": True,
    "axes.grid.axis": "y",  # vertical grid: one LineCollection per panel, not a Tick per date per panel
    "text.hinting": "no_hinting",
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "grid.linestyle": "-",
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "xtick.color": "#303030",
    "ytick.color": "#303030",
    "legend.fontsize": 8.0,
    "figure.facecolor": "#ffffff",
    "savefig.facecolor": "#ffffff",
    "path.simplify": True,
    "axes.formatter.useoffset": False,
}


@lru_cache(maxsize=1)
def _mpf_style() -> dict:
    """The mplfinance style (only its market colours matter in external-axes mode); building it is slow."""
    colors = mpf.make_marketcolors(up=UP, down=DOWN, edge="inherit", wick="inherit", volume="inherit")
    return mpf.make_mpf_style(base_mpf_style="default", marketcolors=colors)


def _finite(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).any())


def _col(ind: pd.DataFrame, name: str) -> np.ndarray | None:
    """A column as a float array, or None when it is missing or has nothing to draw in the window."""
    if name not in ind.columns:
        return None
    values = pd.to_numeric(ind[name], errors="coerce").to_numpy(dtype=np.float64)
    return values if _finite(values) else None


def _last(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else float("nan")


def _bar_collection(x: np.ndarray, top: np.ndarray, colors: list[str] | np.ndarray, width: float = 0.7,
                    alpha: float = 1.0) -> PolyCollection:
    """Bars from 0 to ``top`` as one collection (ax.bar makes one Rectangle artist per bar: slow)."""
    ok = np.isfinite(top)
    x, top = x[ok], top[ok]
    colors = np.asarray(colors, dtype=object)[ok]
    left, right = x - width / 2, x + width / 2
    zero = np.zeros_like(top)
    verts = np.stack([np.column_stack([left, zero]), np.column_stack([left, top]),
                      np.column_stack([right, top]), np.column_stack([right, zero])], axis=1)
    return PolyCollection(verts, facecolors=list(colors), edgecolors="none", alpha=alpha)


def _human(value: float, _pos: int | None = None) -> str:
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.1f}{suffix}"
    return f"{value:.0f}"


def _check(bars: pd.DataFrame, indicators: pd.DataFrame, max_bars: int) -> None:
    if not isinstance(bars, pd.DataFrame) or bars.empty:
        raise ValueError("render_chart: bars is empty; there is nothing to draw")
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise ValueError(f"render_chart: bars lack columns {missing}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError("render_chart: bars must be indexed by a DatetimeIndex")
    if not isinstance(indicators, pd.DataFrame) or not bars.index.equals(indicators.index):
        got = len(indicators) if isinstance(indicators, pd.DataFrame) else type(indicators).__name__
        raise ValueError(f"render_chart: indicators must have exactly the bars' index ({len(bars)} rows, "
                         f"first {bars.index[0]}, last {bars.index[-1]}); got {got}")
    if isinstance(max_bars, bool) or not isinstance(max_bars, int) or max_bars < 1:
        raise ValueError(f"render_chart: max_bars must be a positive integer, got {max_bars!r}")


def render_chart(bars: pd.DataFrame, indicators: pd.DataFrame, *, title: str, max_bars: int = 150) -> bytes:
    """PNG bytes of the last ``max_bars`` bars with overlays, volume, MACD and RSI panels.

    Indicators are computed by the caller on the full history (so SMA200 exists on screen); only the
    window is drawn. Missing or all-NaN indicator columns are skipped. Same input, same bytes.
    """
    _check(bars, indicators, max_bars)
    window = bars.iloc[-max_bars:]
    ind = indicators.iloc[-max_bars:]
    with _RENDER_LOCK, matplotlib.style.context(["default", _RC]):
        fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        canvas = FigureCanvasAgg(fig)
        _draw(fig, window, ind, title)
        canvas.draw()
        image = PIL.Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
        out = io.BytesIO()
        image.save(out, format="png", compress_level=PNG_COMPRESS_LEVEL)
        return out.getvalue()


def _draw(fig: Figure, bars: pd.DataFrame, ind: pd.DataFrame, title: str) -> None:
    n = len(bars)
    x = np.arange(n, dtype=np.float64)
    left, right = 0.045, 0.925
    heights = (0.46, 0.095, 0.12, 0.105)  # + 3 gaps of 0.03 = 0.87: from 0.045 (dates) to 0.915 (legend)
    gap, top = 0.03, 0.915
    axes: list[Axes] = []
    y = top
    for h in heights:
        y -= h
        axes.append(fig.add_axes((left, y, right - left, h)))
        y -= gap
    ax_price, ax_vol, ax_macd, ax_rsi = axes

    price_lines: list[dict] = []
    legend: list[tuple[str, str, str]] = []  # (label, color, linestyle)

    mas = sorted(((int(m.group(2)), m.group(1), c) for c in ind.columns if (m := _MA_RE.match(str(c)))),
                 key=lambda t: (t[0], t[1]))
    drawn: list[np.ndarray] = []
    color_i = 0
    for period, kind, name in mas:
        values = _col(ind, name)
        if values is None:
            continue
        color = MA_COLORS[color_i % len(MA_COLORS)]
        color_i += 1
        style = "-" if kind == "sma" else "--"
        price_lines.append(mpf.make_addplot(values, ax=ax_price, color=color, width=1.3, linestyle=style))
        legend.append((f"{kind.upper()}{period} {_last(values):,.2f}", color, style))
        drawn.append(values)

    upper, lower, middle = _col(ind, "bb_upper"), _col(ind, "bb_lower"), _col(ind, "bb_middle")
    if upper is not None and lower is not None:
        price_lines.append(mpf.make_addplot(upper, ax=ax_price, color=BB_COLOR, width=0.7))
        price_lines.append(mpf.make_addplot(lower, ax=ax_price, color=BB_COLOR, width=0.7,
                                            fill_between=dict(y1=upper, y2=lower, color=BB_COLOR,
                                                              alpha=0.08, linewidth=0)))
        legend.append((f"BB {_last(lower):,.2f}–{_last(upper):,.2f}", BB_COLOR, "-"))
    else:
        for band in (upper, lower):
            if band is not None:
                price_lines.append(mpf.make_addplot(band, ax=ax_price, color=BB_COLOR, width=0.7))
        if upper is not None or lower is not None:
            legend.append(("BB", BB_COLOR, "-"))
    if middle is not None and not any(np.allclose(middle, d, equal_nan=True) for d in drawn):
        price_lines.append(mpf.make_addplot(middle, ax=ax_price, color=BB_COLOR, width=0.7, linestyle=":"))

    st = _col(ind, "supertrend")
    if st is not None:
        direction = _col(ind, "supertrend_dir")
        if direction is None:
            price_lines.append(mpf.make_addplot(st, ax=ax_price, color="#555555", width=1.6))
            legend.append((f"SuperTrend {_last(st):,.2f}", "#555555", "-"))
        else:
            for sign, color, word in ((1.0, ST_UP, "up"), (-1.0, ST_DOWN, "down")):
                part = np.where(direction == sign, st, np.nan)
                if _finite(part):
                    price_lines.append(mpf.make_addplot(part, ax=ax_price, color=color, width=1.8))
                    legend.append((f"SuperTrend {word}", color, "-"))

    mpf.plot(bars, type="candle", ax=ax_price, volume=False, addplot=price_lines or None, style=_mpf_style(),
             datetime_format="%Y-%m-%d", xrotation=0, warn_too_much_data=n + 1, ylabel="")

    opens, closes = bars["open"].to_numpy(), bars["close"].to_numpy()
    up = closes >= opens
    ax_vol.add_collection(_bar_collection(x, bars["volume"].to_numpy(dtype=np.float64),
                                          np.where(up, UP, DOWN), alpha=0.6))
    vmax = float(np.nanmax(bars["volume"].to_numpy(dtype=np.float64))) if n else 1.0
    ax_vol.set_ylim(0, vmax * 1.05 if vmax > 0 else 1.0)
    ax_vol.yaxis.set_major_formatter(FuncFormatter(_human))

    macd, signal, hist = _col(ind, "macd"), _col(ind, "macd_signal"), _col(ind, "macd_hist")
    macd_legend: list[tuple[str, str, str]] = []
    if hist is not None:
        ax_macd.add_collection(_bar_collection(x, hist, np.where(hist >= 0, UP, DOWN), alpha=0.7))
        macd_legend.append((f"Hist {_last(hist):,.2f}", UP if _last(hist) >= 0 else DOWN, "-"))
    if macd is not None:
        ax_macd.plot(x, macd, color="#1f77b4", linewidth=1.2)
        macd_legend.append((f"MACD {_last(macd):,.2f}", "#1f77b4", "-"))
    if signal is not None:
        ax_macd.plot(x, signal, color="#ff7f0e", linewidth=1.2)
        macd_legend.append((f"Signal {_last(signal):,.2f}", "#ff7f0e", "-"))
    if macd_legend:
        ax_macd.axhline(0.0, color="#909090", linewidth=0.7)
        ax_macd.autoscale_view()
    else:
        _absent(ax_macd, "MACD not available")

    rsi = _col(ind, "rsi")
    ax_rsi.set_ylim(0, 100)
    ax_rsi.set_yticks([30, 50, 70])
    for level in (30.0, 70.0):
        ax_rsi.axhline(level, color="#909090", linewidth=0.8, linestyle="--")
    if rsi is not None:
        ax_rsi.plot(x, rsi, color="#7b1fa2", linewidth=1.2)
        _legend(ax_rsi, [(f"RSI {_last(rsi):.1f}", "#7b1fa2", "-")])
    else:
        _absent(ax_rsi, "RSI not available")

    _legend(ax_price, legend, ncol=len(legend))
    _legend(ax_macd, macd_legend, ncol=3)

    ticks = [t for t in MaxNLocator(nbins=8, integer=True).tick_values(0, n - 1) if 0 <= t <= n - 1]
    for ax, label in zip(axes, ("Price", "Volume", "MACD", "RSI"), strict=True):
        ax.set_ylabel(label)
        ax.yaxis.tick_right()
        ax.yaxis.set_label_position("left")
        ax.set_xlim(-1.0, n + 1.0)
        ax.vlines(ticks, 0.0, 1.0, transform=ax.get_xaxis_transform(), colors=_RC["grid.color"],
                  linewidth=_RC["grid.linewidth"], zorder=0.5)
        if ax is not ax_rsi:
            ax.xaxis.set_major_locator(NullLocator())
        if ax is not ax_price and ax is not ax_rsi:
            ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
    ax_rsi.xaxis.set_major_locator(FixedLocator(ticks))
    ax_rsi.xaxis.set_major_formatter(ax_price.xaxis.get_major_formatter())

    last_close = float(closes[-1])
    change = ""
    if n > 1 and closes[-2]:
        change = f" ({(last_close / closes[-2] - 1.0) * 100.0:+.2f}%)"
    fig.text(left, 0.962, f"{title}  |  last bar {bars.index[-1]:%Y-%m-%d}  |  close {last_close:,.2f}{change}",
             fontsize=13, fontweight="bold", va="bottom")
    ax_price.axhline(last_close, color="#606060", linewidth=0.6, linestyle=":")
    ax_price.annotate(f"{last_close:,.2f}", xy=(1.0, last_close), xycoords=("axes fraction", "data"),
                      xytext=(2, 0), textcoords="offset points", va="center", ha="left", fontsize=8.5,
                      color="white", bbox=dict(boxstyle="square,pad=0.2", fc="#404040", ec="none"))


def _legend(ax: Axes, entries: list[tuple[str, str, str]], ncol: int = 1) -> None:
    """A fixed-position legend (loc='best' searches all data points: slow, and the box wanders)."""
    if not entries:
        return
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color, linestyle=style, linewidth=2.0) for _, color, style in entries]
    ax.legend(handles, [label for label, _, _ in entries], loc="lower left", bbox_to_anchor=(0.0, 1.0),
              ncol=len(entries), frameon=False, borderaxespad=0.1, borderpad=0.1, handlelength=1.8,
              columnspacing=1.2)


def _absent(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#808080")
