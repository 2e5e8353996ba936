"""Nothing reads TWS while a (re)connection synchronises: ib_async says "connected" as soon as the handshake
ends, and a read of all clients' open orders then shares ib_async's answer key with the synchronisation's own,
so it could end with the wrong (shorter) list, call an order absent, and send it a second time."""

from __future__ import annotations

import threading
import time

from tests.integration.tws.tws_harness import SPY, make_broker_fixture, tws_fixture, until  # noqa: F401
from tradetrail.domain.contract import Contract
from tradetrail.domain.orders import Leg, OrderSpec, OrderType, Side
from tradetrail.tws.errors import NotConnected

COID = "tt-0123456789abcdef0123-entry"


def test_an_order_of_another_client_is_never_absent_while_a_reconnection_synchronises(tws, make_broker):
    conn, broker = make_broker(tws)
    account = broker.account(1)
    tws.book("SPY", "BUY", 10, order_ref=COID, client_id=2)  # an earlier incarnation of us, as clientId 2
    assert broker.order(account, COID).status == "SUBMITTED"
    tws.delay_answers("reqOpenOrders", 0.6)  # a gateway slow to answer after a restart
    tws.delay_answers("reqAllOpenOrders", 0.6)
    tws.drop_connections()
    until(lambda: not conn.connected, what="the drop")
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(s == "SUBMITTED" for s in seen):
        if not conn.ib.isConnected():  # ib_async's "connected": from the handshake on, mid-synchronisation
            time.sleep(0.005)
            continue
        try:
            found = broker.order(account, COID)
        except Exception as exc:  # not connected yet: a clear error, never "absent"
            seen.append(type(exc).__name__)
        else:
            seen.append(None if found is None else found.status)
            assert found is not None, seen
        time.sleep(0.005)
    assert seen[-1] == "SUBMITTED" and None not in seen
    spec = OrderSpec(COID, Leg.ENTRY, Side.BUY, OrderType.LMT, 10, limit_price=100.0)
    placed = broker.place(account, Contract(source="ibkr_tws", symbol="SPY", name="SPY", conid=SPY), [spec])
    assert placed.status == "ambiguous" and "already registered" in placed.reason
    assert [o.client_id for o in tws.orders if o.order_ref == COID] == [2]  # never a second one


def test_health_during_the_first_connections_synchronisation_waits_for_it(tws, make_broker):
    tws.delay_answers("reqPositions", 0.8)
    conn, broker = make_broker(tws)
    conn._start()
    first = threading.Thread(target=conn.ensure_connected)
    first.start()
    until(lambda: conn.ib.isConnected(), what="the handshake")  # ib_async's "connected", mid-synchronisation
    try:
        health = broker.health()
    finally:
        first.join(30)
    assert health.healthy, health.message
    assert "no managed account" not in health.message


def test_a_request_while_connecting_waits_or_fails_saying_so(tws, make_broker):
    tws.delay_answers("reqPositions", 0.5)
    conn, _ = make_broker(tws)
    conn._start()
    first = threading.Thread(target=conn.ensure_connected)
    first.start()
    until(lambda: conn.ib.isConnected(), what="the handshake")
    assert not conn.connected  # the synchronisation is still running
    try:
        conn.run(lambda ib: _positions(ib), what="positions")
    except NotConnected as exc:
        assert "connecting" in str(exc)
    first.join(30)
    assert conn.connected


async def _positions(ib):
    return ib.positions()
