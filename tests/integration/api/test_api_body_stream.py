"""The body bound on a real server (`tradetrail serve`, uvicorn): a request over the bound is refused before
its body is read — at once by its declared length, or as soon as a streamed body without one passes it."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).with_name("tradetrail")
MAX = 1_000_000  # the default TRADETRAIL_MAX_REQUEST_BYTES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(cli_env):
    port = _free_port()
    env = {**cli_env, "TRADETRAIL_SCHEDULER_ENABLED": "false"}
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _head(path: str, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}"
            "Connection: close\r\n\r\n").encode()


def _answer(sock: socket.socket, timeout: float) -> tuple[int, dict]:
    """The status and JSON body of the answer, read until the server closes (or ``timeout``)."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            if data and b"\r\n\r\n" in data:
                break
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    assert data, "no answer"
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_declared_length_over_the_bound_is_refused_before_any_body(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(_head("/api/auth/login", f"Content-Length: {50 * MAX}\r\n"))  # and not one byte of body
        status, body = _answer(sock, timeout=10)
    assert status == 413 and body["error"]["code"] == "too_large"


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_bound(server):
    chunk = b'"' + b"x" * 65_534 + b'"'
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent, answered = 0, None
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(_head("/api/auth/login", "Transfer-Encoding: chunked\r\n") + b"1\r\n[\r\n")
        sock.setblocking(False)
        deadline = time.monotonic() + 30
        while sent < 40 * MAX and time.monotonic() < deadline:  # never finished: the server must not wait for it
            readable, writable, _ = select.select([sock], [sock], [], 0.5)
            if readable:
                sock.setblocking(True)
                answered = _answer(sock, timeout=10)
                break
            if writable:
                try:
                    sent += sock.send(framed)
                except (BlockingIOError, InterruptedError):
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
        if answered is None:
            sock.setblocking(True)
            answered = _answer(sock, timeout=10)
    status, body = answered
    assert status == 413 and body["error"]["code"] == "too_large"
    assert sent < 40 * MAX  # answered long before the client stopped sending
    # and the server goes on serving
    with urllib.request.urlopen(f"http://127.0.0.1:{server}/health", timeout=5) as resp:
        assert resp.status == 200
