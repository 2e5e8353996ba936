"""A cancel that TWS answers with a fill reports that nothing was cancelled (the port's cancel() is True only
when the request was accepted); and a leg sent and never answered is UNKNOWN until TWS, asked twice on a
settled connection long enough after the placement, lists it nowhere: then it is absent, not UNKNOWN forever."""

from __future__ import annotations

import logging

import pytest

from tests.integration.tws.tws_harness import (  # noqa: F401
    SPY,
    SPY_CONTRACT,
    make_broker_fixture,
    resting_bracket,
    tws_fixture,
    until,
)
from tradetrail.broker.port import OrderStatusUnknown
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side


def test_a_cancel_that_meets_a_fill_is_not_reported_as_accepted(tws, make_broker, caplog):
    conn, broker = make_broker(tws)
    account = broker.account(1)
    booked = tws.book("SPY", "BUY", 5, order_ref="tt-crossing", client_id=conn.client_id)
    tws.fill_at_cancel()
    with caplog.at_level(logging.WARNING, logger="tradetrail.tws.broker"):
        assert broker.cancel(account, str(booked.perm_id)) is False
    assert "filled before the cancellation" in caplog.text
    assert tws.order_by_ref("tt-crossing").status == "Filled" and tws.count("cancelOrder") == 1
    assert broker.cancel(account, str(booked.perm_id)) is False  # filled: nothing to cancel, nothing sent
    assert tws.count("cancelOrder") == 1


def test_a_leg_never_answered_expires_after_two_settled_looks_past_the_expiry(tws, make_broker):
    conn, broker = make_broker(tws)
    account = broker.account(1)
    tws.drop_at_placement(1)  # the connection dies with the only leg unread: TWS never had it
    spec = OrderSpec("tt-lost-at-the-drop-entry", Leg.ENTRY, Side.BUY, OrderType.LMT, 5,
                     limit_price=round(tws.last_close("SPY") * 0.5, 2))
    assert broker.place(account, SPY_CONTRACT, [spec]).status == "ambiguous"
    until(lambda: conn.connected and conn.epoch == 2, what="the reconnection")
    conn.settle_s = 0.0
    broker.mark_expiry_s = 3600.0  # not old enough yet: any number of looks leaves it UNKNOWN
    for _ in range(3):
        with pytest.raises(OrderStatusUnknown, match="never answered"):
            broker.order(account, spec.client_order_id)
    broker.mark_expiry_s = 0.0  # old enough now: the first settled look counts, the second ends the wait
    with pytest.raises(OrderStatusUnknown, match="never answered"):
        broker.order(account, spec.client_order_id)
    assert broker.order(account, spec.client_order_id) is None
    assert broker.describe()["unanswered_orders"] == []
    assert tws.order_by_ref(spec.client_order_id) is None


def test_the_expiry_is_at_least_30_s_and_twice_the_request_timeout(tws, make_broker):
    assert make_broker(tws)[1].mark_expiry_s == 30.0
    assert make_broker(tws, tws_timeout_s=20.0)[1].mark_expiry_s == 40.0
