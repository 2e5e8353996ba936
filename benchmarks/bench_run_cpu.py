"""CPU per execution, one process, one run after another: where issue #12's target is checked between changes.

The same strategies as `benchmarks/bench_schedule.py` (users x bar sets, the model analyst over HTTP against
the fake model server, here answering at once), run with `run_strategy` one after another after one run per
bar set (imports, the model client, every chart drawn once: the measured runs take their charts from the
render cache, as all but the first 20 of a process do under the scheduler). Prints the mean and median CPU
(`time.process_time`) per execution. On a machine shared with other work, CPU time still moves with the load;
``--profile`` also counts the Python function calls per execution, which do not.

To compare two commits, run it from a worktree of each, alternating:
    PYTHONPATH=<worktree> python <worktree or any copy>/benchmarks/bench_run_cpu.py --count 100 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import time
from datetime import timedelta

from benchmarks.bench_schedule import create_due, start_model
from benchmarks.common import bench_app
from tradetrail.db.types import utcnow
from tradetrail.services.accounts.bootstrap import ensure_user, init
from tradetrail.services.runs.executions import run_strategy
from tradetrail.settings import Settings


def main(count: int, groups: int, backend: str, profile: bool, dump: str | None = None) -> dict:
    model, url = start_model(0.0)
    try:
        with bench_app(backend, settings=lambda home, db: Settings(home=home, database_url=db, llm_base_url=url,
                                                                   llm_model="fake-vision")) as app:
            init(app)
            with app.Session() as s:
                create_due(s, app, count + groups, groups, cron="0 3 * * *", created_at=utcnow() - timedelta(days=2),
                           extra={"analyst": {"kind": "llm"}})
                s.commit()
            users = [ensure_user(app, f"bench{g:03d}") for g in range(groups)]
            names = [(users[i % groups], f"bench-{i:04d}") for i in range(count + groups)]
            for user, name in names[:groups]:  # warm-up: one run per bar set, its charts drawn
                summary = run_strategy(app, user, name)
                if summary.status != "succeeded":
                    raise SystemExit(f"the warm-up run failed: {summary.failed_step}: {summary.error}")
            prof = cProfile.Profile(time.process_time) if profile else None
            per_run, statuses = [], {}
            for user, name in names[groups:]:
                t0 = time.process_time()
                if prof:
                    prof.enable()
                summary = run_strategy(app, user, name)
                if prof:
                    prof.disable()
                per_run.append((time.process_time() - t0) * 1000)
                statuses[summary.status] = statuses.get(summary.status, 0) + 1
    finally:
        model.terminate()
        model.wait(timeout=10)
    out = {"mean_ms": statistics.mean(per_run), "median_ms": statistics.median(per_run), "statuses": statuses}
    line = (f"{count} executions one after another: CPU {out['mean_ms']:.1f} ms mean, {out['median_ms']:.1f} ms "
            f"median per execution; {statuses}; load average {os.getloadavg()[0]:.2f}")
    if prof:
        out["calls"] = pstats.Stats(prof).total_calls / count
        if dump:
            prof.dump_stats(dump)
        line += f"; {out['calls']:,.0f} Python function calls per execution (profiled: CPU figures inflated)"
    print(line)
    if set(statuses) != {"succeeded"}:
        raise SystemExit(f"not every execution succeeded: {statuses}")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--profile", action="store_true", help="count function calls (slows every run)")
    parser.add_argument("--dump", help="with --profile: write the cProfile statistics to this file")
    a = parser.parse_args()
    main(a.count, a.groups, a.backend, a.profile, a.dump)
