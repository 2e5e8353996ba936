"""Chart PNGs: ms per chart (daily and weekly in turn, as a run renders them), PNG size, and memory.

Target: ≤ 150 ms median per chart on the 2-core box. RSS is read after a warm-up render and again after
the timed renders: flat means nothing accumulates between charts (figures, fonts, caches).
Usage: python benchmarks/bench_charts.py [--n 50] [--max-bars 150] [--naive]
``--naive`` also times the same chart drawn the out-of-the-box way (``mpf.plot`` panels, ``ax.bar`` volume
and histogram, legends, ``savefig``): the "before" quoted in tradetrail/charts/render.py.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import mplfinance as mpf  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tradetrail.charts.render import render_chart  # noqa: E402
from tradetrail.domain.bars import resample_weekly  # noqa: E402
from tradetrail.domain.indicators import IndicatorParams, compute_indicators  # noqa: E402
from tradetrail.marketdata.sample import load_sample_daily  # noqa: E402

Render = Callable[..., bytes]
Inputs = list[tuple[str, pd.DataFrame, pd.DataFrame]]


def rss_mb() -> float:
    """Current resident set size (the peak, from getrusage, where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sample_inputs() -> Inputs:
    """SPX daily and weekly bars with indicators computed on the whole history, as the pipeline does."""
    daily = load_sample_daily("SPX")
    weekly = resample_weekly(daily)
    params = IndicatorParams()
    return [(tf, bars, compute_indicators(bars, params))
            for tf, bars in (("daily", daily), ("weekly", weekly))]


def naive_render(bars: pd.DataFrame, indicators: pd.DataFrame, *, title: str, max_bars: int = 150) -> bytes:
    """The same chart the straightforward mplfinance way: the reference the optimisations are measured by."""
    b, ind = bars.iloc[-max_bars:], indicators.iloc[-max_bars:]
    n = len(b)
    plots = [mpf.make_addplot(ind[c], panel=0, width=1.3, label=c) for c in ind.columns
             if c.startswith(("sma_", "ema_"))]
    plots += [mpf.make_addplot(ind[c], panel=0, color="#7f7f7f", width=0.7) for c in ("bb_upper", "bb_lower")]
    for sign, color in ((1.0, "#00a000"), (-1.0, "#d00000")):
        plots.append(mpf.make_addplot(ind["supertrend"].where(ind["supertrend_dir"] == sign), panel=0,
                                      color=color, width=1.8))
    hist = ind["macd_hist"].fillna(0.0)
    plots += [
        mpf.make_addplot(ind["macd"], panel=2, color="#1f77b4", ylabel="MACD", label="MACD"),
        mpf.make_addplot(ind["macd_signal"], panel=2, color="#ff7f0e", label="signal"),
        mpf.make_addplot(hist, panel=2, type="bar", color=np.where(hist >= 0, "#26a69a", "#ef5350").tolist()),
        mpf.make_addplot(ind["rsi"], panel=3, color="#7b1fa2", ylabel="RSI", ylim=(0, 100), label="RSI"),
        mpf.make_addplot(pd.Series(30.0, index=b.index), panel=3, color="#909090", linestyle="--"),
        mpf.make_addplot(pd.Series(70.0, index=b.index), panel=3, color="#909090", linestyle="--"),
    ]
    out = io.BytesIO()
    with matplotlib.rc_context():  # mpf.plot rewrites the global rcParams in panel mode
        mpf.plot(b, type="candle", volume=True, addplot=plots, style="yahoo", figsize=(12, 9),
                 panel_ratios=(6, 1.2, 1.5, 1.3),
                 title=f"{title} {b.index[-1]:%Y-%m-%d} {b['close'].iloc[-1]:.2f}",
                 warn_too_much_data=n + 1, savefig={"fname": out, "dpi": 100, "format": "png"})
    return out.getvalue()


def time_renders(render: Render, inputs: Inputs, n: int, max_bars: int) -> tuple[list[float], list[int]]:
    """Milliseconds and PNG bytes of ``n`` renders, alternating the timeframes."""
    times, sizes = [], []
    for i in range(n):
        tf, bars, ind = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        png = render(bars, ind, title=f"SPX · {tf}", max_bars=max_bars)
        times.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(png))
    return times, sizes


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def main(n: int = 50, max_bars: int = 150, naive: bool = False) -> dict:
    inputs = sample_inputs()
    rss_start = rss_mb()
    time_renders(render_chart, inputs, 2, max_bars)  # warm-up: fonts, glyph caches, mplfinance style
    rss_warm = rss_mb()
    times, sizes = time_renders(render_chart, inputs, n, max_bars)
    rss_end = rss_mb()
    figures: dict[str, float | int] = {
        "charts_median_ms": statistics.median(times),
        "charts_p90_ms": p90(times),
        "charts_png_kb": statistics.median(sizes) / 1024,
        "charts_rss_start_mb": rss_start,
        "charts_rss_warm_mb": rss_warm,
        "charts_rss_end_mb": rss_end,
        "charts_rss_growth_mb": rss_end - rss_warm,
        "charts_open_figures": len(plt.get_fignums()),
    }
    print(f"render_chart: {n} charts of {max_bars} bars (daily/weekly in turn), 1200x900 px")
    print(f"  median {figures['charts_median_ms']:.1f} ms, p90 {figures['charts_p90_ms']:.1f} ms, "
          f"PNG {figures['charts_png_kb']:.0f} KiB")
    print(f"  RSS {rss_start:.1f} MB at start, {rss_warm:.1f} MB after warm-up, {rss_end:.1f} MB after "
          f"{n} charts ({figures['charts_rss_growth_mb']:+.1f} MB); open pyplot figures: "
          f"{figures['charts_open_figures']}")
    if naive:
        time_renders(naive_render, inputs, 2, max_bars)
        naive_times, naive_sizes = time_renders(naive_render, inputs, n, max_bars)
        figures["charts_naive_median_ms"] = statistics.median(naive_times)
        figures["charts_naive_p90_ms"] = p90(naive_times)
        print(f"naive mpf.plot: median {figures['charts_naive_median_ms']:.1f} ms, "
              f"p90 {figures['charts_naive_p90_ms']:.1f} ms, "
              f"PNG {statistics.median(naive_sizes) / 1024:.0f} KiB")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="charts to render (default 50)")
    parser.add_argument("--max-bars", type=int, default=150, help="bars per chart (default 150)")
    parser.add_argument("--naive", action="store_true", help="also time the out-of-the-box mplfinance render")
    args = parser.parse_args()
    main(args.n, args.max_bars, args.naive)
