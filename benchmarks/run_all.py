"""Every benchmark, one after the other (`make bench`). Figures are medians on this machine."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_charts, bench_execution, bench_orders, bench_recorder  # noqa: E402


def main() -> None:
    figures = {}
    for bench in (bench_recorder, bench_execution, bench_orders, bench_charts):
        print(f"== {bench.__name__.rsplit('.', 1)[-1]}")
        figures.update(bench.main())
    print("== summary")
    for name, value in figures.items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
