"""Embedded mode on more than one core: extra processes that each run the dispatcher and a pool.

Python runs one thread at a time per process, so one embedded process uses about one core however many
threads it has. With ``TRADETRAIL_EMBEDDED_PROCESSES`` > 1, ``tradetrail serve`` starts that many minus one
helper processes beside itself. Each runs the same dispatcher over the same database: a slot is claimed by
inserting it under a unique key, so whichever process inserts it runs it, exactly once, and the strategy
lock (a file lock on SQLite, an advisory lock on PostgreSQL) keeps runs of one strategy from overlapping
across processes. No queue sits in between. Only the serving process sweeps orphaned executions.

A helper stops when told (SIGTERM: no new slot is claimed, running executions finish) and on its own
when the serving process is gone, so none outlives a killed ``serve``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time

from tradetrail.settings import Settings

log = logging.getLogger(__name__)

STOP_WAIT_S = 300.0  # a run waits on the model for at most its timeout times its attempts; then give up


def helper_main(settings: Settings, parent_pid: int, log_level: str, ready) -> None:
    """The body of one helper process (spawned: nothing is inherited but ``settings``)."""
    logging.basicConfig(level=log_level, format=f"%(asctime)s run-process {os.getpid()} %(levelname)s "
                                                "%(name)s: %(message)s")
    from tradetrail.services.app import build_app
    from tradetrail.services.embedded import EmbeddedScheduler

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    app = build_app(settings, migrate=False)  # the serving process migrated before starting us
    scheduler = EmbeddedScheduler(app, sweep=False)
    scheduler.start()
    ready.set()
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            log.warning("the serving process %d is gone; stopping", parent_pid)
            break
    scheduler.stop()
    app.engine.dispose()


class RunProcesses:
    """The helper processes of one serving process."""

    def __init__(self, settings: Settings, count: int):
        self.settings, self.count = settings, count
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self._ready: list = []

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # no fork: the parent holds threads and connections
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        for i in range(self.count):
            ready = ctx.Event()
            proc = ctx.Process(target=helper_main, args=(self.settings, os.getpid(), level, ready),
                               name=f"tradetrail-run-{i + 1}", daemon=True)
            proc.start()
            self.procs.append(proc)
            self._ready.append(ready)
        if self.procs:
            log.info("embedded mode: %d run process(es) beside this one: %s", len(self.procs),
                     ", ".join(str(p.pid) for p in self.procs))

    def alive(self) -> int:
        """Helpers running their dispatcher now (started, not yet ended)."""
        return sum(p.is_alive() and r.is_set() for p, r in zip(self.procs, self._ready, strict=True))

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(r.wait(max(0.0, deadline - time.monotonic())) for r in self._ready)

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: finish what runs, claim nothing new
        for proc in self.procs:
            proc.join(wait_s)
            if proc.is_alive():  # the sweep marks what it was running as failed
                log.error("run process %d did not stop within %.0f s; killing it", proc.pid, wait_s)
                proc.kill()
                proc.join(5)
        self.procs.clear()
        self._ready.clear()
