"""Liveness stamps in Redis (distributed mode), so ``/health`` can tell a stopped beat or a queue nobody
consumes from a quiet one.

- Beat's dispatch task stamps :data:`DISPATCH_KEY` with the time each time it runs: no stamp within a few
  intervals means beat (or the control worker that runs its dispatch) has stopped.
- A worker consuming the runs queue keeps ``tradetrail:heartbeat:worker:<node>`` alive (a JSON stamp with
  its queues, refreshed every ``TRADETRAIL_WORKER_HEARTBEAT_S``, expiring after three of them): no key means
  no live worker takes runs.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from functools import lru_cache

log = logging.getLogger(__name__)
DISPATCH_KEY = "tradetrail:heartbeat:dispatch"
WORKER_PREFIX = "tradetrail:heartbeat:worker:"
TIMEOUT_S = 2.0


@lru_cache(maxsize=8)
def _client(url: str, pid: int):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)


def client(url: str):
    """A Redis client for ``url``, one per process (a forked child makes its own)."""
    return _client(url, os.getpid())


def stamp_dispatch(url: str, now: float | None = None) -> None:
    client(url).set(DISPATCH_KEY, repr(time.time() if now is None else now))


def dispatch_age(redis_client, now: float | None = None) -> float | None:
    """Seconds since the last dispatch stamp, None if there never was one."""
    raw = redis_client.get(DISPATCH_KEY)
    if raw is None:
        return None
    return (time.time() if now is None else now) - float(raw)


def stamp_worker(url: str, node: str, queues: list[str], ttl_s: float) -> None:
    body = json.dumps({"at": time.time(), "queues": queues, "pid": os.getpid()})
    client(url).set(WORKER_PREFIX + node, body, px=max(1, int(ttl_s * 1000)))


def forget_worker(url: str, node: str) -> None:
    client(url).delete(WORKER_PREFIX + node)


def live_workers(redis_client, queue: str, stale_s: float, now: float | None = None) -> list[str]:
    """Nodes whose stamp says they consume ``queue`` and is younger than ``stale_s``."""
    now = time.time() if now is None else now
    out = []
    for key in redis_client.scan_iter(match=WORKER_PREFIX + "*", count=100):
        raw = redis_client.get(key)
        try:
            stamp = json.loads(raw) if raw else None
        except ValueError:
            stamp = None
        if stamp and queue in stamp.get("queues", ()) and now - float(stamp.get("at", 0)) <= stale_s:
            name = key.decode() if isinstance(key, bytes) else key
            out.append(name[len(WORKER_PREFIX):])
    return sorted(out)


class WorkerHeartbeat:
    """A daemon thread that stamps this worker's key every ``every_s`` until stopped (then removes it)."""

    def __init__(self, url: str, node: str, queues: list[str], every_s: float):
        self.url, self.node, self.queues, self.every_s = url, node, queues, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> WorkerHeartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                stamp_worker(self.url, self.node, self.queues, 3 * self.every_s)
            except Exception as exc:  # noqa: BLE001 - Redis away: /health will say so; keep trying
                log.warning("worker heartbeat: %s", exc)
            if self._stop.wait(self.every_s):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            forget_worker(self.url, self.node)
        except Exception:  # noqa: BLE001
            pass
