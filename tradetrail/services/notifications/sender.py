"""Delivering the outbox: fan out, claim with a lease, send, mark — each its own short transaction.

1. **Fan out.** Each new event gets one delivery row per channel of its user that wants its kind (unique per
   event and channel, so two senders fanning out at once make one row), and is marked fanned out, in one
   transaction.
2. **Claim.** A due delivery (pending, or ``sending`` whose lease ran out: its sender died) is taken by a
   compare-and-set UPDATE that sets a lease, and an attempt row is written — committed before anything is
   sent. Two senders never hold one delivery.
3. **Send** through Apprise, which returns after the receiver answered.
4. **Mark** in one transaction: delivered, or pending again after an exponential backoff (failed after
   ``notify_max_attempts``), with the attempt's outcome.

A sender killed between 2 and 4 leaves the delivery ``sending`` with an unfinished attempt; once the lease
ends another pass sends it again. So nothing is lost, and a message the receiver acknowledged is marked
delivered in the transaction right after — the one window where a message can go out twice is a kill in
the moment between the receiver's answer and that commit (every message carries its event number, so a
receiver can tell). Delivered, failed and channel-less events are pruned after ``notify_retention_days``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, exists, or_, select, update

from tradetrail.db.notify_models import NotifyAttempt, NotifyChannel, NotifyDelivery, NotifyEvent
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore_many
from tradetrail.notify import secrets, sending
from tradetrail.notify.secrets import ChannelUnreadable, NotifyKeyMissing
from tradetrail.observability import metrics

log = logging.getLogger(__name__)

FAN_OUT_BATCH = 200
MAX_BACKOFF_S = 3600.0
LABELS = {"execution_failed": "execution failed", "signal": "signal", "risk_denied": "risk denial",
          "order_sent": "order sent", "order_filled": "order filled", "order_cancelled": "order cancelled",
          "order_rejected": "order rejected", "order_unknown": "order of unknown fate",
          "position_closed": "position closed", "trading_state": "trading state", "broker_unhealthy":
          "broker unhealthy", "reconcile_mismatch": "reconciliation mismatch", "daily_summary": "daily summary",
          "slot_missed": "scheduled run missed"}

_D, _E, _C, _A = NotifyDelivery.__table__, NotifyEvent.__table__, NotifyChannel.__table__, NotifyAttempt.__table__


def sender_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def base_url(settings) -> str:
    return (settings.notify_base_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def backoff_s(settings, attempts: int) -> float:
    """Wait before attempt ``attempts + 1``: the base, doubled after every failed attempt, an hour at most."""
    return min(MAX_BACKOFF_S, settings.notify_backoff_s * 2 ** max(0, attempts - 1))


def _wants(events: list, kind: str) -> bool:
    return "*" in events or kind in events


def fan_out(app) -> int:
    """Delivery rows for the events not yet fanned out; returns how many events were handled."""
    with app.engine.begin() as conn:
        query = select(_E.c.id, _E.c.user_id, _E.c.kind).where(_E.c.fanned_out.is_(False)).order_by(_E.c.id) \
            .limit(FAN_OUT_BATCH)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        events = conn.execute(query).all()
        if not events:
            return 0
        users = sorted({e.user_id for e in events})
        channels = conn.execute(select(_C.c.id, _C.c.user_id, _C.c.events).where(_C.c.user_id.in_(users))).all()
        now = utcnow()
        rows = [dict(event_id=e.id, channel_id=c.id, status="pending", attempts=0, next_at=now, created_at=now)
                for e in events for c in channels if c.user_id == e.user_id and _wants(c.events, e.kind)]
        insert_ignore_many(conn, _D, rows, key=["event_id", "channel_id"])
        conn.execute(update(_E).where(_E.c.id.in_([e.id for e in events])).values(fanned_out=True))
    return len(events)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt_id: int
    attempt: int
    event_id: int
    kind: str
    text: str
    link: str
    channel_id: int
    secret: str


def _due(now, max_attempts: int):
    return and_(_D.c.status.in_(("pending", "sending")), _D.c.next_at <= now, _D.c.attempts < max_attempts,
                or_(_D.c.lease_until.is_(None), _D.c.lease_until < now))


def claim(app, owner: str) -> Claim | None:
    """Take one due delivery under a lease (committed before it is sent); None when nothing is due."""
    settings = app.settings
    for _ in range(5):  # another sender may win the row between our read and our update
        now = utcnow()
        with app.engine.begin() as conn:
            query = select(_D.c.id, _D.c.attempts).where(_due(now, settings.notify_max_attempts)) \
                .order_by(_D.c.next_at, _D.c.id).limit(1)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = conn.execute(query).first()
            if row is None:
                return None
            won = conn.execute(update(_D).where(_D.c.id == row.id, _D.c.attempts == row.attempts,
                                                _due(now, settings.notify_max_attempts)).values(
                status="sending", attempts=row.attempts + 1, lease_owner=owner,
                lease_until=now + timedelta(seconds=settings.notify_lease_s))).rowcount
            if won != 1:
                continue
            attempt_id = conn.execute(_A.insert().values(delivery_id=row.id, number=row.attempts + 1, sender=owner,
                                                         started_at=now).returning(_A.c.id)).scalar_one()
            info = conn.execute(select(_E.c.id, _E.c.kind, _E.c.text, _E.c.link, _C.c.id.label("channel_id"),
                                       _C.c.secret).select_from(_D.join(_E, _E.c.id == _D.c.event_id)
                                                                .join(_C, _C.c.id == _D.c.channel_id))
                                .where(_D.c.id == row.id)).one()
            return Claim(row.id, attempt_id, row.attempts + 1, info.id, info.kind, info.text, info.link,
                         info.channel_id, info.secret)
    return None


def message(settings, c: Claim) -> tuple[str, str]:
    """(title, body): the event's text, the link that explains it, and the event number (to tell repeats)."""
    title = f"tradetrail: {LABELS.get(c.kind, c.kind)}"
    return title, f"{c.text}\n{base_url(settings)}{c.link}\n(tradetrail event {c.event_id})"


def finish(app, c: Claim, ok: bool, error: str | None) -> str:
    """Record the attempt and the delivery's new status in one transaction; returns that status."""
    settings = app.settings
    now = utcnow()
    if ok:
        values = dict(status="delivered", delivered_at=now, lease_until=None, last_error=None)
    elif c.attempt >= settings.notify_max_attempts:
        values = dict(status="failed", lease_until=None, last_error=error)
    else:
        values = dict(status="pending", lease_until=None, last_error=error,
                      next_at=now + timedelta(seconds=backoff_s(settings, c.attempt)))
    with app.engine.begin() as conn:
        conn.execute(update(_D).where(_D.c.id == c.delivery_id).values(**values))
        conn.execute(update(_A).where(_A.c.id == c.attempt_id).values(finished_at=now, ok=ok, error=error))
        if not ok:  # the channel is broken for now: its other messages wait as long (no attempt used up), so one
            # channel timing out message after message does not hold every other channel's messages back
            pause = now + timedelta(seconds=backoff_s(settings, c.attempt))
            conn.execute(update(_D).where(_D.c.channel_id == c.channel_id, _D.c.id != c.delivery_id,
                                          _D.c.status == "pending", _D.c.next_at < pause).values(next_at=pause))
    return values["status"]


def deliver_one(app, owner: str) -> str | None:
    """Claim, send and mark one delivery; its new status, or None when nothing was due."""
    c = claim(app, owner)
    if c is None:
        return None
    key = app.settings.notify_key
    try:
        url = secrets.decrypt(key.get_secret_value() if key else None, c.secret)
    except (NotifyKeyMissing, ChannelUnreadable) as exc:
        return finish(app, c, False, str(exc))
    title, body = message(app.settings, c)
    timeout = min(app.settings.notify_timeout_s, app.settings.notify_lease_s / 2)  # done well inside the lease
    result = sending.send(url, title, body, timeout_s=timeout)
    status = finish(app, c, result.ok, result.error)
    (metrics.notification_delivered if result.ok else metrics.notification_failed)(secrets.scheme_of(url))
    if not result.ok:
        log.warning("notification %s to channel %s: attempt %d failed (%s): %s", c.event_id, c.channel_id,
                    c.attempt, status, result.error)
    return status


def give_up_abandoned(app) -> int:
    """Deliveries whose last allowed attempt's sender died (lease over, no attempts left) become failed."""
    now = utcnow()
    with app.engine.begin() as conn:
        return conn.execute(update(_D).where(
            _D.c.status == "sending", _D.c.lease_until < now, _D.c.attempts >= app.settings.notify_max_attempts)
            .values(status="failed", lease_until=None,
                    last_error="the sender stopped during the last allowed attempt")).rowcount


def prune(app) -> int:
    """Events older than the retention with nothing left to deliver (their deliveries and attempts go with them)."""
    cutoff = utcnow() - timedelta(days=app.settings.notify_retention_days)
    busy = exists().where(_D.c.event_id == _E.c.id, _D.c.status.in_(("pending", "sending")))
    with app.engine.begin() as conn:
        return conn.execute(delete(_E).where(_E.c.created_at < cutoff, _E.c.fanned_out.is_(True), ~busy)).rowcount


def run_once(app, *, owner: str | None = None, budget_s: float = 30.0, max_deliveries: int = 500) -> dict:
    """One pass: fan out, then deliver what is due until nothing is, or the time or count budget is spent."""
    owner = owner or sender_name()
    report = {"fanned_out": 0, "delivered": 0, "retrying": 0, "failed": 0}
    while (n := fan_out(app)):
        report["fanned_out"] += n
    deadline = time.monotonic() + budget_s
    for _ in range(max_deliveries):
        status = deliver_one(app, owner)
        if status is None:
            break
        report[{"delivered": "delivered", "pending": "retrying", "failed": "failed"}[status]] += 1
        if time.monotonic() >= deadline:
            break
    report["failed"] += give_up_abandoned(app)
    return report


class NotificationSender:
    """The embedded sender: a thread that runs :func:`run_once` every ``notify_interval_s`` (and the daily
    summary, the broker watch and pruning now and then). Stopping it lets the delivery in hand finish."""

    PRUNE_EVERY_S = 600.0

    def __init__(self, app):
        self.app = app
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notify-sender", daemon=True)
        self._pruned_at = 0.0

    def start(self) -> NotificationSender:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def tick(self) -> dict:
        from tradetrail.services.notifications.watch import raise_periodic_events

        raise_periodic_events(self.app)
        report = run_once(self.app, budget_s=max(5.0, self.app.settings.notify_interval_s * 5))
        if time.monotonic() - self._pruned_at >= self.PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            report["pruned"] = prune(self.app)
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.tick()
                if any(report.values()):
                    log.info("notifications: %s", report)
            except Exception:  # noqa: BLE001 - the sender must outlive one bad pass (the database away)
                log.exception("notification pass failed")
            self._stop.wait(self.app.settings.notify_interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=self.app.settings.notify_timeout_s + 5)
