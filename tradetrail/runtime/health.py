"""What ``/health`` reports: database, broker session, scheduler, worker queue. It never raises."""

from __future__ import annotations

from sqlalchemy import text

from tradetrail import __version__
from tradetrail.db.migrate import current_revision, head_revision
from tradetrail.settings import CONTROL_QUEUE, RUNS_QUEUE


def _database(app) -> dict:
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(app.engine)
        return {"ok": revision == head_revision(), "revision": revision, "backend": app.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return {"ok": False, "error": type(exc).__name__}


def _broker(app) -> dict:
    try:
        h = app.broker.health()
        return {"ok": h.healthy, **h.to_dict()}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}


def _scheduler(app, scheduler) -> dict:
    s = app.settings
    if not s.scheduler_enabled:
        return {"ok": True, "mode": "off"}
    if s.executor == "celery":
        return {"ok": True, "mode": "celery", "note": "Celery beat dispatches; this process does not"}
    if scheduler is None:
        return {"ok": True, "mode": "embedded", "running": False, "note": "not started in this process"}
    return {"mode": "embedded", **scheduler.status(), "interval_s": s.scheduler_interval_s}


def _queue(app) -> dict:
    s = app.settings
    if s.executor != "celery":
        return {"ok": True, "mode": "embedded", "note": f"executions run in this process"
                f"{f' and {s.embedded_processes - 1} helper process(es)' if s.embedded_processes > 1 else ''}"}
    try:
        import redis

        client = redis.Redis.from_url(s.redis_url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        # A growing control backlog means no worker consumes it: nothing is being dispatched.
        return {"ok": True, "mode": "celery", "pending": int(client.llen(RUNS_QUEUE)),
                "control_pending": int(client.llen(CONTROL_QUEUE))}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "mode": "celery", "error": type(exc).__name__}


def health_report(app, *, scheduler=None) -> dict:
    checks = {"database": _database(app), "broker": _broker(app), "scheduler": _scheduler(app, scheduler),
              "worker_queue": _queue(app)}
    ok = all(c["ok"] for c in checks.values())
    return {"status": "ok" if ok else "degraded", "version": __version__, "checks": checks}
