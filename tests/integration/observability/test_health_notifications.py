"""/health notices when the trader's messages stop: notifications waiting well past their time (no sender is
running) and notifications that failed after every attempt in the last hour (a channel is broken), against a
real webhook receiver; it shows counts only."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import update

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.helpers import demo
from tradetrail.db.notify_models import NotifyEvent
from tradetrail.db.types import utcnow
from tradetrail.notify import outbox
from tradetrail.runtime.build import build_app
from tradetrail.runtime.health import health_report
from tradetrail.services.notifications.channels import add_channel
from tradetrail.services.notifications.sender import run_once


@pytest.fixture
def keyed(settings):
    settings.notify_key = SecretStr(Fernet.generate_key().decode())
    settings.notify_backoff_s, settings.notify_max_attempts = 0.0, 2
    return build_app(settings, migrate=False)


def _check(app) -> dict:
    return health_report(app)["checks"]["notifications"]


def test_no_channel_is_nothing_to_notice(keyed):
    assert _check(keyed) == {"ok": True, "channels": 0}


def test_messages_left_waiting_and_messages_that_failed_make_health_degraded(keyed):
    app = keyed
    user_id, _ = demo(app)
    with WebhookReceiver() as hook:
        add_channel(app, user_id, hook.url())
        with app.engine.begin() as conn:
            outbox.event_conn(conn, user_id, "signal", "Signal BUY SPX", "/executions/x")
        assert _check(app) == {"ok": True, "overdue": 0, "failed_last_hour": 0}  # just raised: not late yet
        with app.engine.begin() as conn:  # raised ten minutes ago and no sender has looked at it since
            conn.execute(update(NotifyEvent).values(created_at=utcnow() - timedelta(minutes=10)))
        late = _check(app)
        assert late["ok"] is False and late["overdue"] == 1 and "is the sender running?" in late["reason"]
        assert health_report(app)["status"] == "degraded"
        assert run_once(app)["delivered"] == 1
        assert _check(app)["ok"] is True

        hook.fail_next(5)  # the channel breaks: both attempts refused, the delivery fails for good
        with app.engine.begin() as conn:
            outbox.event_conn(conn, user_id, "signal", "Signal SELL SPX", "/executions/y")
        assert run_once(app)["failed"] == 1
        failed = _check(app)
        assert failed["ok"] is False and failed["failed_last_hour"] == 1
        assert "failed after every attempt in the last hour" in failed["reason"]
        assert hook.url() not in json.dumps(health_report(app)) and "Signal" not in json.dumps(health_report(app))
