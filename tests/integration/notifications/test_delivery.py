"""Issue #15's notifications end to end against real receivers on 127.0.0.1: a channel added with the real
command line, a run whose order fills and a run that fails reach a JSON webhook through the outbox and the
sender; a receiver that refuses is retried with backoff; mailto:// reaches an SMTP server; and a sender
killed (SIGKILL) while a message is in flight loses nothing and has no message acknowledged twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import select

from tests.fakes.smtp_receiver import SmtpReceiver
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support.cli import tt
from tests.support.helpers import demo, wait_for
from tradetrail.db.notify_models import NotifyAttempt, NotifyChannel, NotifyDelivery, NotifyEvent
from tradetrail.notify import outbox
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.notifications.channels import add_channel
from tradetrail.services.notifications.sender import run_once
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy

KEY = Fernet.generate_key().decode()


def _cross() -> StrategyConfig:
    """The bundled SMA-crossover plug-in on the sample S&P 500: a BUY on the first run, filled by the simulator."""
    return StrategyConfig.model_validate({
        "symbol": "SPX", "charts": {"enabled": False},
        "market_data": {"source": "sample", "replay_start": "2004-04-23"},
        "analyst": {"kind": "plugin", "plugin": "tradetrail.analyst.examples.sma_cross:SmaCross",
                    "params": {"fast": 3, "slow": 10}},
        "signal_policy": {"require_confirmation": False},
        "risk": {"sizing": "fixed", "quantity": 5}, "orders": {"protective": "none"}})


@pytest.fixture
def keyed(settings):
    settings.notify_key = SecretStr(KEY)
    settings.notify_backoff_s = 0.0
    return build_app(settings, migrate=False)


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def test_a_filled_order_and_a_failed_run_reach_a_channel_added_on_the_command_line(keyed, cli_env, hook):
    app = keyed
    user_id, _ = demo(app)
    with app.Session() as s:
        save_strategy(s, app, user_id, "cross", _cross())
    env = {**cli_env, "TRADETRAIL_NOTIFY_KEY": KEY}
    added = tt(env, "notify", "add", hook.url("trader/alerts"), "--user", "demo",
               "--events", "order_filled,execution_failed")
    assert "json://127.0.0.1:…" in added.stdout and "trader/alerts" not in added.stdout
    listed = tt(env, "notify", "list", "--json")
    assert str(hook.port) not in listed.stdout and "trader" not in listed.stdout  # only scheme and host

    # the BUY is sent in the first run; the simulator fills it at the next session, booked by the next run
    for _ in range(2):
        run = get_execution(app, run_strategy(app, user_id, "cross").execution_id)
        assert run["status"] == "succeeded", run["error"]
    app.settings.analyst_plugins = []  # the operator withdrew the plug-in: the next run fails at analyze
    failed = get_execution(app, run_strategy(app, user_id, "cross").execution_id)
    assert failed["status"] == "failed" and failed["failed_step"] == "analyze"

    report = run_once(app)
    assert report["delivered"] == 2, report
    got = {r.title: r for r in hook.acknowledged()}
    assert set(got) == {"tradetrail: order filled", "tradetrail: execution failed"}, [r.body for r in hook.received]
    filled = got["tradetrail: order filled"]
    assert filled.path == "/trader/alerts"
    assert "Order FILLED: BUY 5 SPX @ " in filled.message and "/orders/" in filled.message
    failure = got["tradetrail: execution failed"]
    assert "Execution of strategy cross failed at step analyze: analyst plug-in" in failure.message
    assert f"/executions/{failed['id']}" in failure.message
    assert run_once(app)["delivered"] == 0  # delivered once, never again
    with app.Session() as s:  # the kinds the channel did not ask for were raised but not sent to it
        kinds = set(s.scalars(select(NotifyEvent.kind)))
    assert {"signal", "order_sent", "order_filled", "execution_failed"} <= kinds


def test_a_refusing_receiver_is_retried_and_every_attempt_recorded(keyed, hook):
    app = keyed
    user_id, _ = demo(app)
    add_channel(app, user_id, hook.url())
    with app.engine.begin() as conn:
        outbox.event_conn(conn, user_id, "signal", "Signal BUY SPX", "/executions/x")
    hook.fail_next(2)
    before = {name: REGISTRY.get_sample_value(name, {"channel_scheme": "json"}) or 0.0
              for name in ("tradetrail_notifications_delivered_total", "tradetrail_notifications_failed_total")}
    report = run_once(app)  # backoff 0 here: the three attempts in one pass
    assert report == {"fanned_out": 1, "delivered": 1, "retrying": 2, "failed": 0}
    after = {name: REGISTRY.get_sample_value(name, {"channel_scheme": "json"}) for name in before}
    assert after["tradetrail_notifications_delivered_total"] - before["tradetrail_notifications_delivered_total"] == 1
    assert after["tradetrail_notifications_failed_total"] - before["tradetrail_notifications_failed_total"] == 2
    with app.Session() as s:
        delivery = s.scalar(select(NotifyDelivery))
        attempts = s.scalars(select(NotifyAttempt).order_by(NotifyAttempt.number)).all()
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert [(a.number, a.ok) for a in attempts] == [(1, False), (2, False), (3, True)]
    assert "500" in attempts[0].error and str(hook.port) not in attempts[0].error
    assert [r.outcome for r in hook.received] == ["refused", "refused", "acknowledged"]


def test_backoff_doubles_and_the_last_attempt_fails_the_delivery(keyed, hook):
    app = keyed
    app.settings.notify_backoff_s, app.settings.notify_max_attempts = 30.0, 2
    user_id, _ = demo(app)
    add_channel(app, user_id, hook.url())
    with app.engine.begin() as conn:
        outbox.event_conn(conn, user_id, "signal", "Signal SELL SPX", "/executions/x")
    hook.fail_next(5)
    assert run_once(app)["retrying"] == 1
    with app.Session() as s:
        d = s.scalar(select(NotifyDelivery))
        wait = (d.next_at - s.scalar(select(NotifyAttempt.finished_at))).total_seconds()
    assert 29 <= wait <= 31 and d.status == "pending"
    assert run_once(app)["delivered"] == 0  # not due yet
    with app.engine.begin() as conn:
        conn.execute(NotifyDelivery.__table__.update().values(next_at=d.created_at))
    assert run_once(app)["failed"] == 1
    with app.Session() as s:
        assert s.scalar(select(NotifyDelivery.status)) == "failed"


def test_mailto_reaches_an_smtp_server(keyed):
    app = keyed
    user_id, _ = demo(app)
    with SmtpReceiver() as smtp:
        row = add_channel(app, user_id, smtp.url(), ["order_filled"])
        assert row["channel"] == "mailto://127.0.0.1:…"
        with app.engine.begin() as conn:
            outbox.event_conn(conn, user_id, "order_filled", "Order FILLED: BUY 5 SPX @ 1202", "/orders/1")
            outbox.event_conn(conn, user_id, "signal", "Signal BUY SPX", "/executions/x")  # not subscribed
        assert run_once(app)["delivered"] == 1
        [(sender, to, mail)] = smtp.messages
    assert to == ["trader@example.com"] and mail["Subject"] == "tradetrail: order filled"
    assert "Order FILLED: BUY 5 SPX @ 1202" in mail.get_payload(decode=True).decode() if not mail.is_multipart() \
        else "Order FILLED" in mail.as_string()


SENDER = """
import sys
from tradetrail.runtime.build import build_app
from tradetrail.services.notifications.sender import NotificationSender
from tradetrail.settings import Settings
sender = NotificationSender(build_app(Settings(), migrate=False))
sender.start()
sys.stdout.write("started\\n"); sys.stdout.flush()
sender._thread.join()
"""


def _sender(env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SENDER], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    return proc


def test_a_sender_killed_mid_delivery_loses_nothing_and_sends_nothing_twice(keyed, cli_env, hook):
    app = keyed
    user_id, _ = demo(app)
    add_channel(app, user_id, hook.url())
    with app.engine.begin() as conn:
        for n in range(6):
            outbox.event_conn(conn, user_id, "order_filled", f"Order FILLED number {n}", f"/orders/{n}")
    env = {**cli_env, "TRADETRAIL_NOTIFY_KEY": KEY, "TRADETRAIL_NOTIFY_LEASE_S": "2",
           "TRADETRAIL_NOTIFY_INTERVAL_S": "0.2", "TRADETRAIL_NOTIFY_BACKOFF_S": "0",
           "TRADETRAIL_NOTIFY_DAILY_SUMMARY": "false"}
    hook.hold_at = 3  # two acknowledged, the third kept unanswered while the sender is killed
    first = _sender(env)
    hook.wait_for(3)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    hook.release()
    wait_for(lambda: hook.received[2].outcome == "abandoned", 10, "the receiver to see the sender gone")
    with app.Session() as s:
        in_flight = s.scalar(select(NotifyDelivery).where(NotifyDelivery.status == "sending"))
        assert in_flight is not None and in_flight.lease_until is not None
    second = _sender(env)
    try:
        wait_for(lambda: len(hook.acknowledged()) >= 6, 30, "every message acknowledged")
        time.sleep(1.0)  # a few more passes: nothing else may arrive
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=10)
    acked = [r.event for r in hook.acknowledged()]
    assert sorted(acked) == sorted(set(acked)) and len(acked) == 6  # each event acknowledged exactly once
    outcomes = [r.outcome for r in hook.received]
    assert outcomes.count("abandoned") == 1 and len(outcomes) == 7  # the one in flight came again, once
    assert hook.received[2].event in acked
    with app.Session() as s:
        assert set(s.scalars(select(NotifyDelivery.status))) == {"delivered"}
        killed = s.scalars(select(NotifyAttempt).where(NotifyAttempt.finished_at.is_(None))).all()
        assert len(killed) == 1 and killed[0].delivery_id == in_flight.id  # the attempt the kill interrupted
        assert s.scalar(select(NotifyDelivery.attempts).where(NotifyDelivery.id == in_flight.id)) == 2


def test_channels_are_stored_encrypted_and_refused_without_a_key(settings, keyed, hook):
    app = keyed
    user_id, _ = demo(app)
    row = add_channel(app, user_id, "json://bot:PLANTED-password@127.0.0.1:9/PLANTED-path")
    assert row["channel"] == "json://127.0.0.1:…"
    with app.Session() as s:
        stored = s.scalar(select(NotifyChannel.secret))
    assert "PLANTED" not in stored and Fernet(KEY.encode()).decrypt(stored.encode()).decode().endswith("PLANTED-path")
    keyless = build_app(settings.model_copy(update={"notify_key": None}), migrate=False)
    from tradetrail.services.notifications.channels import ChannelError, NotifyKeyMissing

    with pytest.raises(NotifyKeyMissing, match="TRADETRAIL_NOTIFY_KEY"):
        add_channel(keyless, user_id, hook.url())
    with pytest.raises(ChannelError, match="unknown event kind"):
        add_channel(app, user_id, hook.url(), "order_filed")
    with pytest.raises(ChannelError, match="Apprise cannot use"):
        add_channel(app, user_id, "nosuchscheme://x")


def test_a_failing_channel_waits_out_its_backoff_without_holding_other_channels_back(keyed, hook):
    """A channel that fails (here: refuses; a hanging one costs its timeout each time) pauses all its messages
    for the backoff after one attempt, instead of being tried message after message ahead of the others."""
    app = keyed
    app.settings.notify_backoff_s = 30.0
    user_id, _ = demo(app)
    with WebhookReceiver() as good:
        add_channel(app, user_id, hook.url())
        add_channel(app, user_id, good.url())
        with app.engine.begin() as conn:
            for i in range(5):
                outbox.event_conn(conn, user_id, "signal", f"Signal BUY SPX {i}", "/executions/x")
        hook.fail_next(10)
        report = run_once(app)
        assert report == {"fanned_out": 5, "delivered": 5, "retrying": 1, "failed": 0}
        assert sorted(r.event for r in good.received) == sorted({r.event for r in good.received}) and \
            len(good.received) == 5
        assert len(hook.received) == 1  # one attempt, then the channel's other four wait
        with app.Session() as s:
            waiting = s.execute(select(NotifyDelivery.attempts, NotifyDelivery.next_at).join(
                NotifyChannel, NotifyChannel.id == NotifyDelivery.channel_id)
                .where(NotifyDelivery.status == "pending")).all()
        assert len(waiting) == 5 and sorted(a for a, _ in waiting) == [0, 0, 0, 0, 1]
        assert len({n for _, n in waiting}) == 1  # all due again together, after the backoff
