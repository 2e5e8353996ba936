"""Distributed mode (``TRADETRAIL_EXECUTOR=celery``): Celery with Redis. Beat triggers the same dispatcher
the embedded mode uses; workers run the claimed slots.

Two queues. ``tradetrail`` holds the runs, which occupy a pool process for as long as the model takes to
answer. ``tradetrail.control`` holds beat's dispatch and sweep, consumed by a process of their own
(``tradetrail worker`` starts one beside its pool; ``worker/supervisor.py``), so scheduling never waits
behind runs however busy the pool is. A dispatch or sweep message that waited longer than its interval
expires unrun: the next one does the same work, and a backlog of them never runs all at once.

Delivery: tasks are acknowledged only when they finish (``acks_late``), a task whose worker process dies
is rejected back to the queue (``task_reject_on_worker_lost``), and an unacknowledged task whose whole
worker vanished comes back after ``TRADETRAIL_CELERY_VISIBILITY_TIMEOUT_S``. A slot delivered again is
never run twice: :func:`tradetrail.services.scheduling.scheduler.run_claimed_slot` marks a slot whose worker was
lost as failed, and its execution as interrupted, instead of repeating an order path. A slot task that
fails before its run started is tried again (``worker/tasks.py``). Beat also sends the sweep
(``services/scheduling/sweep.py``) every ``TRADETRAIL_SWEEP_INTERVAL_S``, so an execution whose process died is
marked failed even when no task of it is delivered again.

Connections: a worker's pool processes are forked from its main process, which disposes of its database
connections first (``worker_init``) and each child forgets any it inherited (``worker_process_init``, and
``db/session.py`` on every fork), so no two processes ever share a database session.
"""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from tradetrail.settings import CONTROL_QUEUE, RUNS_QUEUE, Settings, get_settings

CONTROL_TASKS = ("tradetrail.dispatch", "tradetrail.sweep")


def make_celery(settings: Settings) -> Celery:
    vt = settings.celery_visibility_timeout_s
    app = Celery("tradetrail", broker=settings.redis_url, include=["tradetrail.worker.tasks"])
    control = {"queue": CONTROL_QUEUE}
    # A dispatch is idempotent and cheap (the database says what is due), so a stale one only wastes a pass;
    # expiry is stamped with beat's clock and read with the worker's, so it must outlast clock skew between
    # hosts (a worker 10 s ahead would otherwise drop every dispatch): a minute at least.
    dispatch_expires = max(60.0, 2 * settings.scheduler_interval_s)
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
        task_default_queue=RUNS_QUEUE,
        task_routes={name: control for name in CONTROL_TASKS},
        task_ignore_result=True,
        timezone="UTC",
        # Every interval, and at each whole minute as well: cron fires on whole minutes, so a 09:35 slot is
        # claimed at 09:35:00 rather than up to an interval later (as the embedded dispatcher does).
        beat_schedule={
            "dispatch": {"task": "tradetrail.dispatch", "schedule": settings.scheduler_interval_s,
                         "options": {**control, "expires": dispatch_expires}},
            "dispatch-minute": {"task": "tradetrail.dispatch", "schedule": crontab(),
                                "options": {**control, "expires": dispatch_expires}},
            "sweep": {"task": "tradetrail.sweep", "schedule": settings.sweep_interval_s,
                      "options": {**control, "expires": max(60.0, settings.sweep_interval_s)}},
            # notifications go on the runs queue: a slow receiver must never hold up the dispatcher
            "notify": {"task": "tradetrail.notify", "schedule": settings.notify_interval_s,
                       "options": {"queue": RUNS_QUEUE, "expires": max(60.0, 2 * settings.notify_interval_s)}}},
        worker_hijack_root_logger=False,
    )
    return app


@worker_init.connect
def _no_connections_before_the_pool_forks(**_) -> None:
    from tradetrail.db.session import dispose_all

    dispose_all(close=True)


@worker_process_init.connect
def _own_connections_in_each_pool_process(**_) -> None:
    from tradetrail.db.session import dispose_all

    dispose_all(close=False)  # already done by the fork hook; repeated here for any pool that forks otherwise


@worker_init.connect
def _metrics_folder_before_the_pool_forks(**_) -> None:
    from tradetrail.observability import multiprocess

    multiprocess.prepare(get_settings(), clean=False)  # the pool's processes inherit it; serve cleans


@worker_process_shutdown.connect
def _metrics_of_an_ended_pool_process(**_) -> None:
    from tradetrail.observability import multiprocess

    multiprocess.mark_dead()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger=None, **_) -> None:
    from tradetrail.observability import logs

    if logger is not None:
        logs.configure(get_settings(), logger)


_heartbeat = None


@worker_ready.connect
def _heartbeat_of_a_runs_worker(sender=None, **_) -> None:
    """A worker consuming the runs queue stamps its liveness in Redis (``/health``: is anyone taking runs?)."""
    global _heartbeat
    from tradetrail.observability.heartbeats import WorkerHeartbeat

    queues = sorted(q.name for q in getattr(getattr(sender, "task_consumer", None), "queues", ()) or ())
    if RUNS_QUEUE not in queues:
        return
    s = get_settings()
    _heartbeat = WorkerHeartbeat(s.redis_url, sender.hostname, queues, s.worker_heartbeat_s).start()


@worker_shutdown.connect
def _heartbeat_ends(**_) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()


celery_app = make_celery(get_settings())
