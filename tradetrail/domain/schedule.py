"""When a strategy runs: a five-field cron evaluated in the strategy's time zone (DST-correct), optionally
only at minutes when the exchange is open (holidays and early closes included, from exchange-calendars).

Pure functions over a calendar object; the calendar itself is loaded by the caller (it takes ~150 ms).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter

MAX_SCAN = 100_000  # fire times examined at most in one call (a rare cron inside sessions only is still found)


class ScheduleError(ValueError):
    """A schedule that cannot be evaluated (bad cron, unknown zone, beyond the calendar's range)."""


class BeyondCalendar(ScheduleError):
    """The next fire time lies past the exchange calendar's last day (``last_day``), so it cannot be told."""

    def __init__(self, message: str, last_day: str):
        super().__init__(message)
        self.last_day = last_day


def fire_times(cron: str, tz: str, after: datetime, *, calendar=None) -> Iterator[datetime]:
    """Fire times strictly after ``after``, in UTC; with ``calendar``, only minutes when it is open."""
    if after.tzinfo is None:
        raise ScheduleError("after must be timezone-aware")
    try:
        zone = ZoneInfo(tz)
        it = croniter(cron, after.astimezone(zone))
    except Exception as exc:  # noqa: BLE001 - croniter and zoneinfo raise several types
        raise ScheduleError(f"cannot evaluate cron {cron!r} in {tz}: {exc}") from None
    found = False
    for _ in range(MAX_SCAN):
        t = it.get_next(datetime).astimezone(UTC)
        if calendar is None:
            yield t
            continue
        if t > calendar.last_minute.to_pydatetime():
            last_day = f"{calendar.last_minute:%Y-%m-%d}"
            if not found:
                raise BeyondCalendar(f"cron {cron!r} ({tz}) never fires while the exchange is open (up to the "
                                     f"calendar's end, {last_day}); note a session's closing minute, e.g. 16:00 in "
                                     "New York, is not open", last_day)
            raise BeyondCalendar(f"beyond the exchange calendar's range (it ends {last_day})", last_day)
        if calendar.is_open_on_minute(t):
            found = True
            yield t


def next_runs(cron: str, tz: str, after: datetime, count: int, *, calendar=None) -> list[datetime]:
    out = []
    for t in fire_times(cron, tz, after, calendar=calendar):
        out.append(t)
        if len(out) >= count:
            break
    return out


def due_between(cron: str, tz: str, after: datetime, until: datetime, *, calendar=None) -> list[datetime]:
    """Fire times in (after, until]."""
    out = []
    for t in fire_times(cron, tz, after, calendar=calendar):
        if t > until:
            break
        out.append(t)
    return out
