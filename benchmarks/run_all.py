"""Every benchmark, one after the other (`make bench`). Figures are medians on this machine.

The scheduling benchmarks run smaller by default (200 strategies, 100 Celery tasks, one run each) so that
`make bench` stays a few minutes; `--full` runs them at the issue's size (1,000 strategies, 300 tasks,
three runs each), as quoted in the README.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (  # noqa: E402
    bench_api,
    bench_backtest,
    bench_celery,
    bench_charts,
    bench_execution,
    bench_orders,
    bench_recorder,
    bench_schedule,
    bench_supertrend,
)


def main(full: bool = False) -> None:
    figures = {}
    for bench in (bench_recorder, bench_execution, bench_orders, bench_charts, bench_supertrend):
        print(f"== {bench.__name__.rsplit('.', 1)[-1]}")
        figures.update(bench.main())
    print("== bench_backtest")
    figures.update(bench_backtest.main(repeat=7 if full else 3))
    print("== bench_schedule")
    figures.update(bench_schedule.main(count=1000 if full else 200, runs=3 if full else 1))
    print("== bench_api")
    figures.update(bench_api.main(rate=200, seconds=15 if full else 5))
    print("== bench_celery")
    figures.update(bench_celery.main(count=300 if full else 100, runs=3 if full else 1))
    print("== summary")
    for name, value in figures.items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="the scheduling benchmarks at full size")
    main(parser.parse_args().full)
