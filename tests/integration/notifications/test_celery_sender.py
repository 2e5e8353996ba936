"""Distributed mode: beat's ``tradetrail.notify`` task, run by a real Celery worker on the local Redis,
delivers an outbox event to a real webhook receiver, once."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.helpers import demo
from tradetrail.db.notify_models import NotifyDelivery
from tradetrail.notify import outbox
from tradetrail.runtime.build import build_app
from tradetrail.services.notifications.channels import add_channel

pytestmark = [pytest.mark.slow, pytest.mark.once]  # queues and processes: the same on either backend


def test_beat_and_a_worker_deliver_an_outbox_event_once(settings, cli_env, redis_url, procs):
    key = Fernet.generate_key().decode()
    settings.notify_key = SecretStr(key)
    app = build_app(settings, migrate=False)
    user_id, _ = demo(app)
    with WebhookReceiver() as hook:
        add_channel(app, user_id, hook.url("celery"))
        with app.engine.begin() as conn:
            outbox.event_conn(conn, user_id, "signal", "Signal BUY SPX (strategy demo)", "/executions/x")
        env = {**cli_env, "TRADETRAIL_EXECUTOR": "celery", "TRADETRAIL_REDIS_URL": redis_url,
               "TRADETRAIL_NOTIFY_KEY": key, "TRADETRAIL_NOTIFY_INTERVAL_S": "1",
               "TRADETRAIL_SCHEDULER_INTERVAL_S": "5"}
        procs.start(env, "worker", "--concurrency", "1")
        procs.start(env, "beat")
        deadline = time.monotonic() + 90
        while not hook.acknowledged() and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(3)  # a few more notify passes: nothing is sent again
        procs.stop_all()
        received = hook.acknowledged()
    assert len(received) == 1, [r.body for r in hook.received]
    assert received[0].title == "tradetrail: signal" and "Signal BUY SPX (strategy demo)" in received[0].message
    with app.Session() as s:
        assert s.scalar(select(NotifyDelivery.status)) == "delivered"
