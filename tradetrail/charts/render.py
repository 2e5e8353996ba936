"""Chart PNGs for one timeframe: what the vision model and the human both look at (mplfinance + Agg).

Speed, 150 daily bars at 1200x900 on the 2-core box (``benchmarks/bench_charts.py --naive``): the same chart
drawn the stock way (``mpf.plot`` panels + ``savefig``) took 290-305 ms median (p90 470-510), this 118-120 ms
(p90 ~125). The time went to ``ax.bar`` (one Rectangle per volume/histogram bar), Tick objects (every panel's
x axis, twin axes), text (~1 ms a string in matplotlib 3.11), zlib level 6, and full GC passes over dead
figures. Changed: own Figure in mplfinance's external-axes mode, bars as one PolyCollection, dates on the
bottom panel only, fixed label positions, no hinting, RGB PNG at level 3, collector paused + gen-0 pass.
"""

from __future__ import annotations

import gc
import io
import re
import sys
import threading
from collections.abc import Callable
from functools import lru_cache

import matplotlib
import matplotlib.style

if "matplotlib.pyplot" not in sys.modules:
    # Only choose pyplot's backend while nobody has: switching it later would close other code's figures.
    matplotlib.use("Agg")

import mplfinance as mpf  # noqa: E402  (after the backend choice: it imports pyplot)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import PIL.Image  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator  # noqa: E402

WIDTH_PX, HEIGHT_PX, DPI = 1200, 900, 100
PNG_COMPRESS_LEVEL = 3  # level 6: +6 ms for a 4% smaller file

UP, DOWN = "#26a69a", "#ef5350"  # candles, volume, MACD histogram
ST_UP, ST_DOWN, ST_FLAT = "#00a000", "#d00000", "#555555"
MA_COLORS = ("#ff7f0e", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf")
BB_COLOR, GUIDE_COLOR, TEXT_COLOR = "#7f7f7f", "#909090", "#303030"
MACD_COLOR, SIGNAL_COLOR, RSI_COLOR = "#1f77b4", "#ff7f0e", "#7b1fa2"

# Panel heights from the top, as figure fractions; the strip above each holds its legend (up to three
# rows above the price panel, one above the others).
_LEFT, _RIGHT, _TOP, _GAP = 0.045, 0.925, 0.905, 0.03
_HEIGHTS = (0.45, 0.095, 0.12, 0.105)
_LEGEND_PT, _ROW_PT, _SPACE_PT = 8.5, 11.0, 10.0
SOLID, DASHED, BLOCK = "━━", "╍╍", "▮"

# Every rcParam a render depends on is fixed here (on top of matplotlib's defaults), so neither the
# picture nor its bytes depend on what other code did to the global style (mplfinance's own panel mode
# rewrites the global rcParams on every call, for one).
_RC = {
    "font.size": 9.0,
    "text.hinting": "no_hinting",  # ~10 ms less per chart, no visible loss at this size
    "axes.facecolor": "#ffffff",
    "axes.edgecolor": "#b0b0b0",
    "axes.linewidth": 0.8,
    "axes.labelsize": 9.0,
    "axes.labelcolor": TEXT_COLOR,
    "axes.grid": True,
    "axes.grid.axis": "y",  # vertical lines: one LineCollection per panel, not one Tick per date per panel
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "xtick.color": TEXT_COLOR,
    "ytick.color": TEXT_COLOR,
    "figure.facecolor": "#ffffff",
    "path.simplify": True,
    "axes.formatter.useoffset": False,
}

_MA_RE = re.compile(r"^(sma|ema)_(\d+)$")
_RENDER_LOCK = threading.Lock()  # rcParams and the collector are process-wide: one render at a time

Entry = tuple[str, str]  # legend entry: text (with its line/bar mark), colour
Rows = list[list[Entry]]  # legend rows, top to bottom (a row too long for the panel wraps)


@lru_cache(maxsize=1)
def _mpf_style() -> dict:
    """mplfinance style (only its market colours matter with external axes), built once: it deep-copies."""
    colors = mpf.make_marketcolors(up=UP, down=DOWN, edge="inherit", wick="inherit", volume="inherit",
                                   alpha=1.0)
    return mpf.make_mpf_style(base_mpf_style="default", marketcolors=colors)


def render_chart(bars: pd.DataFrame, indicators: pd.DataFrame, *, title: str, max_bars: int = 150) -> bytes:
    """PNG of the last ``max_bars`` bars: candles + overlays, volume, MACD and RSI panels.

    Indicators are computed by the caller on the full history (so SMA200 is defined on screen); only the
    window is drawn. Missing or all-NaN indicator columns are skipped. Equal input gives equal bytes, which
    the pipeline relies on (model answers are cached by image hash).
    """
    check_inputs(bars, indicators, max_bars)
    window, ind = bars.iloc[-max_bars:], indicators.iloc[-max_bars:]
    return png_of(lambda: _rasterize(window, ind, title))


def png_of(rasterize: Callable[[], PIL.Image.Image]) -> bytes:
    """PNG bytes of the image ``rasterize`` draws, drawn under the process-wide render lock (rcParams and the
    collector are shared) with the collector paused; the same bytes for the same image (no metadata)."""
    with _RENDER_LOCK:
        collect = gc.isenabled()
        gc.disable()
        try:
            image = rasterize()
        finally:
            if collect:
                gc.enable()
        if collect:
            # The figure is a web of reference cycles: left to the collector it is promoted to the old
            # generation, and full collections (~130 ms here) then hit one render in ten. Allocated with the
            # collector paused, it is all still young: a generation-0 pass frees it for a few ms.
            gc.collect(0)
    out = io.BytesIO()
    image.save(out, format="png", compress_level=PNG_COMPRESS_LEVEL)  # Pillow writes no time/software chunk
    return out.getvalue()


def _rasterize(bars: pd.DataFrame, ind: pd.DataFrame, title: str) -> PIL.Image.Image:
    """The chart as RGB pixels; the figure dies with this frame."""
    with matplotlib.style.context(["default", _RC]):
        # A bare Figure, not pyplot: nothing is registered globally, so nothing can stay open, even when
        # drawing raises.
        fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        canvas = FigureCanvasAgg(fig)
        _draw(fig, canvas, bars, ind, title)
        canvas.draw()
        size = canvas.get_width_height()
        return PIL.Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")


def check_inputs(bars: pd.DataFrame, indicators: pd.DataFrame, max_bars: int) -> None:
    """Reject what cannot be drawn, with the reason (ValueError)."""
    if not isinstance(bars, pd.DataFrame) or bars.empty:
        raise ValueError("render_chart: bars are empty; there is nothing to draw")
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise ValueError(f"render_chart: bars lack columns {missing}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError(f"render_chart: bars need a DatetimeIndex, got {type(bars.index).__name__}")
    if not isinstance(indicators, pd.DataFrame):
        raise ValueError(f"render_chart: indicators must be a DataFrame, got {type(indicators).__name__}")
    if not bars.index.equals(indicators.index):
        raise ValueError(
            f"render_chart: indicators must have the bars' index; bars have {len(bars)} rows "
            f"({bars.index[0]} .. {bars.index[-1]}), indicators {len(indicators)}"
            + (f" ({indicators.index[0]} .. {indicators.index[-1]})" if len(indicators) else "")
        )
    if isinstance(max_bars, bool) or not isinstance(max_bars, int) or max_bars < 1:
        raise ValueError(f"render_chart: max_bars must be a positive integer, got {max_bars!r}")


def _draw(fig: Figure, canvas: FigureCanvasAgg, bars: pd.DataFrame, ind: pd.DataFrame, title: str) -> None:
    """Everything on the figure; x is the bar number (no weekend gaps), as in mplfinance."""
    axes = _panels(fig)
    ax_price, ax_vol, ax_macd, ax_rsi = axes
    n = len(bars)
    x = np.arange(n, dtype=np.float64)
    closes = bars["close"].to_numpy(dtype=np.float64)

    overlays, price_entries = _price_overlays(ax_price, ind)
    optional = {"addplot": overlays} if overlays else {}  # mplfinance rejects addplot=None or []
    mpf.plot(bars, type="candle", ax=ax_price, volume=False, style=_mpf_style(), datetime_format="%Y-%m-%d",
             xrotation=0, warn_too_much_data=n + 1, ylabel="", **optional)
    legends = [price_entries, _volume_panel(ax_vol, x, bars), _macd_panel(ax_macd, x, ind),
               _rsi_panel(ax_rsi, x, ind)]

    ticks = [t for t in MaxNLocator(nbins=8, integer=True).tick_values(0, n - 1) if 0 <= t <= n - 1]
    for ax, label, entries in zip(axes, ("Price", "Volume", "MACD", "RSI"), legends, strict=True):
        ax.set_ylabel(label)
        ax.yaxis.tick_right()
        # Fixed label places: automatic ones measure every tick label a second time, on every draw.
        ax.yaxis.set_label_coords(-0.012, 0.5)
        ax.xaxis.set_label_coords(0.5, -0.2)
        ax.set_xlim(-1.0, n + 1.0)
        ax.vlines(ticks, 0.0, 1.0, transform=ax.get_xaxis_transform(), colors=_RC["grid.color"],
                  linewidth=_RC["grid.linewidth"], zorder=0.5)
        if ax is not ax_rsi:
            ax.xaxis.set_major_locator(NullLocator())
        _legend(ax, entries, canvas)
    ax_rsi.xaxis.set_major_locator(FixedLocator(ticks))
    ax_rsi.xaxis.set_major_formatter(ax_price.xaxis.get_major_formatter())  # mplfinance's bar -> date

    last = float(closes[-1])
    previous = float(closes[-2]) if n > 1 else float("nan")
    change = f" ({(last / previous - 1.0) * 100.0:+.2f}%)" if np.isfinite(previous) and previous else ""
    # "semibold" would have no DejaVu face (a findfont warning); parse_math=False: "$" in a title is text.
    fig.text(_LEFT, 0.962, f"{title}  |  last bar {bars.index[-1]:%Y-%m-%d}  |  close {last:,.2f}{change}",
             fontsize=13, fontweight="bold", va="bottom", parse_math=False)
    ax_price.axhline(last, color="#606060", linewidth=0.6, linestyle=":")
    ax_price.annotate(f"{last:,.2f}", xy=(1.0, last), xycoords=("axes fraction", "data"), xytext=(2, 0),
                      textcoords="offset points", va="center", ha="left", fontsize=8.5, color="white",
                      bbox={"boxstyle": "square,pad=0.2", "fc": "#404040", "ec": "none"})


def _panels(fig: Figure) -> list[Axes]:
    """Four stacked axes at fixed positions (no tight_layout: it measures every text, twice)."""
    axes, top = [], _TOP
    for height in _HEIGHTS:
        axes.append(fig.add_axes((_LEFT, top - height, _RIGHT - _LEFT, height)))
        top -= height + _GAP
    return axes


def _price_overlays(ax: Axes, ind: pd.DataFrame) -> tuple[list[dict], Rows]:
    """mplfinance addplots for moving averages, Bollinger bands and SuperTrend, with their legend."""
    plots: list[dict] = []
    averages_row: list[Entry] = []
    entries: list[Entry] = []

    def line(values: np.ndarray, color: str, width: float, style: str = "-", **extra: object) -> None:
        plots.append(mpf.make_addplot(values, ax=ax, color=color, width=width, linestyle=style, **extra))

    # One colour per period, solid for SMA and dashed for EMA: "orange = 20" reads faster than six colours.
    averages = sorted((int(m[2]), m[1] != "sma", m[1], str(c)) for c in ind.columns
                      if (m := _MA_RE.match(str(c))))
    shown = [(period, kind, values) for period, _, kind, name in averages
             if (values := _column(ind, name)) is not None]
    periods = sorted({period for period, _, _ in shown})
    for period, kind, values in shown:
        color = MA_COLORS[periods.index(period) % len(MA_COLORS)]
        line(values, color, 1.3, "-" if kind == "sma" else "--")
        averages_row.append((f"{SOLID if kind == 'sma' else DASHED} {kind.upper()}{period} "
                             f"{_last(values):,.2f}", color))

    upper, lower, middle = _column(ind, "bb_upper"), _column(ind, "bb_lower"), _column(ind, "bb_middle")
    if upper is not None and lower is not None:
        line(upper, BB_COLOR, 0.7)
        shade = {"y1": upper, "y2": lower, "color": BB_COLOR, "alpha": 0.08, "linewidth": 0, "zorder": 0.6}
        line(lower, BB_COLOR, 0.7, fill_between=shade)  # zorder 0.6: the shade stays under the candles
        entries.append((f"{SOLID} BB {_last(lower):,.2f}–{_last(upper):,.2f}", BB_COLOR))
    elif upper is not None or lower is not None:
        band, side = (upper, "upper") if upper is not None else (lower, "lower")
        line(band, BB_COLOR, 0.7)
        entries.append((f"{SOLID} BB {side} {_last(band):,.2f}", BB_COLOR))
    if middle is not None and not any(np.allclose(middle, v, equal_nan=True) for _, _, v in shown):
        line(middle, BB_COLOR, 0.7, ":")  # usually it is the SMA20, already drawn

    trend = _column(ind, "supertrend")
    if trend is not None:
        direction = _column(ind, "supertrend_dir")
        if direction is None:
            line(trend, ST_FLAT, 1.8)
            entries.append((f"{SOLID} SuperTrend {_last(trend):,.2f}", ST_FLAT))
        else:
            # One line per direction, NaN elsewhere: no segment joins the two sides of a flip.
            for sign, color, word in ((1.0, ST_UP, "up"), (-1.0, ST_DOWN, "down")):
                part = np.where(direction == sign, trend, np.nan)
                if np.isfinite(part).any():
                    line(part, color, 1.8)
                    entries.append((f"{SOLID} SuperTrend {word}", color))
    return plots, [row for row in (averages_row, entries) if row]


def _volume_panel(ax: Axes, x: np.ndarray, bars: pd.DataFrame) -> Rows:
    volume = bars["volume"].to_numpy(dtype=np.float64)
    up = bars["close"].to_numpy() >= bars["open"].to_numpy()
    ax.add_collection(_bars(x, volume, np.where(up, UP, DOWN), alpha=0.6))
    finite = volume[np.isfinite(volume)]
    top = float(finite.max()) if len(finite) else 0.0
    ax.set_ylim(0.0, top * 1.05 if top > 0 else 1.0)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
    ax.yaxis.set_major_formatter(FuncFormatter(_human))
    return [[(f"{BLOCK} Volume {_human(_last(volume))}", TEXT_COLOR)]]


def _macd_panel(ax: Axes, x: np.ndarray, ind: pd.DataFrame) -> Rows:
    macd, signal, hist = _column(ind, "macd"), _column(ind, "macd_signal"), _column(ind, "macd_hist")
    entries: list[Entry] = []
    if macd is not None:
        ax.plot(x, macd, color=MACD_COLOR, linewidth=1.2)
        entries.append((f"{SOLID} MACD {_last(macd):,.2f}", MACD_COLOR))
    if signal is not None:
        ax.plot(x, signal, color=SIGNAL_COLOR, linewidth=1.2)
        entries.append((f"{SOLID} Signal {_last(signal):,.2f}", SIGNAL_COLOR))
    if hist is not None:
        ax.add_collection(_bars(x, hist, np.where(hist >= 0, UP, DOWN), alpha=0.7))
        entries.append((f"{BLOCK} Histogram {_last(hist):,.2f}", UP if _last(hist) >= 0 else DOWN))
    if entries:
        ax.axhline(0.0, color=GUIDE_COLOR, linewidth=0.7)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3))
    else:
        _absent(ax, "MACD not available")
        ax.yaxis.set_major_locator(NullLocator())
    return [entries]


def _rsi_panel(ax: Axes, x: np.ndarray, ind: pd.DataFrame) -> Rows:
    ax.set_ylim(0.0, 100.0)
    ax.set_yticks([30, 50, 70])
    for level in (30.0, 70.0):
        ax.axhline(level, color=GUIDE_COLOR, linewidth=0.8, linestyle="--")
    rsi = _column(ind, "rsi")
    if rsi is None:
        _absent(ax, "RSI not available")
        return []
    ax.plot(x, rsi, color=RSI_COLOR, linewidth=1.2)
    return [[(f"{SOLID} RSI {_last(rsi):.1f}  (guides 30 / 70)", RSI_COLOR)]]


def _column(ind: pd.DataFrame, name: str) -> np.ndarray | None:
    """A column as floats, or None when it is missing or has nothing finite in the window."""
    if name not in ind.columns:
        return None
    values = pd.to_numeric(ind[name], errors="coerce").to_numpy(dtype=np.float64)
    return values if np.isfinite(values).any() else None


def _last(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if len(finite) else float("nan")


def _bars(x: np.ndarray, top: np.ndarray, colors: np.ndarray, alpha: float, width: float = 0.7
          ) -> PolyCollection:
    """Bars from 0 to ``top`` as a single artist (``ax.bar`` adds one Rectangle per bar, which was most
    of the time of the out-of-the-box render)."""
    ok = np.isfinite(top)
    x, top = x[ok], top[ok]
    left, right, zero = x - width / 2, x + width / 2, np.zeros_like(top)
    verts = np.stack([np.column_stack(c) for c in ((left, zero), (left, top), (right, top), (right, zero))],
                     axis=1)
    return PolyCollection(verts, facecolors=colors[ok].tolist(), edgecolors="none", alpha=alpha)


def _human(value: float, _pos: int | None = None) -> str:
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f}{suffix}"
    return f"{value:.0f}"


def _legend(ax: Axes, rows: Rows, canvas: FigureCanvasAgg) -> None:
    """Coloured labels in the strip above the panel, so they never cover data (``Axes.legend`` in a
    corner hid the first bars); widths are measured with the Agg renderer to set labels side by side."""
    renderer = canvas.get_renderer()
    font = FontProperties(size=_LEGEND_PT)
    to_pt = 72.0 / DPI
    limit = ax.get_position().width * WIDTH_PX * to_pt
    placed: list[list[tuple[float, Entry]]] = []
    for row in rows:
        placed.append([])
        offset = 0.0
        for text, color in row:
            width = renderer.get_text_width_height_descent(text, font, ismath=False)[0] * to_pt
            if offset > 0 and offset + width > limit:
                placed.append([])
                offset = 0.0
            placed[-1].append((offset, (text, color)))
            offset += width + _SPACE_PT
    for level, line in enumerate(reversed([line for line in placed if line])):
        for offset, (text, color) in line:
            ax.annotate(text, xy=(0.0, 1.0), xycoords="axes fraction", xytext=(offset, 3.0 + level * _ROW_PT),
                        textcoords="offset points", va="bottom", color=color, fontproperties=font,
                        parse_math=False)


def _absent(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=GUIDE_COLOR)
