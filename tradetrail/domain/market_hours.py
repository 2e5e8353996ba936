"""US exchange hours: the one place that says which zone the exchange keeps and when its session closes.

A daily bar is complete at the session close; stamping every daily bar at 16:00 New York time is
conservative on early-close days (the bar is stamped later than it really completed), never early.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

EXCHANGE_TZ_NAME = "America/New_York"
EXCHANGE_TZ = ZoneInfo(EXCHANGE_TZ_NAME)
SESSION_CLOSE = time(16, 0)
SESSION_CLOSE_HHMM = SESSION_CLOSE.strftime("%H:%M")


def exchange_day_start(moment: datetime) -> datetime:
    """Midnight of ``moment``'s exchange day, in exchange time."""
    return datetime.combine(moment.astimezone(EXCHANGE_TZ).date(), time(0), tzinfo=EXCHANGE_TZ)


def session_close(moment: datetime) -> datetime:
    """The regular close (16:00 exchange time) of ``moment``'s exchange day."""
    return datetime.combine(moment.astimezone(EXCHANGE_TZ).date(), SESSION_CLOSE, tzinfo=EXCHANGE_TZ)


def next_close_after(moment: datetime) -> datetime:
    """The next weekday close strictly after ``moment`` (UTC): the earliest a new daily bar can exist."""
    local = moment.astimezone(EXCHANGE_TZ)
    close = datetime.combine(local.date(), SESSION_CLOSE, tzinfo=EXCHANGE_TZ)
    if close <= local:
        close += timedelta(days=1)
    while close.weekday() >= 5:
        close += timedelta(days=1)
    return close.astimezone(UTC)
