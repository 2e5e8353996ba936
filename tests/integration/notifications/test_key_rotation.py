"""Rotating TRADETRAIL_NOTIFY_KEY: with the new key listed first and the old one after it, channels stored
under the old key still deliver; ``tradetrail notify rekey`` (the real command line) re-encrypts them under the
new key, after which the new key alone opens them; a channel no listed key opens is reported, kept, and left
failing with a clear error rather than lost or sent in plaintext."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.cli import tt
from tests.support.helpers import demo
from tradetrail.db.notify_models import NotifyChannel, NotifyDelivery
from tradetrail.notify import outbox, secrets
from tradetrail.runtime.build import build_app
from tradetrail.services.notifications.channels import add_channel
from tradetrail.services.notifications.channels import test_channel as send_test
from tradetrail.services.notifications.sender import run_once

OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))


def _app(settings, key: str):
    settings.notify_key, settings.notify_backoff_s, settings.notify_max_attempts = SecretStr(key), 0.0, 1
    return build_app(settings, migrate=False)


def _secrets(app) -> dict[int, str]:
    with app.Session() as s:
        return dict(s.execute(select(NotifyChannel.id, NotifyChannel.secret)).all())


def test_channels_move_to_a_new_key_without_a_message_lost(settings, cli_env):
    with WebhookReceiver() as hook, WebhookReceiver() as other:
        old = _app(settings, OLD)
        user_id, _ = demo(old)
        kept = add_channel(old, user_id, hook.url())["id"]
        lost = add_channel(_app(settings, LOST), user_id, other.url())["id"]  # under a key about to be forgotten

        both = _app(settings, f"{NEW},{OLD}")  # the new key first: the old one still opens what it sealed
        assert send_test(both, user_id, kept)["ok"] is True
        before = _secrets(both)

        done = tt({**cli_env, "TRADETRAIL_NOTIFY_KEY": f"{NEW},{OLD}"}, "notify", "rekey", "--json", check=False)
        assert done.returncode == 1, done.stderr  # one channel could not be opened: said, and the exit says so
        assert json.loads(done.stdout) == {"rekeyed": 1, "unreadable": [lost]}
        after = _secrets(both)
        assert after[kept] != before[kept] and after[lost] == before[lost]  # the unreadable one kept as it was
        assert secrets.decrypt(NEW, after[kept]) == hook.url()

        new = _app(settings, NEW)  # the old key dropped from the setting
        with new.engine.begin() as conn:
            outbox.event_conn(conn, user_id, "signal", "Signal BUY SPX", "/executions/x")
        report = run_once(new)
        assert report["delivered"] == 1 and report["failed"] == 1
        assert [r.outcome for r in hook.received] == ["acknowledged", "acknowledged"]  # the test, then the signal
        assert other.received == []
        with new.Session() as s:
            error = s.scalar(select(NotifyDelivery.last_error).where(NotifyDelivery.channel_id == lost))
        assert "under another TRADETRAIL_NOTIFY_KEY" in error


def test_a_bad_key_in_the_list_is_named():
    for setting, words in ((f"{NEW},not-a-key", "key 2 of TRADETRAIL_NOTIFY_KEY"),
                           ("not-a-key", "TRADETRAIL_NOTIFY_KEY is not a Fernet key"), (" , ", "no key")):
        try:
            secrets.vault(setting)
        except secrets.NotifyKeyMissing as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"{setting!r} was taken")
