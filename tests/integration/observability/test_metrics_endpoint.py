"""/metrics after real runs: the executions, the step histograms, the orders, the broker, and who may read it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.api_client import api_user
from tests.support.helpers import demo
from tradetrail.runtime.build import build_app
from tradetrail.server.app import create_app
from tradetrail.services.runs.executions import run_strategy
from tradetrail.settings import Settings


def _value(text: str, name: str, **labels) -> float:
    """The sample ``name{labels}`` of an exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return 0.0


def test_metrics_show_the_runs_steps_orders_and_broker(app):
    user_id, _ = demo(app)
    caller = api_user(app, "demo", password=None)
    before = caller.get("/metrics").text
    summaries = [run_strategy(app, user_id, "demo") for _ in range(3)]
    response = caller.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    finished = {s.status for s in summaries}
    for status in finished:
        ran = sum(s.status == status for s in summaries)
        assert _value(text, "tradetrail_executions_finished_total", status=status) \
            - _value(before, "tradetrail_executions_finished_total", status=status) == ran
        assert _value(text, "tradetrail_executions", status=status) == ran  # read from the database
    # one observation per recorded step of the three runs
    from tradetrail.services.runs.executions import get_execution

    steps = [step["name"] for s in summaries for step in get_execution(app, s.execution_id)["steps"]]
    assert steps
    for name in set(steps):
        delta = (_value(text, "tradetrail_step_duration_seconds_count", step=name)
                 - _value(before, "tradetrail_step_duration_seconds_count", step=name))
        assert delta == steps.count(name), name
    assert _value(text, "tradetrail_broker_healthy", broker="simulated") == 1.0
    assert _value(text, "tradetrail_database_up") == 1.0
    assert "# TYPE tradetrail_orders gauge" in text
    assert "# TYPE tradetrail_scheduler_lag_seconds histogram" in text
    assert "# TYPE tradetrail_notifications_delivered_total counter" in text
    assert "# TYPE tradetrail_notifications_failed_total counter" in text


def test_metrics_need_a_token_by_default_and_follow_the_setting(settings):
    app = build_app(settings, migrate=False)
    demo(app)
    caller = api_user(app, "demo", password=None)
    anonymous = TestClient(create_app(app, background=False))
    assert anonymous.get("/metrics").status_code == 401
    assert anonymous.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert caller.get("/metrics").status_code == 200

    opened = build_app(Settings(home=settings.home, database_url=settings.database_url, metrics="open"),
                       migrate=False)
    assert TestClient(create_app(opened, background=False)).get("/metrics").status_code == 200
    off = build_app(Settings(home=settings.home, database_url=settings.database_url, metrics="off"), migrate=False)
    assert api_user(off, "demo", password=None).get("/metrics").status_code == 404
