"""What docs/notifications.md says of a channel's life: an event not yet fanned out when a channel is added is
sent to it too (an event fanned out before is not), and removing a channel deletes its whole delivery history."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import func, select

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.helpers import demo
from tradetrail.db.notify_models import NotifyAttempt, NotifyDelivery
from tradetrail.notify import outbox
from tradetrail.runtime.build import build_app
from tradetrail.services.notifications.channels import add_channel, remove_channel
from tradetrail.services.notifications.sender import run_once


@pytest.fixture
def keyed(settings):
    settings.notify_key = SecretStr(Fernet.generate_key().decode())
    return build_app(settings, migrate=False)


def _raise(app, user_id: int, text: str) -> None:
    with app.engine.begin() as conn:
        outbox.event_conn(conn, user_id, "signal", text, "/")


def test_a_channel_gets_what_was_not_fanned_out_yet_and_its_removal_deletes_its_history(keyed):
    app = keyed
    user_id, _ = demo(app)
    with WebhookReceiver() as hook:
        _raise(app, user_id, "before any channel, fanned out to none")
        assert run_once(app)["fanned_out"] == 1
        _raise(app, user_id, "raised while the sender was not running")
        channel = add_channel(app, user_id, hook.url("late"))
        assert run_once(app)["delivered"] == 1
        assert ["raised while the sender was not running" in r.message for r in hook.acknowledged()] == [True]
    with app.Session() as s:
        assert s.scalar(select(func.count()).select_from(NotifyAttempt)) == 1
    remove_channel(app, user_id, channel["id"])
    with app.Session() as s:
        assert s.scalar(select(func.count()).select_from(NotifyDelivery)) == 0
        assert s.scalar(select(func.count()).select_from(NotifyAttempt)) == 0
