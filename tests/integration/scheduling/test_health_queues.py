"""/health in distributed mode counts both Celery queues (a control backlog means nobody dispatches) and is not
ok while no live worker consumes the runs queue, whatever the counts."""

from __future__ import annotations

import redis

from tradetrail.runtime.build import build_app
from tradetrail.runtime.health import health_report
from tradetrail.settings import CONTROL_QUEUE, RUNS_QUEUE, Settings


def test_health_reports_the_runs_and_the_control_backlog(settings: Settings, redis_url: str) -> None:
    url = redis_url
    app = build_app(settings.model_copy(update={"executor": "celery", "redis_url": url}), migrate=False)
    client = redis.Redis.from_url(url)
    client.rpush(RUNS_QUEUE, "a", "b")
    client.rpush(CONTROL_QUEUE, "c", "d", "e")
    try:
        queue = health_report(app)["checks"]["worker_queue"]
    finally:
        client.flushdb()
    assert (queue["mode"], queue["pending"], queue["control_pending"]) == ("celery", 2, 3)
    assert queue["ok"] is False and queue["workers"] == []  # nothing runs here: no worker heartbeat
    assert queue["reason"].startswith("no live worker consumes the runs queue")
