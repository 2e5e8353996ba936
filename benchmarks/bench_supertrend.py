"""SuperTrend on 10,000 daily bars: the best of several timings, and its ratio to TA-Lib's ATR over the same
bars measured in the same run (SuperTrend is ATR plus one pass over the bands, so the ratio says how much the
pass costs, whatever the machine's speed). The figure that used to be a timed test assertion (< 50 ms).
Usage: python benchmarks/bench_supertrend.py [--bars 10000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import talib  # noqa: E402

from tradetrail.domain.supertrend import supertrend  # noqa: E402
from tradetrail.marketdata.sample import load_sample_daily  # noqa: E402


def _best_ms(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main(bars: int = 10_000, repeat: int = 7) -> dict:
    daily = load_sample_daily("SPX")
    reps = -(-bars // len(daily))
    h, low, c = (np.tile(daily[k].to_numpy(dtype=float), reps)[:bars] for k in ("high", "low", "close"))
    supertrend(h, low, c)  # warm-up
    st_ms = _best_ms(lambda: supertrend(h, low, c), repeat)
    atr_ms = _best_ms(lambda: talib.ATR(h, low, c, timeperiod=10), repeat)
    figures = {"supertrend_ms_10k_bars": st_ms, "supertrend_vs_talib_atr_ratio": st_ms / atr_ms if atr_ms else None}
    print(f"supertrend: {st_ms:.3f} ms for {bars} bars (best of {repeat}); TA-Lib ATR: {atr_ms:.3f} ms; "
          f"ratio {figures['supertrend_vs_talib_atr_ratio']:.1f}x")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    main(args.bars, args.repeat)
