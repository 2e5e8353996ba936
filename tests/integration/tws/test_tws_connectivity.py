"""What TWS says of its own link to IBKR's servers while we connect is kept: a 1100 sent during the connect
leaves the broker unhealthy (it is not overwritten by "connected"), until 1101/1102."""

from __future__ import annotations

from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture, until  # noqa: F401


def test_a_1100_sent_while_connecting_leaves_the_broker_unhealthy_until_restored(tws, make_broker):
    tws.connectivity_at_start(1100)  # TWS is cut off from IBKR when we log on
    conn, broker = make_broker(tws)
    health = broker.health()
    assert 1100 in [m["code"] for m in conn.status()["messages"]]
    assert conn.status()["ib_connectivity"] == "lost"
    assert not health.healthy and "(1100)" in health.message
    tws.connectivity(1102)
    until(lambda: broker.health().healthy, what="1102 restoring health")


def test_a_reconnection_without_1100_is_healthy_again(tws, make_broker):
    tws.connectivity_at_start(1100)
    conn, broker = make_broker(tws)
    assert not broker.health().healthy
    tws.connectivity_at_start(None)
    tws.drop_connections()
    until(lambda: conn.connected and conn.epoch == 2, what="the reconnection")
    assert broker.health().healthy


def test_account_values_keep_working_through_1101_and_1102_with_no_summary_left_open(tws, make_broker):
    """TWS lets a client hold two account summary subscriptions (then 322): neither our 1101 resubscription
    nor ib_async's own 1102 handler may leave one open, or every risk check's account_values() fails."""
    conn, broker = make_broker(tws)
    account = broker.account(1)
    assert broker.account_values(account).equity == tws.net_liquidation()
    for restored in (1101, 1102, 1101, 1102):
        tws.connectivity(1100)
        tws.connectivity(restored)
        until(lambda: conn.status()["ib_connectivity"] == "restored", what=f"{restored} seen")
    until(lambda: conn.status()["resubscribed"] == 2, what="the resubscriptions after 1101")
    assert broker.account_values(account).equity == tws.net_liquidation()
    until(lambda: tws.open_summaries == 0, what="our summary cancelled")  # the cancel is on its way


def test_a_2110_is_ended_by_a_data_farm_ok_without_1101_or_1102(tws, make_broker):
    """TWS may follow 2110 ("restored automatically") with only the farms' "connection is OK", never 1101/1102:
    the broker must not stay unhealthy (every order UNKNOWN) until the next reconnection."""
    conn, broker = make_broker(tws)
    assert broker.health().healthy
    tws.connectivity(2110)
    until(lambda: conn.status()["ib_connectivity"] == "lost", what="2110 seen")
    health = broker.health()
    assert not health.healthy and "(2110)" in health.message
    tws.connectivity(2104)
    until(lambda: broker.health().healthy, what="a farm OK ending the 2110")
    assert conn.status()["ib_connectivity"] == "restored"


def test_a_1100_is_not_ended_by_a_data_farm_ok(tws, make_broker):
    conn, broker = make_broker(tws)
    assert broker.health().healthy
    tws.connectivity(1100)
    until(lambda: conn.status()["ib_connectivity"] == "lost", what="1100 seen")
    tws.connectivity(2110)  # a 2110 on top of a 1100 does not make a farm OK enough
    tws.connectivity(2104)
    tws.connectivity(2158)
    until(lambda: [m["code"] for m in conn.status()["messages"]][-2:] == [2104, 2158], what="the farm OKs seen")
    assert conn.status()["ib_connectivity"] == "lost" and not broker.health().healthy
    tws.connectivity(1102)
    until(lambda: broker.health().healthy, what="1102 restoring health")
