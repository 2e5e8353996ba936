"""Distributed mode: executions per second with 1 and 2 Celery worker processes.

Real processes and services: `tradetrail worker --concurrency 1` processes on the local Redis, a PostgreSQL
database created for the benchmark and dropped after it, local artifacts. The slots are claimed by the
real dispatcher and sent as `tradetrail.run_slot` tasks; the clock runs from the first task sent (workers
already up and answering a ping) to the last slot settled. Every execution must succeed.

The strategies are the default pipeline (rules analyst, both charts) over ``--groups`` distinct bar
sets, as in `bench_schedule.py`. Redis db 0 (`TRADETRAIL_BENCH_REDIS`): the tests use dbs 1-15, and the
benchmark refuses to start if the queue there is not empty; it deletes what it left.
Usage: python -m benchmarks.bench_celery [--count 300] [--runs 3] [--workers 1,2] [--groups 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import redis
from sqlalchemy import func, select

from benchmarks.bench_schedule import create_due, load
from benchmarks.common import pg_database, postgres_available
from tradetrail.db.models import Execution, ScheduleSlot
from tradetrail.db.types import utcnow
from tradetrail.runtime.build import build_app
from tradetrail.services.accounts.bootstrap import init
from tradetrail.services.scheduling.scheduler import dispatch
from tradetrail.settings import Settings
from tradetrail.worker.celery_app import make_celery

BIN = Path(sys.executable).with_name("tradetrail")
REDIS = os.environ.get("TRADETRAIL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SETTLED = ("done", "failed", "skipped")
QUEUE = "tradetrail"  # what `tradetrail worker` consumes (fixed in the CLI)


def prepare(app, count: int, n_groups: int) -> None:
    """``count`` strategies due now (every minute, created a minute ago: one slot each is due)."""
    init(app)
    with app.Session() as s:
        create_due(s, app, count, n_groups, cron="* * * * *", created_at=utcnow() - timedelta(seconds=61))
        s.commit()


def start_workers(n: int, env: dict) -> list[subprocess.Popen]:
    command = [str(BIN), "worker", "--concurrency", "1", "--queues", "runs", "--loglevel", "WARNING"]
    return [subprocess.Popen(command, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def _terminate(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")  # so the workers are stopped on the way out


def run_once(count: int, n_workers: int, n_groups: int) -> dict:
    queue = QUEUE
    with tempfile.TemporaryDirectory(prefix="tradetrail-bench-") as home, pg_database() as url:
        settings = Settings(home=Path(home), database_url=url, executor="celery", redis_url=REDIS)
        app = build_app(settings)
        prepare(app, count, n_groups)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADETRAIL_")}
        env.update(TRADETRAIL_HOME=home, TRADETRAIL_DATABASE_URL=url, TRADETRAIL_EXECUTOR="celery",
                   TRADETRAIL_REDIS_URL=REDIS)
        producer = make_celery(settings)
        workers = start_workers(n_workers, env)
        try:
            deadline = time.monotonic() + 120
            while len(producer.control.ping(timeout=1.0) or []) < n_workers:
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise SystemExit("the workers did not come up")
            before = load()
            t0 = time.perf_counter()
            sent = []
            dispatch(app, utcnow(), lambda strategy, slot_id: (
                sent.append(slot_id), producer.send_task("tradetrail.run_slot", args=[slot_id], queue=queue)))
            while True:
                time.sleep(0.2)
                with app.Session() as s:
                    settled = s.scalar(select(func.count(ScheduleSlot.id)).where(
                        ScheduleSlot.id.in_(sent), ScheduleSlot.status.in_(SETTLED)))
                if settled >= len(sent):
                    break
                if time.perf_counter() - t0 > 1800:
                    raise SystemExit(f"gave up: {settled} of {len(sent)} slots settled after 30 min")
            wall = time.perf_counter() - t0
            with app.Session() as s:
                by_status = Counter(s.scalars(select(Execution.status).where(Execution.trigger == "schedule")))
        finally:
            stop(workers)
            producer.close()
            client = redis.Redis.from_url(REDIS)
            client.delete(queue)
            client.close()
            app.engine.dispose()
    return {"wall_s": wall, "sent": len(sent), "by_status": dict(by_status), "per_s": len(sent) / wall,
            "load": f"{before} -> {load()}"}


def main(count: int = 300, runs: int = 3, workers: tuple[int, ...] = (1, 2), n_groups: int = 10) -> dict:
    signal.signal(signal.SIGTERM, _terminate)
    client = redis.Redis.from_url(REDIS)
    waiting = client.llen(QUEUE)
    client.close()
    if waiting:
        raise SystemExit(f"{REDIS} already has {waiting} message(s) in {QUEUE!r}: someone else uses it")
    if not postgres_available():
        print("PostgreSQL is not available: skipped")
        return {}
    figures = {}
    for n in workers:
        results = []
        for i in range(runs):
            r = run_once(count, n, n_groups)
            results.append(r)
            print(f"{n} worker(s), run {i + 1}: {r['sent']} executions in {r['wall_s']:.1f} s = {r['per_s']:.2f}/s; "
                  f"executions {r['by_status']}; {r['load']}", flush=True)
            if r["by_status"] != {"succeeded": r["sent"]} or r["sent"] != count:
                raise SystemExit(f"not every execution succeeded: {r['by_status']} of {r['sent']} sent")
        per_s = statistics.median(r["per_s"] for r in results)
        print(f"{n} worker process(es): median {per_s:.2f} executions/s over {runs} runs of {count}")
        figures[f"celery_{n}_workers_per_s"] = per_s
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure, e.g. 1,2")
    parser.add_argument("--groups", type=int, default=10)
    a = parser.parse_args()
    main(a.count, a.runs, tuple(int(x) for x in a.workers.split(",")), a.groups)
