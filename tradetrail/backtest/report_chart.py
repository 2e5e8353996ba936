"""PNG of a backtest's equity against buy and hold, with the drawdown below it (the CLI's and API's picture).

Drawn like the candle charts (tradetrail.charts.render): a bare Figure on the Agg canvas (nothing registered
with pyplot, so nothing stays open), every rcParam it reads fixed under the charts' render lock, Pillow PNG
without metadata, so equal input gives equal bytes. Curves are single Line2D/PolyCollection artists with
path simplification; trade marks are one scatter each for entries and exits.
"""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.style
import numpy as np
import pandas as pd
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, Formatter, MaxNLocator, NullLocator

from tradetrail.backtest.report import drawdown_series
from tradetrail.charts.render import png_of

WIDTH_PX, HEIGHT_PX, DPI = 1200, 700, 100
EQUITY, HOLD, DRAWDOWN = "#1f77b4", "#8c8c8c", "#d62728"
ENTRY, EXIT, TEXT = "#2ca02c", "#d62728", "#303030"

_LEFT, _RIGHT = 0.07, 0.975
# Panels as figure fractions (no tight_layout: it measures every text twice); the legend of each sits in
# the strip above it, so it never covers a curve.
_EQUITY_BOX = (_LEFT, 0.39, _RIGHT - _LEFT, 0.49)
_DRAWDOWN_BOX = (_LEFT, 0.07, _RIGHT - _LEFT, 0.235)
_ABOVE = {"loc": "lower left", "bbox_to_anchor": (0.0, 1.0), "borderaxespad": 0.2, "borderpad": 0.2}

_RC = {  # everything the picture depends on, over matplotlib's defaults (not whatever others set globally)
    "font.size": 9.0,
    "text.hinting": "no_hinting",
    "axes.facecolor": "#ffffff",
    "axes.edgecolor": "#b0b0b0",
    "axes.linewidth": 0.8,
    "axes.labelsize": 9.0,
    "axes.labelcolor": TEXT,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "xtick.color": TEXT,
    "ytick.color": TEXT,
    "figure.facecolor": "#ffffff",
    "path.simplify": True,
    "axes.formatter.useoffset": False,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
}


def equity_chart_png(equity: pd.Series, closes: pd.Series, initial_cash: float,
                     trades: list[dict] | None = None) -> bytes:
    """PNG (1200x700): equity against buy and hold of ``initial_cash`` worth of the instrument at the first
    close, trade entries and exits marked when ``trades`` are given; drawdown % of both below.

    The inputs are those of :func:`tradetrail.backtest.report.build_report`; bad input raises ValueError.
    """
    drawdown = drawdown_series(equity, initial_cash)  # checks the curve and the cash
    if not isinstance(closes, pd.Series) or not closes.index.equals(equity.index):
        raise ValueError(f"equity_chart_png: closes must be a Series on the equity's index ({len(equity)} sessions)")
    close_values = closes.to_numpy(dtype=np.float64)
    if not (np.isfinite(close_values).all() and (close_values > 0).all()):
        raise ValueError("equity_chart_png: closes must be finite and positive")
    hold = pd.Series(float(initial_cash) * close_values / close_values[0], index=equity.index)
    marks = _trade_marks(equity, trades or [])
    return png_of(lambda: _rasterize(equity, hold, drawdown, drawdown_series(hold, initial_cash), float(initial_cash),
                                     marks))


def _trade_marks(equity: pd.Series, trades: list[dict]) -> dict[str, np.ndarray]:
    """Session positions of entries and exits (open trades have no exit), or ValueError for a date that is
    not one of the equity's sessions."""
    found: dict[str, np.ndarray] = {}
    for key in ("entry_date", "exit_date"):
        days = [(i, trade.get(key)) for i, trade in enumerate(trades)]
        if key == "entry_date" and (lacking := [i for i, day in days if day is None]):
            raise ValueError(f"equity_chart_png: trades {lacking} have no entry_date")
        days = [(i, day) for i, day in days if day is not None]
        try:
            positions = equity.index.get_indexer(pd.DatetimeIndex([day for _, day in days]))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"equity_chart_png: a trade's {key} is not a date: {exc}") from exc
        if (positions < 0).any():
            i, day = days[int(np.argmax(positions < 0))]
            raise ValueError(f"equity_chart_png: trade {i} {key} {day!r} is not a session of the equity curve")
        found[key] = positions.astype(np.int64)
    return found


def _rasterize(equity: pd.Series, hold: pd.Series, drawdown: pd.Series, hold_drawdown: pd.Series,
               initial: float, marks: dict[str, np.ndarray]) -> PIL.Image.Image:
    """The chart as RGB pixels; the figure dies with this frame."""
    with matplotlib.style.context(["default", _RC]):
        fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        canvas = FigureCanvasAgg(fig)
        _draw(fig, equity, hold, drawdown, hold_drawdown, initial, marks)
        canvas.draw()
        size = canvas.get_width_height()
        return PIL.Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")


def _draw(fig: Figure, equity: pd.Series, hold: pd.Series, drawdown: pd.Series, hold_drawdown: pd.Series,
          initial: float, marks: dict[str, np.ndarray]) -> None:
    x = mdates.date2num(equity.index)
    values, hold_values = equity.to_numpy(dtype=np.float64), hold.to_numpy(dtype=np.float64)
    ax_eq = fig.add_axes(_EQUITY_BOX)
    ax_dd = fig.add_axes(_DRAWDOWN_BOX)

    ax_eq.axhline(initial, color=HOLD, linewidth=0.7, linestyle=":")
    ax_eq.plot(x, hold_values, color=HOLD, linewidth=1.0, label="Buy and hold")
    ax_eq.plot(x, values, color=EQUITY, linewidth=1.3, label="Strategy")
    entries, exits = marks["entry_date"], marks["exit_date"]
    if entries.size:
        ax_eq.scatter(x[entries], values[entries], s=18, marker="^", color=ENTRY, zorder=3, linewidths=0,
                      label=f"Entries ({entries.size})")
    if exits.size:
        ax_eq.scatter(x[exits], values[exits], s=18, marker="v", color=EXIT, zorder=3, linewidths=0,
                      label=f"Exits ({exits.size})")
    ax_eq.legend(ncols=4, **_ABOVE)
    ax_eq.set_ylabel("Equity")
    ax_eq.yaxis.set_major_locator(MaxNLocator(nbins=7))
    ax_eq.yaxis.set_major_formatter(_StepFormatter(percent=False))

    dd, hold_dd = drawdown.to_numpy(dtype=np.float64), hold_drawdown.to_numpy(dtype=np.float64)
    ax_dd.fill_between(x, dd, 0.0, color=DRAWDOWN, alpha=0.35, linewidth=0, label="Strategy")
    ax_dd.plot(x, hold_dd, color=HOLD, linewidth=0.8, label="Buy and hold")
    low = float(min(dd.min(), hold_dd.min()))
    low = low * 1.08 - 0.5
    ax_dd.set_ylim(low, -low * 0.04)
    ax_dd.set_ylabel("Drawdown %")
    ax_dd.yaxis.set_major_locator(MaxNLocator(nbins=4))
    ax_dd.yaxis.set_major_formatter(_StepFormatter(percent=True))
    ax_dd.legend(ncols=2, **_ABOVE)

    # Dates under the drawdown only; the equity panel gets the same vertical guides as one LineCollection
    # (its own ticks would be Tick objects for nothing: most of a draw's time is ticks and text).
    pad = max((x[-1] - x[0]) * 0.01, 1.0)
    # Under ten days the automatic locator would pick hours; sessions are days.
    locator = mdates.AutoDateLocator(minticks=5) if x[-1] - x[0] >= 10.0 else mdates.DayLocator()
    ticks = [t for t in locator.tick_values(mdates.num2date(x[0] - pad), mdates.num2date(x[-1] + pad))
             if x[0] - pad <= t <= x[-1] + pad]
    for ax in (ax_eq, ax_dd):
        ax.set_xlim(x[0] - pad, x[-1] + pad)
    ax_dd.xaxis.set_major_locator(FixedLocator(ticks))
    ax_dd.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    ax_eq.xaxis.set_major_locator(NullLocator())
    ax_eq.vlines(ticks, 0.0, 1.0, transform=ax_eq.get_xaxis_transform(), colors=_RC["grid.color"],
                 linewidth=_RC["grid.linewidth"], zorder=0.5)

    total = (values[-1] / initial - 1.0) * 100.0
    hold_total = (hold_values[-1] / initial - 1.0) * 100.0
    fig.text(_LEFT, 0.945, f"{equity.index[0]:%Y-%m-%d} .. {equity.index[-1]:%Y-%m-%d}  |  Strategy {total:+.1f}% "
             f"(max drawdown {0.0 - dd.min():.1f}%)  |  Buy and hold {hold_total:+.1f}% (max drawdown "
             f"{0.0 - hold_dd.min():.1f}%)", fontsize=11, fontweight="bold", color=TEXT, va="bottom", parse_math=False)


class _StepFormatter(Formatter):
    """Tick labels with the decimals the tick step needs (five "1.0K" read as a flat line); money in K/M/B
    only where the step is large enough for it, percent with a % sign."""

    def __init__(self, percent: bool) -> None:
        self.percent = percent
        self.ticks = np.empty(0)

    def set_locs(self, locs: list[float]) -> None:
        self.ticks = np.asarray(locs, dtype=np.float64)

    def __call__(self, value: float, pos: int | None = None) -> str:
        locs = self.ticks
        step = float(np.diff(locs).min()) if locs.size > 1 else 1.0
        scale, suffix = 1.0, "%" if self.percent else ""
        if not self.percent:
            top = float(np.abs(locs).max()) if locs.size else abs(value)
            scale, suffix = next(((f, s) for f, s in ((1e9, "B"), (1e6, "M"), (1e3, "K"))
                                  if top >= f and step >= f / 100.0), (1.0, ""))
        step /= scale
        decimals = next((d for d in range(6) if step > 0 and abs(step * 10**d - round(step * 10**d)) < 1e-6), 6)
        return f"{round(value / scale, decimals) + 0.0:,.{decimals}f}{suffix}"  # + 0.0: "0", never "-0"
