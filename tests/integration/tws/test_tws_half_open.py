"""A connection that stops answering without ever closing (a half-open gateway, a dead path) is noticed: health's
liveness probe reports it, two requests in a row unanswered close it, and the reconnect loop brings a new one
once the path works again."""

from __future__ import annotations

import pytest

from tests.integration.tws.tcp_proxy import FreezableProxy
from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture, until  # noqa: F401
from tradetrail.tws.errors import RequestTimedOut

pytestmark = pytest.mark.once  # the connection to the gateway: the same on either backend


@pytest.fixture(name="proxy")
def proxy_fixture(tws):
    proxy = FreezableProxy(tws.port)
    yield proxy
    proxy.close()


def test_a_half_open_connection_is_reported_closed_and_replaced(tws, proxy, make_broker):
    conn, broker = make_broker(tws, tws_port=proxy.port, tws_timeout_s=1.0, tws_connect_timeout_s=1.0)
    account = broker.account(1)
    assert broker.health().connected and conn.epoch == 1
    proxy.frozen.set()
    with pytest.raises(RequestTimedOut):
        broker.positions(account)
    assert conn.connected and not broker.health().connected  # the probe goes unanswered too: the second in a row
    until(lambda: not conn.connected, what="the unanswering connection closed")
    assert "none of 2 requests" in conn.status()["last_error"] or conn.status()["drops"] >= 1
    assert not broker.health().connected
    proxy.frozen.clear()
    until(lambda: conn.connected and conn.epoch >= 2, what="a new connection once the path works again")
    assert broker.health().connected and broker.positions(account) == []
