"""Backtests over the bundled S&P 500 daily series, 1999-01-04 .. 2018-12-31 (5,031 sessions), beside backtrader
in one run (issue #14). Medians of ``--repeat`` runs.

- Crossover: the SMA(20/50) plug-in, fixed size 1, no protective orders, no costs; backtrader runs the same
  strategy on the same frame (already in memory: cerebro built and run). Ours is timed twice: the report's
  ``duration_ms`` (configuration and bars to report) and the wall time of loading the data (the sample
  loader's cache cleared, the file read again) plus ``backtest()``. The closed trades of both are compared.
- Demo: the demo strategy (rules analyst, brackets, 3-of-4 and weekly confirmation) with the simulator's
  default costs over the same 20 years.
- Grid: 20 SMA combinations (fast 5..25 x slow 50..200), one after the other in this process.

Target: ours, data loading included, >= 20x faster than backtrader, with identical closed trades.
Usage: python benchmarks/bench_backtest.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median, reference_loop_ms  # noqa: E402
from tests.support.backtrader_crossover import (  # noqa: E402
    END,
    START,
    backtrader_closed_trades,
    closed_trades,
    crossover_config,
    exchange_frame,
    run_backtrader,
    run_ours,
)
from tradetrail.analyst.rules import RulesAnalyst  # noqa: E402
from tradetrail.backtest.runner import backtest  # noqa: E402
from tradetrail.marketdata.sample import load_sample_daily  # noqa: E402
from tradetrail.services.accounts.bootstrap import demo_config  # noqa: E402

GRID = list(itertools.product((5, 10, 15, 20, 25), (50, 100, 150, 200)))


def _ms(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def _loaded_and_run(config):
    load_sample_daily.cache_clear()  # the file read and parsed again, as a fresh process would
    return run_ours(config, load_sample_daily("SPX"))


def crossover(repeat: int) -> dict:
    config = crossover_config(20, 50)
    frame = exchange_frame(load_sample_daily("SPX"))
    theirs = run_backtrader(frame)  # warm-up (imports, first-call caches), also the trades compared
    ours = _loaded_and_run(config)
    bt_ms, wall_ms, duration_ms = [], [], []
    for _ in range(repeat):
        ms, _ = _ms(lambda: run_backtrader(frame))
        bt_ms.append(ms)
        ms, out = _ms(lambda: _loaded_and_run(config))
        wall_ms.append(ms)
        duration_ms.append(out.report["duration_ms"])
    mine, reference = closed_trades(ours), backtrader_closed_trades(theirs)
    figures = {"backtrader_ms": median(bt_ms), "ours_wall_ms": median(wall_ms),
               "ours_duration_ms": median(duration_ms), "ours_closed_trades": len(mine),
               "backtrader_closed_trades": len(reference), "identical_closed_trades": mine == reference}
    figures["speedup_wall"] = figures["backtrader_ms"] / figures["ours_wall_ms"]
    figures["speedup_duration"] = figures["backtrader_ms"] / figures["ours_duration_ms"]
    print(f"crossover SMA(20/50), {START}..{END}, median of {repeat}:")
    print(f"  backtrader          {figures['backtrader_ms']:8.1f} ms  {len(reference)} closed trades")
    print(f"  ours, load + run    {figures['ours_wall_ms']:8.1f} ms  {len(mine)} closed trades  "
          f"-> {figures['speedup_wall']:.1f}x (target >= 20x)")
    print(f"  ours, duration_ms   {figures['ours_duration_ms']:8.1f} ms                    "
          f"-> {figures['speedup_duration']:.1f}x")
    print(f"  closed trades identical (sessions and prices): {'yes' if mine == reference else 'NO'}")
    return figures


def demo(repeat: int) -> dict:
    config = demo_config()
    bars = load_sample_daily("SPX")
    analyst = RulesAnalyst(config.analyst.atr_stop_multiple, config.analyst.reward_risk)
    times, out = [], None
    for _ in range(repeat):
        ms, out = _ms(lambda: backtest(config, config.symbol, bars, START, END, analyst, execution_id="bench"))
        times.append(ms)
    report = out.report
    closed = sum(t["exit_date"] is not None for t in report["trades"])
    paused = f", paused from {report['paused']['date']} (consecutive losses)" if report["paused"] else ""
    print(f"demo strategy (rules, brackets, 3-of-4, weekly), {START}..{END}: {median(times):.1f} ms, "
          f"{closed} closed trades of {len(report['trades'])}, {report['warmup_sessions']} warm-up sessions, "
          f"{report['visited_sessions']} sessions decided{paused}")
    return {"demo_ms": median(times), "demo_closed_trades": closed}


def grid(repeat: int) -> dict:
    bars = load_sample_daily("SPX")
    configs = [crossover_config(fast, slow) for fast, slow in GRID]
    totals, trades = [], []
    for _ in range(repeat):
        ms, outs = _ms(lambda: [run_ours(c, bars) for c in configs])
        totals.append(ms)
        trades = [len(closed_trades(o)) for o in outs]
    total = median(totals)
    print(f"grid of {len(GRID)} SMA combinations (fast 5..25 x slow 50..200), sequential: {total:.1f} ms total, "
          f"{total / len(GRID):.1f} ms per run; closed trades {min(trades)}..{max(trades)}")
    return {"grid_20_ms": total, "grid_per_run_ms": total / len(GRID)}


def main(repeat: int = 7) -> dict:
    figures = {"reference_loop_ms": reference_loop_ms()}
    print(f"machine: reference loop {figures['reference_loop_ms']:.1f} ms")
    figures.update(crossover(repeat))
    figures.update(demo(max(1, min(repeat, 3))))
    figures.update(grid(max(1, min(repeat, 3))))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (the demo and the grid: up to 3)")
    main(parser.parse_args().repeat)
