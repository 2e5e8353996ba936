"""Events no single transaction reports: the daily summary after the close and the broker turning unhealthy.

Both are raised by the sender's pass, for users with at least one channel, with a ``dedupe_key`` so several
senders (Celery processes) raise each one once: a summary per user and exchange day, a broker alarm per user
and hour while it stays unhealthy.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select

from tradetrail.db.models import Execution
from tradetrail.db.notify_models import NotifyChannel, NotifyEvent
from tradetrail.db.trading_models import Fill, Order, Trade
from tradetrail.db.types import utcnow
from tradetrail.db.upsert import insert_ignore
from tradetrail.domain.market_hours import EXCHANGE_TZ, SESSION_CLOSE, exchange_day_start

log = logging.getLogger(__name__)

SUMMARY_AFTER = timedelta(minutes=15)  # after the 16:00 close, once late fills are in
BROKER_CHECK_S = 60.0
_last_broker_check = {"at": 0.0}


def _users_with_channels(s) -> list[int]:
    return list(s.scalars(select(NotifyChannel.user_id).distinct()))


def _raise(s, user_id: int, kind: str, text: str, link: str, key: str) -> int:
    return insert_ignore(s.connection(), NotifyEvent.__table__, dict(
        user_id=user_id, kind=kind, text=text, link=link, dedupe_key=key, fanned_out=False, created_at=utcnow()),
        key=["dedupe_key"])


def summary_text(s, user_id: int, day_start: datetime, day_end: datetime) -> str:
    runs = dict(s.execute(select(Execution.status, func.count()).where(
        Execution.user_id == user_id, Execution.started_at >= day_start, Execution.started_at < day_end)
        .group_by(Execution.status)).all())
    fills = s.scalar(select(func.count()).select_from(Fill).join(Order, Order.id == Fill.order_id).where(
        Order.user_id == user_id, Fill.filled_at >= day_start, Fill.filled_at < day_end)) or 0
    closed = s.execute(select(func.count(), func.coalesce(func.sum(Trade.pnl), 0.0)).where(
        Trade.user_id == user_id, Trade.status == "closed", Trade.exit_at >= day_start,
        Trade.exit_at < day_end)).one()
    open_trades = s.scalar(select(func.count()).select_from(Trade).where(
        Trade.user_id == user_id, Trade.status == "open")) or 0
    total = sum(runs.values())
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(runs.items())) or "none"
    return (f"Daily summary {day_start.astimezone(EXCHANGE_TZ).date()}: {total} execution(s) ({by_status}); "
            f"{fills} fill(s); {closed[0]} position(s) closed, P&L {float(closed[1]):+.2f}; "
            f"{open_trades} position(s) open")


def daily_summaries(app, now: datetime | None = None) -> int:
    """After the close (+15 min) on a weekday, one summary per user with channels for that exchange day."""
    now = now or utcnow()
    local = now.astimezone(EXCHANGE_TZ)
    close = datetime.combine(local.date(), SESSION_CLOSE, tzinfo=EXCHANGE_TZ)
    if local.weekday() >= 5 or local < close + SUMMARY_AFTER:
        return 0
    start = exchange_day_start(now)
    made = 0
    with app.Session() as s:
        for user_id in _users_with_channels(s):
            key = f"daily_summary:{user_id}:{local.date()}"
            if s.scalar(select(NotifyEvent.id).where(NotifyEvent.dedupe_key == key)) is not None:
                continue
            made += _raise(s, user_id, "daily_summary", summary_text(s, user_id, start, now), "/", key)
        s.commit()
    return made


def broker_alarm(app, now: datetime | None = None) -> int:
    """When the default broker is not healthy (IBKR: session lost or needs a login), tell every user with
    channels, once an hour while it lasts."""
    from tradetrail.services.trading.broker_status import broker_status

    status = broker_status(app)
    if status["healthy"]:
        return 0
    now = now or utcnow()
    health = status.get("health") or {}
    why = health.get("error") or ", ".join(f"{k} {v}" for k, v in health.items() if k != "healthy") or "not healthy"
    made = 0
    with app.Session() as s:
        for user_id in _users_with_channels(s):
            made += _raise(s, user_id, "broker_unhealthy", f"Broker {status['broker']} is unhealthy: {why}"[:1000],
                           "/broker", f"broker_unhealthy:{user_id}:{now:%Y-%m-%dT%H}")
        s.commit()
    return made


def raise_periodic_events(app) -> None:
    """The summary every pass (cheap before the close), the broker at most every minute. Never raises."""
    if app.settings.notify_daily_summary:
        try:
            daily_summaries(app)
        except Exception:  # noqa: BLE001 - a summary must not stop deliveries
            log.exception("daily summary failed")
    if time.monotonic() - _last_broker_check["at"] >= BROKER_CHECK_S:
        _last_broker_check["at"] = time.monotonic()
        try:
            broker_alarm(app)
        except Exception:  # noqa: BLE001
            log.exception("broker check for notifications failed")
