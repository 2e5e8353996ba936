"""The in-process metrics: counted or timed where they happen, a few microseconds each, no SQL.

Everything is registered in prometheus_client's default registry, so in one process ``/metrics`` shows it as
is; with several processes (embedded helpers, Celery workers) ``multiprocess.py`` switches the values to
per-process files that the serving process adds up. Every metric has a label, so no value is created at
import: each is made on first use, after the process has chosen where values live.

Other packages record through the functions and counters here: the notification sender increments
:data:`NOTIFICATIONS_DELIVERED` / :data:`NOTIFICATIONS_FAILED` (or calls :func:`notification_delivered` /
:func:`notification_failed`) with the channel's URL scheme (``json``, ``mailto``, ``tgram``...), never the URL.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Steps range from well under a millisecond (the gate) to a minute (a model's answer).
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

EXECUTIONS_FINISHED = Counter("tradetrail_executions_finished_total",
                              "Executions this deployment finished, by how they ended", ["status"])
EXECUTION_SECONDS = Histogram("tradetrail_execution_duration_seconds", "Wall time of a whole execution",
                              ["status"], buckets=STEP_BUCKETS)
STEP_SECONDS = Histogram("tradetrail_step_duration_seconds", "Wall time of one pipeline step, per step",
                         ["step"], buckets=STEP_BUCKETS)
SCHEDULER_LAG = Histogram("tradetrail_scheduler_lag_seconds",
                          "From a schedule slot's due time to the start of its run", ["executor"],
                          buckets=LAG_BUCKETS)
NOTIFICATIONS_DELIVERED = Counter("tradetrail_notifications_delivered_total",
                                  "Notifications a channel acknowledged", ["channel_scheme"])
NOTIFICATIONS_FAILED = Counter("tradetrail_notifications_failed_total",
                               "Notification delivery attempts that failed", ["channel_scheme"])

# labels() takes a lock and builds a tuple each call; the executor calls it per step, so children are kept.
_steps: dict[str, object] = {}
_finished: dict[str, tuple[object, object]] = {}


def observe_step(step: str, seconds: float) -> None:
    child = _steps.get(step)
    if child is None:
        child = _steps[step] = STEP_SECONDS.labels(step)
    child.observe(seconds)


def execution_finished(status: str, seconds: float) -> None:
    pair = _finished.get(status)
    if pair is None:
        pair = _finished[status] = (EXECUTIONS_FINISHED.labels(status), EXECUTION_SECONDS.labels(status))
    pair[0].inc()
    pair[1].observe(seconds)


def scheduler_lag(seconds: float, executor: str) -> None:
    SCHEDULER_LAG.labels(executor).observe(max(0.0, seconds))


def notification_delivered(channel_scheme: str) -> None:
    NOTIFICATIONS_DELIVERED.labels(channel_scheme).inc()


def notification_failed(channel_scheme: str) -> None:
    NOTIFICATIONS_FAILED.labels(channel_scheme).inc()
