"""The replay clock: a strategy on historical data sees the market one session further on every run.

The first run sees the market as of the close of the first session on or after ``replay_start``; each
later run the next session. Reaching the end of the data is an error, not a silent repeat.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from sqlalchemy import bindparam, insert, select, update
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


# Built once (every replay run advances), on the table: the ORM's unit of work cost more than the two statements.
_T = ReplayClock.__table__
_CLOCK = select(_T.c.as_of, _T.c.runs).where(_T.c.strategy_id == bindparam("strategy")).with_for_update()
_START = insert(_T)
_MOVE = update(_T).where(_T.c.strategy_id == bindparam("strategy")).values(as_of=bindparam("as_of"),
                                                                              runs=bindparam("runs"))


def advance(session: Session, strategy_id: int, sessions: pd.DatetimeIndex, start: date, *,
            commit: bool = True) -> tuple[datetime, int]:
    """Move the strategy's clock one session on; return the new as-of time and the run count. ``commit=False``
    leaves the move in the session's transaction for the caller to commit with what it writes beside it."""
    conn = session.connection()
    clock = conn.execute(_CLOCK, {"strategy": strategy_id}).first()
    as_of = next_session(sessions, clock.as_of if clock else None, start)
    runs = (clock.runs if clock else 0) + 1
    if clock is None:
        conn.execute(_START, {"strategy_id": strategy_id, "as_of": as_of, "runs": runs})
    else:
        conn.execute(_MOVE, {"strategy": strategy_id, "as_of": as_of, "runs": runs})
    if commit:
        session.commit()
    return as_of, runs


def reset(session: Session, strategy_id: int) -> None:
    clock = session.get(ReplayClock, strategy_id)
    if clock is not None:
        session.delete(clock)
        session.commit()
