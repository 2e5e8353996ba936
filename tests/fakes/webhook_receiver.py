"""A JSON webhook receiver on a real local socket (what Apprise's ``json://`` posts to).

Every request is recorded with its body. A message counts as *acknowledged* only when the receiver answered
200 to a sender that was still connected; ``hold()`` makes the receiver keep the next requests unanswered
until ``release()``, so a test can kill the sender while a message is in flight. A held request whose
sender hung up meanwhile is recorded as *abandoned* (never answered): the sender did not learn it arrived.
``hold_at = n`` holds the n-th request only. ``fail_next(n)`` answers the next n requests 500.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENT_NUMBER = re.compile(r"\(tradetrail event (\d+)\)")


@dataclass
class Received:
    path: str
    body: dict
    outcome: str = "pending"  # acknowledged | abandoned | refused | pending

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))

    @property
    def title(self) -> str:
        return str(self.body.get("title", ""))

    @property
    def event(self) -> int | None:
        match = EVENT_NUMBER.search(self.message)
        return int(match.group(1)) if match else None


def _peer_gone(sock: socket.socket) -> bool:
    """The sender closed its end (a killed process's sockets are closed by the kernel)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        fake: WebhookReceiver = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode("latin-1")}
        item = Received(self.path, body)
        with fake.lock:
            fake.received.append(item)
            refuse = fake._failures > 0
            if refuse:
                fake._failures -= 1
            if fake.hold_at is not None and len(fake.received) == fake.hold_at:
                fake.released.clear()  # this one is kept unanswered until release()
            fake.arrived.notify_all()
        if refuse:
            item.outcome = "refused"
            self.send_response(500)
            self.end_headers()
            return
        fake.released.wait(timeout=60)
        if _peer_gone(self.connection):
            item.outcome = "abandoned"
            self.close_connection = True
            return
        item.outcome = "acknowledged"  # answered to a sender still there (set first: it may read at once)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class WebhookReceiver:
    """``with WebhookReceiver() as hook:`` gives ``hook.port``; ``hook.url(path)`` an Apprise json:// URL."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.received: list[Received] = []
        self.released = threading.Event()
        self.released.set()
        self._failures = 0
        self.hold_at: int | None = None  # the n-th request (1-based) is held unanswered until release()
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> WebhookReceiver:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.fake = self
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="webhook-receiver").start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def fail_next(self, n: int) -> None:
        with self.lock:
            self._failures = n

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Until ``count`` requests have arrived (any outcome)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout=timeout):
                raise AssertionError(f"{len(self.received)} of {count} requests arrived in {timeout} s")
            return list(self.received)

    def acknowledged(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.outcome == "acknowledged"]
