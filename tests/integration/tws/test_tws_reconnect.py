"""A gateway that accepts the connection and then drops it again (a competing login, its connection limit, a
flapping network) is retried further and further apart, not every second forever; and the reconnection
listeners (in ``serve``: a reconciliation of every account) run on one thread, reconnections that come while
they run coalesced into one more round."""

from __future__ import annotations

import threading
import time

import pytest

from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture, until  # noqa: F401

pytestmark = pytest.mark.once  # the connection to the gateway: the same on either backend


def _listener_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tws-reconnected" and t.is_alive()]


def test_a_gateway_that_keeps_dropping_us_is_retried_further_apart_with_one_listener_thread(tws, make_broker):
    conn, _ = make_broker(tws, tws_reconnect_max_s=60.0)
    release, calls = threading.Event(), []

    def slow_listener(epoch: int) -> None:  # a reconciliation that takes a while
        calls.append(epoch)
        release.wait(30)

    conn.on_reconnect(slow_listener)
    conn.ensure_connected()
    tws.drop_after_start(0.3)
    tws.drop_connections()
    started, most_threads = time.monotonic(), 0
    while time.monotonic() - started < 6.0:
        most_threads = max(most_threads, len(_listener_threads()))
        time.sleep(0.02)
    # connected at 0 s; then 1 s, +2, +4... apart (a drop within stable_s of connecting is a flap): 3 at most
    # in 6 s, where resetting the backoff at every handshake made it 5 or more
    assert len(tws.seen_client_ids) <= 4, tws.seen_client_ids
    assert most_threads <= 1
    tws.drop_after_start(None)
    release.set()
    until(lambda: conn.connected, timeout=60, what="a connection that stays")
    until(lambda: not _listener_threads(), what="the listeners done")
    assert calls and calls == sorted(calls) and len(calls) <= conn.epoch - 1


def test_a_connection_that_lasted_resets_the_backoff(tws, make_broker):
    conn, _ = make_broker(tws, tws_reconnect_max_s=60.0)
    conn.stable_s = 0.5
    conn.ensure_connected()
    for _ in range(3):  # each one lasted past stable_s: reconnected after the first step (1 s) every time
        time.sleep(0.6)
        epoch = conn.epoch
        tws.drop_connections()
        dropped = time.monotonic()
        until(lambda e=epoch: conn.connected and conn.epoch == e + 1, what="the reconnection")
        assert time.monotonic() - dropped < 10
    assert conn.status()["drops"] == 3

