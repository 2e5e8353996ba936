"""A TCP proxy in front of the fake TWS that can stop forwarding while keeping every socket open: a half-open
gateway or a dead network path (no FIN, no RST), which the adapter must notice by itself."""

from __future__ import annotations

import socket
import threading
import time


class FreezableProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.frozen = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                return
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), name="proxy-pipe", daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                break
            while self.frozen.is_set() and not self._closed:
                time.sleep(0.02)  # held: nothing forwarded, nothing closed
            try:
                sink.sendall(data)
            except OSError:
                return
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        self.frozen.clear()
        self._server.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
