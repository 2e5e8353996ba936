"""A connection attempt has one deadline covering the handshake, ib_async's synchronisation and ours, and the
caller's wait covers it: a gateway slow to answer after its restart still ends in a connection, not a caller
giving up mid-synchronisation. An attempt cut off anyway leaves a trace (backoff, last_error) and no half-made
connection."""

from __future__ import annotations

import time

import pytest

from tests.integration.tws.tws_harness import tws_fixture, tws_values, until  # noqa: F401
from tradetrail.settings import Settings
from tradetrail.tws.connection import TwsConnection


@pytest.fixture(name="connection")
def connection_fixture(tws):
    made: list[TwsConnection] = []

    def make(**extra) -> TwsConnection:
        made.append(TwsConnection(Settings(**tws_values(tws, **extra))))
        return made[-1]

    yield make
    for conn in made:
        conn.close()


def test_a_slow_synchronisation_ends_in_a_connection_within_the_callers_wait(tws, connection):
    tws.delay_answers("reqPositions", 120)  # every read after it on the connection waits behind it
    conn = connection(tws_connect_timeout_s=2.0, tws_timeout_s=4.0)
    started = time.monotonic()
    conn.ensure_connected()  # ib_async's sync times out (2 s), then each of our three reads (4 s each)
    assert conn.connected and time.monotonic() - started < conn.attempt_s() + 5
    synced = conn.status()["synced"]
    assert synced["open_orders_all_clients"] == synced["executions"] == "not read: TimeoutError"


def test_a_connection_attempt_cut_off_is_recorded_and_leaves_no_half_made_connection(tws, connection):
    tws.delay_answers("reqPositions", 120)
    conn = connection(tws_connect_timeout_s=2.0, tws_timeout_s=4.0)
    conn._start()
    with pytest.raises(TimeoutError):
        conn._submit(conn._connect(reconnect=False), 0.5)  # the caller gives up mid-synchronisation
    until(lambda: conn.status()["last_error"], what="the cut-off attempt's trace")
    assert "cut off" in conn.status()["last_error"]
    assert conn._next_attempt > time.monotonic() - 0.5 and conn._failures == 1
    until(lambda: not conn.ib.isConnected(), what="the half-made connection closed")
    assert not conn.connected
