"""One full execution of the demo pipeline (SQLite, sample data, rules analyst), with and without charts.

Targets: the analysis pipeline (steps 1-8) ≤ 30 ms without charts; the trading steps (9-12) add ≤ 10 ms.
Usage: python -m benchmarks.bench_execution [--runs 20]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import bench_app, median
from tradetrail.services.accounts.bootstrap import demo_config, init
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy

TRADING = ("risk_check", "place_order", "track_order", "update_portfolio")


def measure(charts: bool, runs: int) -> tuple[float, dict[str, float]]:
    with bench_app("sqlite") as app:
        user_id = init(app)["user_id"]
        config = demo_config()
        config.charts.enabled = charts
        with app.Session() as s:
            save_strategy(s, app, user_id, "bench", config)
        run_strategy(app, user_id, "bench")  # warm-up: imports, caches, first chart
        totals, per_step = [], {}
        for _ in range(runs):
            t0 = time.perf_counter()
            summary = run_strategy(app, user_id, "bench")
            totals.append((time.perf_counter() - t0) * 1000)
            if summary.status != "succeeded":
                raise SystemExit(f"benchmark run failed: {summary.failed_step}: {summary.error}")
            for step in get_execution(app, summary.execution_id)["steps"]:
                per_step.setdefault(step["name"], []).append(step["duration_ms"])
        return median(totals), {k: median(v) for k, v in per_step.items()}


def main(runs: int = 20) -> dict:
    figures = {}
    for charts in (False, True):
        total, steps = measure(charts, runs)
        key = "execution_ms_with_charts" if charts else "execution_ms_without_charts"
        figures[key] = total
        trading = sum(steps[s] for s in TRADING)
        if not charts:
            figures["analysis_steps_ms_without_charts"] = sum(v for k, v in steps.items() if k not in TRADING)
            figures["trading_steps_ms"] = trading
        print(f"{key}: {total:.1f} ms (median of {runs}); trading steps {trading:.1f} ms")
        print("   " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    main(parser.parse_args().runs)
