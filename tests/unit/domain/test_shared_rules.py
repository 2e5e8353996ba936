"""The rules the restructure gathered into the domain from the modules that each had a copy: what a trading
state allows, consecutive losses, gross exposure, a trade's averages and R, and the exchange's close."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from tradetrail.domain.market_hours import EXCHANGE_TZ, exchange_day_start, session_close
from tradetrail.domain.positions import exposure
from tradetrail.domain.stats import consecutive_losses
from tradetrail.domain.trades import added_entry_price, r_multiple, reduced_exit_price
from tradetrail.domain.trading_states import TradingState, after_mismatch, allows, strictest

A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


@pytest.mark.parametrize(("state", "entry", "exit"), [(A, True, True), (R, False, True), (H, False, False)])
def test_what_each_state_allows(state, entry, exit):
    assert allows(state, exit=False) is entry
    assert allows(state.value, exit=True) is exit  # the raw column value too


def test_the_strictest_state_wins_and_a_mismatch_reduces_unless_halted():
    assert strictest(A, R) == R and strictest(R, H, A) == H and strictest() == A
    assert after_mismatch("ACTIVE") == R and after_mismatch(R) == R and after_mismatch("HALTED") == H


def test_consecutive_losses_count_from_the_newest_until_a_win():
    assert consecutive_losses([-5.0, 0.0, -1.0, 3.0, -9.0]) == 3  # break-even counts as a loss
    assert consecutive_losses([2.0, -1.0]) == 0
    assert consecutive_losses([]) == 0


def test_exposure_is_gross_at_the_market_price_else_at_cost():
    held = [SimpleNamespace(quantity=10, market_price=12.0, avg_cost=9.0),
            SimpleNamespace(quantity=-4, market_price=None, avg_cost=50.0)]
    assert exposure(held) == pytest.approx(10 * 12.0 + 4 * 50.0)


def test_a_trade_averages_its_entries_and_exits_and_measures_r():
    assert added_entry_price(100.0, 10, 110.0, 20) == pytest.approx(105.0)
    assert reduced_exit_price(None, 0, 120.0, 5) == pytest.approx(120.0)
    assert reduced_exit_price(120.0, 5, 90.0, 15) == pytest.approx(97.5)
    assert r_multiple(300.0, 5.0, 20) == 3.0


def test_the_session_closes_at_four_in_new_york_whatever_the_zone_asked_in():
    late_utc = datetime(2024, 3, 15, 23, 30, tzinfo=UTC)  # 19:30 in New York, same exchange day
    assert session_close(late_utc) == datetime(2024, 3, 15, 16, 0, tzinfo=EXCHANGE_TZ)
    assert exchange_day_start(late_utc) == datetime(2024, 3, 15, 0, 0, tzinfo=EXCHANGE_TZ)
    early_utc = datetime(2024, 3, 16, 2, 0, tzinfo=UTC)  # still the 15th in New York
    assert session_close(early_utc).date().isoformat() == "2024-03-15"
