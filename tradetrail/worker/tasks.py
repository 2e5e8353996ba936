"""Celery tasks: thin calls into the services (no business logic here)."""

from __future__ import annotations

import logging

from tradetrail.db.types import utcnow
from tradetrail.observability.heartbeats import stamp_dispatch
from tradetrail.services.scheduling.scheduler import dispatch, run_claimed_slot, start_failed
from tradetrail.services.scheduling.sweep import sweep_interrupted
from tradetrail.worker.celery_app import RUNS_QUEUE, celery_app

log = logging.getLogger(__name__)
_app = None


def application():
    """The service app, built once per worker process, after the fork (so no connection is shared). It never
    migrates: ``tradetrail worker`` did before starting its processes, and a pool process that migrated
    would run schema changes from as many processes as the pool has, each on its first task."""
    global _app
    if _app is None:
        from tradetrail.runtime.build import build_app
        from tradetrail.settings import get_settings

        _app = build_app(get_settings(), migrate=False)
    return _app


@celery_app.task(name="tradetrail.dispatch")
def dispatch_task() -> dict:
    app = application()
    try:  # beat ticked: /health tells a stopped beat (or control worker) by this stamp's age
        stamp_dispatch(app.settings.redis_url)
    except Exception as exc:  # noqa: BLE001 - Redis is how this task arrived; never skip a pass for a stamp
        log.warning("dispatch heartbeat not stamped: %s", exc)
    return dispatch(app, utcnow(),
                    lambda strategy, slot_id: run_slot_task.apply_async(args=[slot_id], queue=RUNS_QUEUE))


@celery_app.task(name="tradetrail.run_slot", bind=True)
def run_slot_task(self, slot_id: int) -> str:
    """Run one claimed slot. If it fails before the run started (nothing has run: the app could not be built,
    the database or the lock was unreachable), it is tried again a few times, then the slot is recorded
    failed with the reason at once instead of waiting for the sweep."""
    try:
        return run_claimed_slot(application(), slot_id)
    except Exception as exc:
        from tradetrail.settings import get_settings

        retry_in = start_failed(get_settings(), slot_id, exc, attempt=self.request.retries + 1)
        if retry_in is None:
            raise
        raise self.retry(exc=exc, countdown=retry_in, max_retries=None) from exc


@celery_app.task(name="tradetrail.notify")
def notify_task() -> dict:
    """Deliver due notifications (beat sends this every TRADETRAIL_NOTIFY_INTERVAL_S; on the runs queue, so a
    slow receiver never delays the dispatcher). Concurrent ones are safe: each delivery is claimed with a lease."""
    from tradetrail.services.notifications.sender import prune, run_once
    from tradetrail.services.notifications.watch import raise_periodic_events

    app = application()
    if not app.settings.notify_enabled:
        return {}
    raise_periodic_events(app)
    report = run_once(app, budget_s=30.0)
    report["pruned"] = prune(app)
    return report


@celery_app.task(name="tradetrail.sweep")
def sweep_task() -> list[str]:
    """Executions left running by a dead process (a worker's lock is held while it runs, so live ones stay)."""
    return sweep_interrupted(application())
