"""/health notices what stops an unattended deployment: each situation made for real, then the report read.

Distributed mode is read through Redis as beat, the control worker and the runs workers leave it (real
processes in test_health_processes.py); here the stamps are written as the dispatch task and a worker write
them, with the ages a stopped beat or a gone worker leaves behind."""

from __future__ import annotations

import time
from datetime import timedelta

import redis
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.helpers import demo
from tests.support.ibkr import ibkr_app
from tradetrail.db.models import Execution, Strategy
from tradetrail.db.types import utcnow
from tradetrail.observability import heartbeats
from tradetrail.runtime.build import build_app
from tradetrail.runtime.health import health_report
from tradetrail.server.app import create_app
from tradetrail.services.runs.executions import run_strategy
from tradetrail.services.scheduling.embedded import EmbeddedService
from tradetrail.settings import RUNS_QUEUE


def test_a_healthy_embedded_setup_says_ok_over_http(app):
    demo(app)  # a scheduled strategy created now: nothing is due yet
    response = TestClient(create_app(app, background=False)).get("/health")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["reasons"] == []
    assert body["checks"]["overdue_slots"]["overdue"] == 0
    assert body["checks"]["stuck_executions"]["stuck"] == 0
    assert body["checks"]["ibkr_session"] == {"ok": True, "used": False}


def test_overdue_strategies_make_health_not_ok(app):
    demo(app)
    with app.engine.begin() as conn:  # created three days ago and never claimed: weekday slots were due since
        conn.execute(update(Strategy).values(created_at=utcnow() - timedelta(days=3)))
    response = TestClient(create_app(app, background=False)).get("/health")
    assert response.status_code == 503
    body = response.json()
    overdue = body["checks"]["overdue_slots"]
    assert overdue["ok"] is False and overdue["overdue"] == 1 and overdue["strategies"] == ["demo"]
    assert body["status"] == "degraded"
    assert any(r.startswith("overdue_slots: 1 strategy has a slot due since") for r in body["reasons"])


def test_an_execution_running_past_the_bound_makes_health_not_ok(app):
    user_id, _ = demo(app)
    summary = run_strategy(app, user_id, "demo")
    assert health_report(app)["checks"]["stuck_executions"]["ok"] is True
    with app.engine.begin() as conn:  # the row a process that hung (or died unswept) leaves behind
        long_ago = utcnow() - timedelta(seconds=app.settings.health_running_max_s + 60)
        conn.execute(update(Execution).where(Execution.id == summary.execution_id).values(
            status="running", finished_at=None, started_at=long_ago))
    report = health_report(app)
    stuck = report["checks"]["stuck_executions"]
    assert stuck["ok"] is False and stuck["stuck"] == 1 and stuck["oldest"] == [summary.execution_id]
    assert report["status"] == "degraded"
    assert f"oldest {summary.execution_id}" in stuck["reason"]


def _celery_app(settings, url, **extra):
    return build_app(settings.model_copy(update={"executor": "celery", "redis_url": url, "scheduler_interval_s": 1.0,
                                                 **extra}), migrate=False)


def test_celery_beat_that_stopped_ticking_and_no_runs_worker_are_reported(settings, redis_url):
    url = redis_url
    app = _celery_app(settings, url)
    client = redis.Redis.from_url(url)
    try:
        report = health_report(app)
        assert report["status"] == "degraded"
        assert report["checks"]["scheduler"]["ok"] is False
        assert "never run" in report["checks"]["scheduler"]["reason"]
        assert report["checks"]["worker_queue"]["ok"] is False
        assert "no live worker consumes the runs queue" in report["checks"]["worker_queue"]["reason"]

        heartbeats.stamp_dispatch(url)  # what the dispatch task does each time beat sends it
        heartbeats.stamp_worker(url, "runs@test", [RUNS_QUEUE], ttl_s=30)  # what a runs worker keeps alive
        report = health_report(app)
        assert report["checks"]["scheduler"]["ok"] is True
        assert report["checks"]["worker_queue"]["ok"] is True and report["checks"]["worker_queue"]["workers"] == [
            "runs@test"]
        assert report["status"] == "ok", report["reasons"]

        heartbeats.stamp_dispatch(url, now=time.time() - 60)  # beat stopped a minute ago
        report = health_report(app)
        assert report["checks"]["scheduler"]["ok"] is False
        assert "beat has not dispatched for 60 s" in report["checks"]["scheduler"]["reason"]
        assert report["status"] == "degraded"

        heartbeats.stamp_dispatch(url)
        heartbeats.forget_worker(url, "runs@test")  # the only runs worker stopped
        heartbeats.stamp_worker(url, "control@test", ["tradetrail.control"], ttl_s=30)  # a control one is left
        report = health_report(app)
        assert report["checks"]["worker_queue"]["ok"] is False and report["status"] == "degraded"
    finally:
        client.flushdb()


def test_the_embedded_dispatcher_stopping_is_reported(settings):
    app = build_app(settings.model_copy(update={"scheduler_interval_s": 0.2}), migrate=False)
    service = EmbeddedService(app)
    service.start()
    try:
        deadline = time.monotonic() + 10
        while service.scheduler.last_pass is None and time.monotonic() < deadline:
            time.sleep(0.05)
        checks = health_report(app, scheduler=service)["checks"]["scheduler"]
        assert checks["ok"] is True and checks["last_pass_age_s"] is not None
        service.scheduler.stop()
        report = health_report(app, scheduler=service)
        assert report["checks"]["scheduler"]["ok"] is False
        assert report["checks"]["scheduler"]["reason"] == "the embedded dispatcher has stopped"
        assert report["status"] == "degraded"
    finally:
        service.stop()


def test_the_ibkr_session_state_is_reported(settings):
    with FakeGateway(pacing_scale=0.02) as gw:
        app = ibkr_app(settings, gw)
        check = health_report(app)["checks"]["ibkr_session"]
        assert check["ok"] is True and check["authenticated"] is True and check["used"] is True
        gw.competing = True  # someone logged in to TWS with the same user: the gateway cannot take it back
        report = health_report(app)
        assert report["checks"]["ibkr_session"]["ok"] is False
        assert report["checks"]["ibkr_session"]["reason"] == "another session of this IBKR user is active"
        assert report["status"] == "degraded"
