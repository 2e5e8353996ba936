"""A round trip built from its fills (domain/trades.after_fill): opened, grown, reduced, closed with its R."""

from __future__ import annotations

import pytest

from tradetrail.domain.trades import RoundTrip, after_fill, with_late_commission


def test_a_long_opened_grown_reduced_and_closed() -> None:
    opened = after_fill(None, 100.0, 1, 0.0, 2.0, -1.0, 5.0)
    assert opened == RoundTrip(quantity=2.0, entry_price=100.0, entry_at=1, pnl=-1.0, risk_per_unit=5.0)
    grown = after_fill(opened, 110.0, 2, 2.0, 4.0, -1.0, 9.0)  # the R of the trade is the opening fill's
    assert grown == RoundTrip(quantity=4.0, entry_price=105.0, entry_at=1, pnl=-2.0, risk_per_unit=5.0)
    reduced = after_fill(grown, 120.0, 3, 4.0, 1.0, 44.0, None)
    assert reduced == RoundTrip(quantity=4.0, entry_price=105.0, entry_at=1, pnl=42.0, risk_per_unit=5.0,
                                exit_price=120.0)
    closed = after_fill(reduced, 130.0, 4, 1.0, 0.0, 24.0, None)
    assert closed == RoundTrip(quantity=4.0, entry_price=105.0, entry_at=1, pnl=66.0, risk_per_unit=5.0,
                               exit_price=122.5, exit_at=4, r_multiple=3.3, status="closed")


def test_a_short_closed_without_a_risk_has_no_r() -> None:
    opened = after_fill(None, 50.0, 7, 0.0, -3.0, 0.0, None)
    assert (opened.quantity, opened.entry_price, opened.status) == (3.0, 50.0, "open")
    closed = after_fill(opened, 40.0, 9, -3.0, 0.0, 30.1234567, None)
    assert (closed.status, closed.exit_at, closed.exit_price, closed.pnl, closed.r_multiple) == (
        "closed", 9, 40.0, 30.123457, None)


def test_a_fill_that_opens_nothing_is_no_trade() -> None:
    assert after_fill(None, 100.0, 1, 0.0, 0.0, 0.0, None) is None


def test_a_trade_is_immutable() -> None:
    trade = after_fill(None, 100.0, 1, 0.0, 1.0, 0.0, None)
    with pytest.raises(AttributeError):
        trade.pnl = 1.0  # type: ignore[misc]


def test_a_late_commission_lowers_the_pnl_and_a_closed_trades_r() -> None:
    closed = RoundTrip(10, 100.0, "t0", pnl=50.0, risk_per_unit=5.0, exit_price=105.0, exit_at="t1",
                       r_multiple=1.0, status="closed")
    charged = with_late_commission(closed, 1.25)
    assert (charged.pnl, charged.r_multiple, charged.status) == (48.75, 0.975, "closed")
    still_open = with_late_commission(RoundTrip(10, 100.0, "t0", pnl=-1.0, risk_per_unit=5.0), 1.0)
    assert (still_open.pnl, still_open.r_multiple) == (-2.0, None)  # R is measured when it closes
    assert with_late_commission(closed, -0.5).pnl == 50.5  # a rebate
