"""Recorder overhead: what recording one no-op step costs (insert + commit of its lineage row).

Target: ≤ 0.5 ms per step on SQLite. Usage: python benchmarks/bench_recorder.py [--steps 200] [--repeat 7]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import bench_app, median, postgres_available
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.runs.executions import create_execution
from tradetrail.services.strategies.configs import get_strategy
from tradetrail.workflow.context import StepOutcome
from tradetrail.workflow.executor import execute
from tradetrail.workflow.recorder import LineageRecorder


def _noop(ctx):
    ctx.step_input["n"] = 1
    return StepOutcome(output={"ok": True, "value": 1.5})


def measure(backend: str, steps: int, repeat: int) -> float:
    with bench_app(backend) as app:
        info = init(app)
        with app.Session() as s:
            strategy = get_strategy(s, info["user_id"], "demo")
        recorder = LineageRecorder(app.engine, app.artifacts)
        per_step = []
        for _ in range(repeat):
            ctx = create_execution(app, strategy)
            t0 = time.perf_counter()
            execute(ctx, [(f"noop_{i}", _noop) for i in range(steps)], recorder)
            per_step.append((time.perf_counter() - t0) * 1000 / steps)
        return median(per_step)


def main(steps: int = 200, repeat: int = 7) -> dict:
    figures = {"recorder_ms_per_step_sqlite": measure("sqlite", steps, repeat)}
    if postgres_available():
        figures["recorder_ms_per_step_postgresql"] = measure("postgresql", steps, repeat)
    for name, value in figures.items():
        print(f"{name}: {value:.3f} ms (median of {repeat} runs of {steps} no-op steps)")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    main(args.steps, args.repeat)
