"""Closing the connection while the reconnect loop is mid-attempt (the handshake done, ib_async still reading
positions) ends that attempt on the loop before the loop stops: no task left pending ("Task was destroyed but
it is pending"), no socket closed under a running read ("Bad file descriptor"), no loop thread left running."""

from __future__ import annotations

import asyncio
import logging
import threading

from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture, until  # noqa: F401


def test_closing_during_a_reconnection_leaves_no_pending_task_error_or_thread(tws, make_broker, caplog, capfd):
    conn, _ = make_broker(tws)
    conn.ensure_connected()
    loop, thread = conn._loop, conn._thread
    tws.delay_answers("reqPositions", 30)  # the reconnection's connectAsync waits on its positions
    tws.drop_connections()
    until(lambda: tws.count("reqPositions") >= 2, what="the reconnection reading its positions")
    capfd.readouterr()  # what earlier tests' leftovers printed is not this test's
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        conn.close()
        assert not thread.is_alive()
        assert asyncio.all_tasks(loop) == set()  # nothing left pending on it: nothing to be "destroyed" later
    errors = capfd.readouterr().err + caplog.text
    assert "destroyed but it is pending" not in errors and "Bad file descriptor" not in errors
    assert thread not in threading.enumerate()  # this connection's loop thread (other tests' may still end)
    tws.delay_answers("reqPositions", 0)


def test_a_request_cut_off_by_close_fails_as_a_drop_not_as_never_sent(tws, make_broker):
    """close() cancels a request on the loop mid-way: the caller gets NotConnected saying it dropped during the
    request (a placement then says ambiguous, never "not sent"), not a bare CancelledError."""
    conn, _ = make_broker(tws)
    conn.ensure_connected()
    tws.delay_answers("reqCurrentTime", 30)
    failed: list[BaseException] = []

    def ask() -> None:
        try:
            conn.run(lambda ib: ib.reqCurrentTimeAsync(), timeout=25, what="the time")
        except BaseException as exc:  # noqa: BLE001 - what reached the caller is the point
            failed.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    until(lambda: tws.count("reqCurrentTime") >= 1, what="the request sent")
    conn.close()
    asker.join(20)
    assert not asker.is_alive()
    assert len(failed) == 1 and type(failed[0]).__name__ == "NotConnected" and "dropped during" in str(failed[0])
    tws.delay_answers("reqCurrentTime", 0)
