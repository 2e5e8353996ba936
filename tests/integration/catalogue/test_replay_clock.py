"""The replay clock: one session further per run, kept in the database, and a clear end."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import select

from tradetrail.app_context import App
from tradetrail.catalogue.replay_clock import ReplayExhausted, advance, next_session, reset
from tradetrail.db.models import ReplayClock, Strategy, User
from tradetrail.marketdata.sample import SampleMarketData

SPX_SESSIONS = SampleMarketData().sessions(SampleMarketData().resolve("SPX"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def strategy_id(app: App) -> int:
    with app.Session() as s:
        user = User(username="replayer")
        s.add(user)
        s.flush()
        strategy = Strategy(user_id=user.id, name="replay", enabled=True, current_version=1)
        s.add(strategy)
        s.commit()
        return strategy.id


def clock_row(app: App, strategy_id: int) -> tuple[datetime, int] | None:
    with app.Session() as s:
        clock = s.scalar(select(ReplayClock).where(ReplayClock.strategy_id == strategy_id))
        return None if clock is None else (clock.as_of, clock.runs)


@pytest.mark.parametrize(
    ("start", "first"),
    [
        (date(2005, 1, 3), utc(2005, 1, 3, 21)),  # a session day: that day's close
        (date(2005, 1, 1), utc(2005, 1, 3, 21)),  # a Saturday (and New Year): the next session
        (date(2018, 12, 25), utc(2018, 12, 26, 21)),  # Christmas: the next session
        (date(2018, 7, 2), utc(2018, 7, 2, 20)),  # summer: 16:00 New York is 20:00 UTC
        (date(1990, 1, 1), utc(1999, 1, 4, 21)),  # before the data: its first session
    ],
)
def test_first_session_on_or_after_the_start(start: date, first: datetime) -> None:
    got = next_session(SPX_SESSIONS, None, start)
    assert got == first
    assert got.tzinfo is not None


def test_next_session_after_a_position_is_the_following_one() -> None:
    assert next_session(SPX_SESSIONS, utc(2018, 12, 24, 21), date(2005, 1, 3)) == utc(2018, 12, 26, 21)
    # a position between sessions moves to the next session, not back
    assert next_session(SPX_SESSIONS, utc(2018, 12, 25, 12), date(2005, 1, 3)) == utc(2018, 12, 26, 21)


def test_advance_moves_one_session_per_call_and_persists(app: App, strategy_id: int) -> None:
    expected = [utc(2018, 12, 20, 21), utc(2018, 12, 21, 21), utc(2018, 12, 24, 21), utc(2018, 12, 26, 21),
                utc(2018, 12, 27, 21)]
    assert clock_row(app, strategy_id) is None
    for runs, when in enumerate(expected, start=1):
        with app.Session() as s:  # a fresh session every run: the position comes from the database
            as_of, count = advance(s, strategy_id, SPX_SESSIONS, date(2018, 12, 20))
        assert (as_of, count) == (when, runs)
        assert clock_row(app, strategy_id) == (when, runs)


def test_the_start_date_only_matters_for_the_first_run(app: App, strategy_id: int) -> None:
    with app.Session() as s:
        assert advance(s, strategy_id, SPX_SESSIONS, date(2018, 12, 20))[0] == utc(2018, 12, 20, 21)
    with app.Session() as s:
        assert advance(s, strategy_id, SPX_SESSIONS, date(2010, 1, 4))[0] == utc(2018, 12, 21, 21)


def test_end_of_data_raises_naming_the_last_session(app: App, strategy_id: int) -> None:
    with app.Session() as s:
        assert advance(s, strategy_id, SPX_SESSIONS, date(2018, 12, 28)) == (utc(2018, 12, 28, 21), 1)
    with app.Session() as s:
        assert advance(s, strategy_id, SPX_SESSIONS, date(2018, 12, 28)) == (utc(2018, 12, 31, 21), 2)
    for _ in range(2):  # it stays exhausted: no silent repeat of the last session
        with app.Session() as s, pytest.raises(ReplayExhausted) as err:
            advance(s, strategy_id, SPX_SESSIONS, date(2018, 12, 28))
        assert str(err.value) == "the replay clock reached the end of the data (last session 2018-12-31)"
    assert clock_row(app, strategy_id) == (utc(2018, 12, 31, 21), 2)


def test_start_after_the_data_is_exhausted_at_once(app: App, strategy_id: int) -> None:
    with app.Session() as s, pytest.raises(ReplayExhausted, match=r"last session 2018-12-31\)"):
        advance(s, strategy_id, SPX_SESSIONS, date(2019, 1, 2))
    assert clock_row(app, strategy_id) is None
    with pytest.raises(ReplayExhausted, match="no data"):
        next_session(pd.DatetimeIndex([], tz="UTC"), None, date(2019, 1, 2))


def test_reset_starts_again(app: App, strategy_id: int) -> None:
    for _ in range(3):
        with app.Session() as s:
            advance(s, strategy_id, SPX_SESSIONS, date(2018, 12, 20))
    with app.Session() as s:
        reset(s, strategy_id)
    assert clock_row(app, strategy_id) is None
    with app.Session() as s:
        assert advance(s, strategy_id, SPX_SESSIONS, date(2018, 12, 20)) == (utc(2018, 12, 20, 21), 1)
