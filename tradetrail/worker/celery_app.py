"""Distributed mode (``TRADETRAIL_EXECUTOR=celery``): Celery with Redis. Beat triggers the same dispatcher
the embedded mode uses; workers run the claimed slots.

Delivery: tasks are acknowledged only when they finish (``acks_late``), a task whose worker process dies
is rejected back to the queue (``task_reject_on_worker_lost``), and an unacknowledged task whose whole
worker vanished comes back after ``TRADETRAIL_CELERY_VISIBILITY_TIMEOUT_S``. A slot delivered again is
never run twice: :func:`tradetrail.services.scheduler.run_claimed_slot` marks a slot whose worker was
lost as failed, and its execution as interrupted, instead of repeating an order path. Beat also sends the
sweep (``services/sweep.py``) every ``TRADETRAIL_SWEEP_INTERVAL_S``, so an execution whose process died
is marked failed even when no task of it is delivered again.
"""

from __future__ import annotations

from celery import Celery

from tradetrail.settings import Settings, get_settings


def make_celery(settings: Settings) -> Celery:
    vt = settings.celery_visibility_timeout_s
    app = Celery("tradetrail", broker=settings.redis_url, include=["tradetrail.worker.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Kombu sweeps abandoned messages every interval x throttle seconds (100 s by default); sweep at
        # least three times per visibility timeout so a lost worker's task comes back on time.
        broker_transport_options={"visibility_timeout": vt,
                                  "unacked_restore_interval": max(1, min(10, vt // 3)),
                                  "unacked_restore_throttle": 1},
        broker_connection_retry_on_startup=True,
        task_default_queue="tradetrail",
        task_ignore_result=True,
        timezone="UTC",
        beat_schedule={"dispatch": {"task": "tradetrail.dispatch", "schedule": settings.scheduler_interval_s},
                       "sweep": {"task": "tradetrail.sweep", "schedule": settings.sweep_interval_s}},
        worker_hijack_root_logger=False,
    )
    return app


celery_app = make_celery(get_settings())
