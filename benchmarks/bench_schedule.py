"""Embedded mode under load: N strategies due in the same minute, a model that takes 2 s per answer.

Target (issue #5): 1,000 strategies complete within 60 s on the 2-core box. What runs is the real thing:
what `tradetrail serve` runs in embedded mode (`services/scheduling/embedded.py::EmbeddedService`: this process's
dispatcher loop and thread pool plus ``--processes`` - 1 helper processes doing the same,
`services/scheduling/run_processes.py`), every step of every execution with the model analyst over HTTP, lineage
recorded, orders through the simulated broker. The model (`benchmarks/model_server.py`) runs in its own
process, as a real one would be elsewhere.

Strategies are spread over ``--groups`` users (one simulated account each); each group reads one series
(SPX or COMP) from its own replay start, so a process draws up to 2 x groups distinct charts and takes the
others from its render cache. Every run starts cold (caches cleared, fresh database, new helper processes)
after one warm-up execution on a session no measured strategy sees (imports, the model client). The
strategies are due at a whole minute about a minute ahead; the service starts as `serve` starts it, and
the clock runs from that minute (the scheduled time) to the last slot settled. CPU is this process's and
its helpers' over that time (user + system; "system" is this process's alone). Each run also prints a
fixed pure-Python loop's time and the CPU the hypervisor took from this virtual machine (steal): the same
box runs at different speeds on different days, and the runs' wall times follow the stolen CPU. To see where the
time goes: `py-spy record --gil --subprocesses -- python -m ...`.
Usage: python -m benchmarks.bench_schedule [--count 1000] [--groups 10] [--runs 3] [--workers 100]
       [--processes 2] [--cpu-slots 1] [--latency 2] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from benchmarks.common import bench_app, reference_loop_ms, stolen_s
from tradetrail.charts.cache import chart_cache
from tradetrail.db.models import Execution, LineageStep, ScheduleSlot, Strategy
from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.accounts.bootstrap import ensure_user, init
from tradetrail.services.runs.executions import run_strategy
from tradetrail.services.scheduling.embedded import EmbeddedService
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings
from tradetrail.workflow.memo import bars_memo

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 60.0
SETTLED = ("done", "failed", "skipped")


def start_model(latency_s: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.model_server", "--latency", str(latency_s)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if not line or line[0] != "port":
        proc.kill()
        raise SystemExit("the model server did not start")
    return proc, f"http://127.0.0.1:{line[1]}/v1"


def groups(n: int) -> list[tuple[str, date]]:
    """n distinct (series, replay start) pairs: SPX and COMP from a session every four weeks of 2010-2011."""
    return [(("SPX", "COMP")[i % 2], date(2010, 1, 4) + timedelta(weeks=4 * (i // 2))) for i in range(n)]


def create_due(s, app, count: int, n_groups: int, *, cron: str, created_at, extra: dict | None = None) -> None:
    """``count`` strategies over ``n_groups`` users and bar sets, on ``cron`` (UTC), created at ``created_at``
    (so their first slot is due); the caller commits. Shared with bench_celery."""
    pairs = groups(n_groups)
    users = [ensure_user(app, f"bench{g:03d}") for g in range(n_groups)]
    for i in range(count):
        symbol, start = pairs[i % n_groups]
        config = StrategyConfig.model_validate({
            "symbol": symbol, **(extra or {}), "schedule": {"cron": cron, "timezone": "UTC"},
            "market_data": {"source": "sample", "replay_start": start.isoformat()}})
        save_strategy(s, app, users[i % n_groups], f"bench-{i:04d}", config)
    s.execute(update(Strategy).values(created_at=created_at))


LEAD_S = 45  # creating the strategies, the warm-up and the helpers' start-up fit well inside this


def prepare(app, count: int, n_groups: int) -> datetime:
    """``count`` strategies, all due at the first whole minute at least ``LEAD_S`` away (and not again for a
    day); returns that minute."""
    init(app)
    now = utcnow()
    due = (now + timedelta(seconds=LEAD_S + 60)).replace(second=0, microsecond=0)
    with app.Session() as s:
        create_due(s, app, count, n_groups, cron=f"{due.minute} {due.hour} * * *", created_at=now,
                   extra={"analyst": {"kind": "llm"}})
        s.commit()
        # Warm-up (imports, the model client), on a session no measured strategy sees: no cache is primed.
        warm = StrategyConfig.model_validate({"symbol": "SPX", "analyst": {"kind": "llm"},
                                              "market_data": {"source": "sample", "replay_start": "2009-06-01"}})
        first_user = ensure_user(app, "bench000")
        save_strategy(s, app, first_user, "warm-up", warm)
    summary = run_strategy(app, first_user, "warm-up")
    if summary.status != "succeeded":
        raise SystemExit(f"the warm-up run failed: {summary.failed_step}: {summary.error}")
    return due


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(app, count: int, due: datetime) -> dict:
    """Start the service as `serve` does, wait until its helper processes are up and the minute ``due``
    comes, and time from that minute until every slot is settled."""
    scheduler = EmbeddedService(app)
    scheduler.start()
    try:
        if not scheduler.helpers.wait_ready(300):
            raise SystemExit("the helper processes did not start")
        helpers = scheduler.helpers.pids()
        late = (utcnow() - due).total_seconds()
        if late > 0:
            raise SystemExit(f"set-up took {late:.0f} s past the due minute: raise LEAD_S")
        time.sleep(-late - 0.5)
        steal0, cpu0, helpers0 = stolen_s(), os.times(), sum(proc_cpu_s(p) for p in helpers)
        while utcnow() < due:
            time.sleep(0.01)
        t0 = time.perf_counter()
        while True:
            time.sleep(0.25)
            with app.Session() as s:
                settled = s.scalar(select(func.count(ScheduleSlot.id)).where(ScheduleSlot.status.in_(SETTLED)))
            if settled >= count:
                break
            if time.perf_counter() - t0 > 20 * TARGET_S:
                raise SystemExit(f"gave up: {settled} of {count} slots settled after {20 * TARGET_S:.0f} s")
        wall = time.perf_counter() - t0
        steal1, cpu1, helpers1 = stolen_s(), os.times(), sum(proc_cpu_s(p) for p in helpers)
    finally:
        scheduler.stop()
    with app.Session() as s:
        slots = Counter(s.scalars(select(ScheduleSlot.status)).all())
        runs = s.execute(select(Execution.status, Execution.duration_ms, Execution.error)
                         .where(Execution.trigger == "schedule")).all()
        scheduled = select(Execution.id).where(Execution.trigger == "schedule")
        steps = s.execute(select(LineageStep.step_name, LineageStep.duration_ms)
                          .where(LineageStep.execution_id.in_(scheduled))).all()
        charts = s.scalars(select(LineageStep.output).where(LineageStep.step_name == "render_charts",
                                                            LineageStep.execution_id.in_(scheduled))).all()
    by_status = Counter(r.status for r in runs)
    durations = sorted(r.duration_ms for r in runs if r.duration_ms is not None)
    hits = Counter(v.get("cache") for out in charts for v in out.values() if isinstance(v, dict))
    errors = Counter(r.error for r in runs if r.error)
    per_step: dict[str, list[float]] = {}
    for name, ms in steps:
        per_step.setdefault(name, []).append(ms)
    return {"wall_s": wall, "cpu_s": cpu1.user + cpu1.system - cpu0.user - cpu0.system + helpers1 - helpers0,
            "stolen_s": steal1 - steal0 if steal0 is not None and steal1 is not None else float("nan"),
            "sys_s": cpu1.system - cpu0.system,
            "executions": len(runs), "by_status": dict(by_status),
            "slots": dict(slots),
            "p50_ms": statistics.median(durations) if durations else float("nan"),
            "p95_ms": durations[int(0.95 * (len(durations) - 1))] if durations else float("nan"),
            "per_s": len(runs) / wall, "chart_cache": dict(hits), "errors": errors.most_common(3),
            "steps_ms": {k: (statistics.median(v), sorted(v)[int(0.95 * (len(v) - 1))]) for k, v in per_step.items()}}


def run_once(args, url: str) -> dict:
    chart_cache.clear()  # every run starts cold: nothing drawn or computed by an earlier run is reused
    bars_memo.clear()
    with bench_app(args.backend, settings=lambda home, db: Settings(
            home=home, database_url=db, llm_base_url=url, llm_model="fake-vision",
            embedded_workers=args.workers, embedded_cpu_slots=args.cpu_slots,
            embedded_processes=args.processes)) as app:
        due = prepare(app, args.count, args.groups)
        return measure(app, args.count, due)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(count: int = 1000, runs: int = 3, groups_: int = 10, workers: int = 100, latency: float = 2.0,
         backend: str = "sqlite", cpu_slots: int = 1, processes: int = 2) -> dict:
    args = argparse.Namespace(count=count, runs=runs, groups=groups_, workers=workers, latency=latency,
                              backend=backend, cpu_slots=cpu_slots, processes=processes)
    model, url = start_model(latency)
    results = []
    try:
        for i in range(runs):
            before = load()
            speed = reference_loop_ms()
            model_cpu0 = proc_cpu_s(model.pid)
            r = run_once(args, url)
            r["reference_ms"], r["model_cpu_s"] = speed, proc_cpu_s(model.pid) - model_cpu0
            results.append(r)
            print(f"run {i + 1}: {count} executions in {r['wall_s']:.1f} s ({r['per_s']:.1f}/s), per execution "
                  f"p50 {r['p50_ms'] / 1000:.2f} s p95 {r['p95_ms'] / 1000:.2f} s; CPU {r['cpu_s']:.1f} s "
                  f"({1000 * r['cpu_s'] / count:.0f} ms/execution, system {r['sys_s']:.1f} s); "
                  f"executions {r['by_status']}; "
                  f"slots {r['slots']}; chart cache {r['chart_cache']}; {before} -> {load()}; "
                  f"reference loop {speed:.0f} ms; stolen by the hypervisor {r['stolen_s']:.1f} CPU-s "
                  f"of {(os.cpu_count() or 1) * r['wall_s']:.0f}; the fake model {r['model_cpu_s']:.1f} CPU-s",
                  flush=True)
            print("   step p50/p95 ms: " + ", ".join(f"{k} {a:.0f}/{b:.0f}" for k, (a, b) in r["steps_ms"].items()))
            if r["errors"]:
                print(f"   errors: {r['errors']}")
    finally:
        model.terminate()
        model.wait(timeout=10)
    wall = statistics.median(r["wall_s"] for r in results)
    print(f"median of {runs}: {wall:.1f} s for {count} strategies (target {TARGET_S:.0f} s for 1,000), "
          f"p50 {statistics.median(r['p50_ms'] for r in results) / 1000:.2f} s, "
          f"p95 {statistics.median(r['p95_ms'] for r in results) / 1000:.2f} s, "
          f"{statistics.median(r['per_s'] for r in results):.1f} executions/s "
          f"[{backend}, {processes} process(es) x {workers} threads, {cpu_slots} CPU slots each, {latency:g} s model, "
          f"{groups_} groups]")
    bad = [r["by_status"] for r in results if set(r["by_status"]) != {"succeeded"} or r["executions"] != count]
    if bad:
        raise SystemExit(f"not every execution succeeded: {bad}")
    cpu_ms = 1000 * statistics.median(r["cpu_s"] for r in results) / count
    return {f"schedule_{count}_wall_s_{backend}": wall, f"schedule_{count}_cpu_ms_per_execution_{backend}": cpu_ms}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--cpu-slots", type=int, default=1, help="per process")
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--processes", type=int, default=2, help="embedded run processes (one per core)")
    a = parser.parse_args()
    main(a.count, a.runs, a.groups, a.workers, a.latency, a.backend, a.cpu_slots, a.processes)
