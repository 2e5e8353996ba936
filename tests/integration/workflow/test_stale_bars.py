"""Issue #12, item 2: stale bars never trade. A real-clock strategy on the sample data (bars end 2018-12-31,
as-of today) "succeeded" with a SELL; fetch_market_data now fails when more exchange sessions than
``market_data.max_bar_age_sessions`` closed after the newest bar, naming both dates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.support.fresh_bars import write_fresh_spx
from tests.support.helpers import demo
from tradetrail.catalogue.calendars import sessions_closed_between
from tradetrail.db.models import Signal
from tradetrail.db.trading_models import Order
from tradetrail.runtime.build import build_app
from tradetrail.schemas.strategy import MarketDataConfig, StrategyConfig
from tradetrail.services.runs.executions import get_execution, run_strategy
from tradetrail.services.strategies.configs import save_strategy
from tradetrail.settings import Settings


def step(execution: dict, name: str) -> dict:
    return next(s for s in execution["steps"] if s["name"] == name)


def test_a_real_clock_run_on_the_sample_data_fails_naming_both_dates(app):
    user_id, _ = demo(app)
    with app.Session() as s:
        save_strategy(s, app, user_id, "spx", StrategyConfig(symbol="SPX"))  # no replay clock: as of now
    run = get_execution(app, run_strategy(app, user_id, "spx").execution_id)
    assert (run["status"], run["failed_step"]) == ("failed", "fetch_market_data"), run["error"]
    as_of = datetime.fromisoformat(run["as_of"]).astimezone(ZoneInfo("America/New_York")).date()
    assert "the newest daily bar of SPX is from 2018-12-31" in run["error"]
    assert f"the run is as of {as_of}" in run["error"]
    assert "more than market_data.max_bar_age_sessions (3)" in run["error"]
    out = step(run, "fetch_market_data")["output"]
    assert out["newest_bar"].startswith("2018-12-31") and out["age_sessions"] > 1900
    assert [s["name"] for s in run["steps"]][-1] == "fetch_market_data"  # nothing after it: no signal, no order
    with app.Session() as s:
        assert s.scalar(select(Signal)) is None and s.scalar(select(Order)) is None


def test_the_age_limit_is_per_strategy_and_inclusive(settings, tmp_path):
    """Bars that end a few sessions ago: allowed at exactly their age, refused one session below it."""
    write_fresh_spx(tmp_path / "bars", now=_sessions_ago(4), ahead=0)
    app = build_app(Settings(home=settings.home, database_url=settings.database_url,
                             market_data_dir=tmp_path / "bars"), migrate=False)
    user_id, _ = demo(app)

    def run_with(max_age: int) -> dict:
        config = StrategyConfig(symbol="SPX", market_data=MarketDataConfig(source="files",
                                                                           max_bar_age_sessions=max_age))
        with app.Session() as s:
            save_strategy(s, app, user_id, "files", config)
        return get_execution(app, run_strategy(app, user_id, "files").execution_id)

    looked = run_with(250)
    assert looked["status"] == "succeeded", looked["error"]
    age = step(looked, "fetch_market_data")["metadata"]["bar_age_sessions"]
    assert age >= 3  # the bars end about four sessions before now
    assert run_with(age)["status"] == "succeeded"
    refused = run_with(age - 1)
    assert refused["failed_step"] == "fetch_market_data" and "stale market data" in refused["error"]
    assert f"more than market_data.max_bar_age_sessions ({age - 1})" in refused["error"]


def test_bars_up_to_the_latest_closed_session_pass_and_a_replay_never_trips(settings, tmp_path):
    write_fresh_spx(tmp_path / "bars")
    app = build_app(Settings(home=settings.home, database_url=settings.database_url,
                             market_data_dir=tmp_path / "bars"), migrate=False)
    user_id, _ = demo(app)
    with app.Session() as s:
        save_strategy(s, app, user_id, "fresh", StrategyConfig(
            symbol="SPX", market_data=MarketDataConfig(source="files", max_bar_age_sessions=0)))
    fresh = get_execution(app, run_strategy(app, user_id, "fresh").execution_id)
    assert fresh["status"] == "succeeded", fresh["error"]
    assert step(fresh, "fetch_market_data")["metadata"]["bar_age_sessions"] == 0
    replayed = get_execution(app, run_strategy(app, user_id, "demo").execution_id)  # 2005: its own session
    assert replayed["status"] == "succeeded", replayed["error"]
    assert step(replayed, "fetch_market_data")["metadata"]["bar_age_sessions"] == 0


@pytest.mark.parametrize("newest, as_of, sessions", [
    ((2024, 3, 1, 21), (2024, 3, 4, 14, 35), 0),  # Friday's bar, Monday 09:35 New York: nothing closed since
    ((2024, 3, 1, 21), (2024, 3, 4, 21, 0), 1),  # Monday has closed
    ((2024, 3, 1, 21), (2024, 3, 6, 14, 35), 2),  # Monday and Tuesday
    ((2024, 3, 28, 20), (2024, 4, 2, 14, 35), 1),  # Good Friday is no session: only Monday
    ((2024, 11, 27, 21), (2024, 11, 29, 18, 30), 1),  # the day after Thanksgiving closes at 13:00
    ((2018, 12, 31, 21), (2018, 12, 31, 21), 0),
])
def test_sessions_are_counted_on_the_exchange_calendar(newest, as_of, sessions):
    assert sessions_closed_between(datetime(*newest, tzinfo=UTC), datetime(*as_of, tzinfo=UTC)) == (sessions, True)


def test_a_span_reaching_past_the_calendar_is_a_lower_bound():
    count, exact = sessions_closed_between(datetime(1999, 1, 4, 21, tzinfo=UTC), datetime(2024, 3, 4, 21, tzinfo=UTC))
    assert not exact and count > 4000


def _sessions_ago(n: int) -> datetime:
    """A moment just after the close of the session ``n`` sessions before the latest one closed by now."""
    from tradetrail.catalogue.calendars import calendar

    closes = calendar().closes
    done = int(closes.searchsorted(datetime.now(UTC), side="right"))
    return closes.iloc[done - 1 - n].to_pydatetime().replace(hour=21, minute=30)
