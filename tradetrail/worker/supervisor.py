"""``tradetrail worker`` with both queues: a runs worker and a control worker side by side.

The runs worker's pool processes are busy for as long as a model takes to answer; beat's dispatch and sweep
sent to the same pool waited behind them (every process busy in 40 s runs: eight dispatches queued, then
run all at once). So the control queue has a Celery worker of its own, one process that runs nothing but
dispatch and sweep, and this supervisor runs the two as child processes (each a fresh interpreter started
with ``--queues runs`` or ``--queues control``): one command still gives the README's one-worker setup.

SIGTERM or SIGINT is passed on (a warm shutdown: running executions finish), a second one asks for a cold
shutdown; the supervisor ends when both have. A child that ends on its own is logged and started again,
unless it ended right after starting (a configuration it cannot run with), which stops the supervisor with
an error instead of a restart loop. Each child stops by itself if the supervisor is killed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

START_GRACE_S = 10.0  # a child that ends sooner after its start cannot run: stop rather than loop
POLL_S = 0.5


class _Child:
    def __init__(self, name: str, argv: Sequence[str]):
        self.name, self.argv = name, list(argv)
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv)
        self.started = time.monotonic()
        log.info("started the %s worker (pid %d)", self.name, self.proc.pid)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)


class Supervisor:
    """Start ``children`` ({name: argv}), keep them running, stop them together."""

    def __init__(self, children: dict[str, Sequence[str]]):
        self.children = [_Child(name, argv) for name, argv in children.items()]
        self._signals = 0

    def _on_signal(self, signum, _frame) -> None:
        self._signals += 1
        forward = signal.SIGTERM if self._signals == 1 else signal.SIGQUIT  # Celery: warm, then cold shutdown
        log.info("got signal %d: %s shutdown of the workers", signum, "warm" if self._signals == 1 else "cold")
        for child in self.children:
            child.signal(forward)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for child in self.children:
            child.start()
        failed = None
        while any(c.proc.poll() is None for c in self.children):
            time.sleep(POLL_S)
            if self._signals or failed:
                continue
            for child in self.children:
                code = child.proc.poll()
                if code is None:
                    continue
                if time.monotonic() - child.started < START_GRACE_S:
                    failed = f"the {child.name} worker exited with code {code} right after it started"
                    log.error("%s; stopping", failed)
                    self._on_signal(signal.SIGTERM, None)
                    self._signals = 0  # our own stop, not the operator's: a second failure still escalates
                    break
                log.error("the %s worker (pid %d) ended unexpectedly (exit code %s); starting it again",
                          child.name, child.proc.pid, code)
                child.start()
        return 1 if failed else 0


def exit_with_parent(parent_pid: int, interval_s: float = 1.0) -> None:
    """In a supervised worker: end (warm shutdown) when the supervisor is gone, so a killed ``tradetrail
    worker`` leaves no worker consuming tasks behind it."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        log.warning("the supervising process %d is gone; shutting down (running executions finish)", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
