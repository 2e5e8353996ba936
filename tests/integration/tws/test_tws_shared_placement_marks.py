"""A leg sent and never answered is UNKNOWN to every process, not only the one that placed it: the marks live in
the database. The placing process drops at placement (TWS keeps the legs untransmitted and lists them to no later
session) and dies; another process (the serving process reconciling after its reconnection) asks: UNKNOWN, never
None, and placing the bracket again sends nothing."""

from __future__ import annotations

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


def test_another_process_is_told_unknown_for_legs_the_placing_process_never_heard_back_of(tws, make_broker):
    placing, placer = make_broker(tws)
    serving, server = make_broker(tws)
    account = placer.account(1)
    server.account(1)
    tws.hide_untransmitted()
    tws.drop_at_placement(3)  # parent and stop reach TWS untransmitted; the connection dies at the target
    legs = resting_bracket("tt-shared-marks-0001", tws.last_close("SPY"))
    assert placer.place(account, SPY_CONTRACT, legs).status == "ambiguous"
    held = [o.order_ref for o in tws.orders]
    assert legs[0].client_order_id in held and legs[1].client_order_id in held
    placing.close()  # the placing process is gone: only the database remembers what it sent
    until(lambda: serving.connected and serving.epoch == 2, what="the serving process's reconnection")
    serving.settle_s = 0.0
    for leg in legs:
        with pytest.raises(OrderStatusUnknown, match="never answered"):
            server.order(account, leg.client_order_id)
    sent = tws.count("placeOrder")
    again = server.place(account, SPY_CONTRACT, legs)
    assert again.status == "ambiguous" and "never answered" in again.reason
    assert tws.count("placeOrder") == sent
    assert server.describe()["unanswered_orders"] == sorted(leg.client_order_id for leg in legs)


def test_an_acknowledged_placement_is_not_waited_for_by_another_process(tws, make_broker):
    _, placer = make_broker(tws)
    _, other = make_broker(tws)
    account = placer.account(1)
    other.account(1)
    spec = OrderSpec("tt-shared-marks-acked-entry", Leg.ENTRY, Side.BUY, OrderType.LMT, 5,
                     limit_price=round(tws.last_close("SPY") * 0.5, 2))
    result = placer.place(account, SPY_CONTRACT, [spec])
    assert result.status == "accepted"
    assert other.describe()["unanswered_orders"] == []
    assert other.order(account, spec.client_order_id).broker_order_id == result.broker_order_ids[spec.client_order_id]
    again = other.place(account, SPY_CONTRACT, [spec])  # never a duplicate: TWS lists it, and the mark says so
    assert again.status == "ambiguous" and tws.count("placeOrder") == 1
