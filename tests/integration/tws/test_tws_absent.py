"""``order()`` says "absent" (None) only when TWS provably has no such order: never for a leg this process sent
and TWS never answered (even after a reconnection, since TWS may not list a bracket's untransmitted legs to a
later session), never while TWS has lost IBKR's servers (1100), never from one read just after a
(re)connection; and ``place()`` never sends again a leg whose earlier attempt is unanswered."""

from __future__ import annotations

import threading

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


def test_legs_sent_before_a_drop_and_not_listed_later_are_unknown_and_never_sent_again(tws, make_broker):
    conn, broker = make_broker(tws)
    account = broker.account(1)
    tws.hide_untransmitted()  # a later session does not see the first two (untransmitted) legs
    tws.drop_at_placement(3)  # the gateway goes away as the leg that transmits arrives
    legs = resting_bracket("tt-dropped-bracket", tws.last_close("SPY"))
    first = broker.place(account, SPY_CONTRACT, legs)
    assert first.status == "ambiguous", first
    until(lambda: conn.connected and conn.epoch == 2, what="the reconnection")
    for leg in legs:
        with pytest.raises(OrderStatusUnknown, match="never answered"):
            broker.order(account, leg.client_order_id)
    sent = tws.count("placeOrder")
    again = broker.place(account, SPY_CONTRACT, legs)
    assert again.status == "ambiguous" and "never answered" in again.reason
    assert tws.count("placeOrder") == sent  # nothing sent a second time
    assert "tt-dropped-bracket-entry" in broker.describe()["unanswered_orders"]


def test_while_tws_has_lost_ibkr_no_order_is_absent(tws, make_broker):
    conn, broker = make_broker(tws)
    account = broker.account(1)
    conn.settle_s = 0.0
    tws.connectivity(1100)
    until(lambda: conn.status()["ib_connectivity"] == "lost", what="1100 seen")
    with pytest.raises(OrderStatusUnknown, match="1100"):
        broker.order(account, "tt-never-sent-anywhere")
    tws.connectivity(1102)
    until(lambda: conn.status()["ib_connectivity"] == "restored", what="1102 seen")
    assert broker.order(account, "tt-never-sent-anywhere") is None  # now it provably has none


def test_an_order_tws_lists_a_moment_after_a_reconnection_is_not_called_absent(tws, make_broker):
    conn, broker = make_broker(tws)
    account = broker.account(1)
    tws.drop_connections()
    until(lambda: conn.connected and conn.epoch == 2, what="the reconnection")
    late = threading.Timer(0.3, lambda: tws.book("SPY", "BUY", 3, order_ref="tt-listed-late", client_id=7))
    late.start()
    try:
        found = broker.order(account, "tt-listed-late")
    finally:
        late.join(10)
    assert found is not None and found.status == "SUBMITTED"
