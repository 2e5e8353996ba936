"""The replay clock: a strategy on historical data sees the market one session further on every run.

The first run sees the market as of the close of the first session on or after ``replay_start``; each
later run the next session. Reaching the end of the data is an error, not a silent repeat.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tradetrail.db.models import ReplayClock
from tradetrail.domain.market_hours import EXCHANGE_TZ_NAME


class ReplayExhausted(Exception):
    """No session left after the clock's position."""


def next_session(sessions: pd.DatetimeIndex, after: datetime | None, start: date) -> datetime:
    if after is None:
        floor = pd.Timestamp(start).tz_localize(EXCHANGE_TZ_NAME).tz_convert("UTC")
        pos = sessions.searchsorted(floor, side="left")
    else:
        pos = sessions.searchsorted(pd.Timestamp(after), side="right")
    if pos >= len(sessions):
        last = sessions[-1].date() if len(sessions) else "no data"
        raise ReplayExhausted(f"the replay clock reached the end of the data (last session {last})")
    return sessions[pos].to_pydatetime()


_CLOCK = select(ReplayClock).where(ReplayClock.strategy_id == bindparam("strategy")).with_for_update()  # built once


def advance(session: Session, strategy_id: int, sessions: pd.DatetimeIndex, start: date) -> tuple[datetime, int]:
    """Move the strategy's clock one session on; return the new as-of time and the run count."""
    clock = session.scalar(_CLOCK, {"strategy": strategy_id})
    as_of = next_session(sessions, clock.as_of if clock else None, start)
    if clock is None:
        clock = ReplayClock(strategy_id=strategy_id, as_of=as_of, runs=0)
        session.add(clock)
    clock.as_of, clock.runs = as_of, clock.runs + 1
    session.commit()
    return as_of, clock.runs


def reset(session: Session, strategy_id: int) -> None:
    clock = session.get(ReplayClock, strategy_id)
    if clock is not None:
        session.delete(clock)
        session.commit()
