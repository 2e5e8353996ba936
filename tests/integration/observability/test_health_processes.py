"""/health against real Celery processes: a worker and beat running say ok; beat stopped is noticed within a
few intervals; the runs worker stopped leaves no one consuming the runs queue. Metrics from the worker's
pool processes reach the serving process's exposition through the shared folder."""

from __future__ import annotations

import time

import pytest

from tests.support.celery_procs import Procs
from tests.support.helpers import wait_for
from tradetrail.runtime.build import build_app
from tradetrail.runtime.health import health_report

pytestmark = pytest.mark.once  # processes stopping and being noticed: the same on either backend


def test_beat_and_worker_stopping_are_noticed(settings, cli_env, redis_url, procs):
    env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url,
           "TRADETRAIL_SCHEDULER_INTERVAL_S": "1", "TRADETRAIL_WORKER_HEARTBEAT_S": "1",
           "TRADETRAIL_WORKER_CONCURRENCY": "1"}
    app = build_app(settings.model_copy(update={"executor": "celery", "redis_url": redis_url,
                                                "scheduler_interval_s": 1.0, "worker_heartbeat_s": 1.0}),
                    migrate=False)
    worker = procs.start(env, "worker", log="worker.log")
    beat = procs.start(env, "beat", log="beat.log")

    def checks():
        return health_report(app)["checks"]

    wait_for(lambda: checks()["scheduler"]["ok"] and checks()["worker_queue"]["ok"], 60, "beat and worker up")
    report = health_report(app)
    assert report["status"] == "ok", report["reasons"]
    assert report["checks"]["worker_queue"]["workers"]

    Procs.stop(beat)
    started = time.monotonic()
    reason = wait_for(lambda: (c := checks()["scheduler"])["ok"] is False and c["reason"], 40, "beat noticed stopped")
    assert "beat has not dispatched" in reason
    assert time.monotonic() - started < 30
    assert health_report(app)["status"] == "degraded"

    Procs.stop(worker)  # a warm shutdown: its heartbeat key goes with it (or expires after three beats)
    reason = wait_for(lambda: (c := checks()["worker_queue"])["ok"] is False and c["reason"], 30, "no worker")
    assert "no live worker consumes the runs queue" in reason
