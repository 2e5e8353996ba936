"""A process that forks after its TWS connection started (a worker pool, a daemonising command): the child
holds no loop thread and must never touch the parent's socket. Its next request connects afresh, as a clientId
of its own, while the parent's connection keeps working."""

from __future__ import annotations

import json
import os

from tests.integration.tws.tws_harness import make_broker_fixture, tws_fixture, until  # noqa: F401


def _in_child(conn, out_fd: int) -> None:
    """The child's side: report what it sees, then make a request through its own connection."""
    fresh = {"thread": conn._thread is None, "ib": conn.ib is None, "connected": conn.connected}
    try:
        stamp = conn.run(lambda ib: ib.reqCurrentTimeAsync(), what="the time")
        result = {"fresh": fresh, "client_id": conn.client_id, "asked": stamp is not None}
    except BaseException as exc:  # noqa: BLE001 - the parent asserts on what happened
        result = {"fresh": fresh, "error": repr(exc)}
    os.write(out_fd, json.dumps(result).encode())
    os.close(out_fd)
    conn.close()


def test_a_forked_child_connects_as_its_own_client_and_the_parent_keeps_its_connection(tws, make_broker):
    conn, broker = make_broker(tws)
    conn.ensure_connected()
    parent_id = conn.client_id
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            _in_child(conn, write_fd)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result = json.loads(answer)
    assert result["fresh"] == {"thread": True, "ib": True, "connected": False}
    assert result.get("asked") is True, result
    assert result["client_id"] != parent_id and result["client_id"] in tws.seen_client_ids
    # the parent's connection was never closed or disturbed by the child
    assert conn.connected and conn.client_id == parent_id and conn.epoch == 1
    assert broker.health().healthy
    assert conn.run(lambda ib: ib.reqCurrentTimeAsync(), what="the time") is not None
    until(lambda: tws.connections == 1, what="the child's connection closed at the fake")
