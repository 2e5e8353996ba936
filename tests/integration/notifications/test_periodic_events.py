"""The events no single transaction reports, raised by the sender's pass: the daily summary after the close
(once per user with a channel and exchange day, weekdays only) and the broker turning unhealthy (once an hour
per user while it lasts), against the real fake IBKR gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, update

from tests.fakes.ibkr_gateway import FakeGateway
from tests.support.helpers import demo
from tests.support.ibkr import ibkr_app
from tradetrail.db.models import Execution
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.runtime.build import build_app
from tradetrail.services.accounts.users import create_user
from tradetrail.services.notifications.channels import add_channel
from tradetrail.services.notifications.watch import broker_alarm, daily_summaries
from tradetrail.services.runs.executions import run_strategy

FRIDAY_CLOSE = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)  # 16:00 in New York


@pytest.fixture
def keyed_settings(settings):
    settings.notify_key = SecretStr(Fernet.generate_key().decode())
    return settings


def _events(app, kind: str) -> list[NotifyEvent]:
    with app.Session() as s:
        return list(s.scalars(select(NotifyEvent).where(NotifyEvent.kind == kind).order_by(NotifyEvent.id)))


def test_the_daily_summary_comes_once_per_user_with_a_channel_and_exchange_day_after_the_close(keyed_settings):
    app = build_app(keyed_settings, migrate=False)
    user_id, _ = demo(app)
    create_user(app, "bob", "a long enough password")  # no channel: no summary
    add_channel(app, user_id, "json://127.0.0.1:9/alerts")
    assert run_strategy(app, user_id, "demo").status == "succeeded"
    with app.engine.begin() as conn:  # the run happened that Friday
        conn.execute(update(Execution).values(started_at=FRIDAY_CLOSE - timedelta(hours=3)))
    assert daily_summaries(app, FRIDAY_CLOSE + timedelta(minutes=10)) == 0  # too soon after the close
    assert daily_summaries(app, FRIDAY_CLOSE + timedelta(minutes=20)) == 1
    assert daily_summaries(app, FRIDAY_CLOSE + timedelta(hours=2)) == 0  # once that day
    assert daily_summaries(app, FRIDAY_CLOSE + timedelta(days=1, minutes=20)) == 0  # Saturday
    [summary] = _events(app, "daily_summary")
    assert summary.user_id == user_id
    assert summary.text.startswith("Daily summary 2026-11-27: 1 execution(s) (1 succeeded); ")


def test_an_unhealthy_broker_is_heard_of_once_an_hour_while_it_lasts(keyed_settings):
    with FakeGateway(pacing_scale=0.02) as gw:
        app = ibkr_app(keyed_settings, gw)
        user_id, _ = demo(app)
        add_channel(app, user_id, "json://127.0.0.1:9/alerts")
        assert broker_alarm(app, FRIDAY_CLOSE) == 0  # healthy: nothing
        gw.expire_session()
        gw.fail_next("POST /iserver/auth/ssodh/init", 401, {"error": "not authenticated"}, times=20)
        assert broker_alarm(app, FRIDAY_CLOSE) == 1
        assert broker_alarm(app, FRIDAY_CLOSE + timedelta(minutes=30)) == 0  # the same hour
        assert broker_alarm(app, FRIDAY_CLOSE + timedelta(hours=1)) == 1
    alarms = _events(app, "broker_unhealthy")
    assert len(alarms) == 2 and alarms[0].text.startswith("Broker ibkr_web is unhealthy")
    assert alarms[0].link == "/broker"
