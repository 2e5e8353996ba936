"""Celery tasks: thin calls into the services (no business logic here)."""

from __future__ import annotations

from tradetrail.db.types import utcnow
from tradetrail.services.scheduler import dispatch, run_claimed_slot
from tradetrail.services.sweep import sweep_interrupted
from tradetrail.worker.celery_app import celery_app

_app = None


def application():
    """The service app, built once per worker process (after the fork, so no connection is shared)."""
    global _app
    if _app is None:
        from tradetrail.services.app import build_app
        from tradetrail.settings import get_settings

        _app = build_app(get_settings())
    return _app


@celery_app.task(name="tradetrail.dispatch")
def dispatch_task() -> dict:
    return dispatch(application(), utcnow(), lambda strategy, slot_id: run_slot_task.delay(slot_id))


@celery_app.task(name="tradetrail.run_slot")
def run_slot_task(slot_id: int) -> str:
    return run_claimed_slot(application(), slot_id)


@celery_app.task(name="tradetrail.sweep")
def sweep_task() -> list[str]:
    """Executions left running by a dead process (a worker's lock is held while it runs, so live ones stay)."""
    return sweep_interrupted(application())
