"""Embedded mode on more than one core: extra processes that each run the dispatcher and a pool.

Python runs one thread at a time per process, so one embedded process uses about one core however many
threads it has. With ``TRADETRAIL_EMBEDDED_PROCESSES`` > 1, ``tradetrail serve`` starts that many minus one
helper processes beside itself. Each runs the same dispatcher over the same database: a slot is claimed by
inserting it under a unique key, so whichever process inserts it runs it, exactly once, and the strategy
lock (a file lock on SQLite, an advisory lock on PostgreSQL) keeps runs of one strategy from overlapping
across processes. No queue sits in between. Only the serving process sweeps orphaned executions.

Strategies that use IBKR (as broker or for market data) run in the serving process only: an IBKR gateway
is one session, and its state (when it was reopened, what its first reads return) and its pacing budget
are kept per process. Helpers leave those slots to the serving process.

A helper stops when told (SIGTERM: no new slot is claimed, running executions finish, claimed slots not
yet started are released as skipped) and on its own when the serving process is gone, so none outlives a
killed ``serve``. One that ends unexpectedly is logged with its exit code and started again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time

from tradetrail.observability.multiprocess import mark_dead
from tradetrail.runtime.registries import uses_gateway_session
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.settings import Settings

log = logging.getLogger(__name__)

STOP_WAIT_S = 300.0  # a run waits on the model for at most its timeout times its attempts; then give up
RESTART_AFTER_S = 10.0  # a helper that keeps dying is started again at most this often


def uses_ibkr(settings: Settings, config: StrategyConfig) -> bool:
    return uses_gateway_session(config.broker or settings.broker, config.market_data.source or settings.market_data)


def helper_main(settings: Settings, parent_pid: int, log_level: str, ready) -> None:
    """The body of one helper process (spawned: nothing is inherited but ``settings``)."""
    logging.basicConfig(level=log_level, format=f"%(asctime)s run-process {os.getpid()} %(levelname)s "
                                                "%(name)s: %(message)s")
    from tradetrail.observability import logs, multiprocess

    logs.configure(settings)  # the metrics folder came with the environment the serving process set
    from tradetrail.runtime.build import build_app
    from tradetrail.services.scheduling.embedded import EmbeddedScheduler

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    app = build_app(settings, migrate=False)  # the serving process migrated before starting us
    scheduler = EmbeddedScheduler(app, sweep=False, accept=lambda config: not uses_ibkr(settings, config))
    scheduler.start()
    ready.set()
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            log.warning("the serving process %d is gone; stopping", parent_pid)
            break
    scheduler.stop()
    app.engine.dispose()
    multiprocess.mark_dead()


class _Helper:
    def __init__(self, ctx, settings: Settings, name: str, log_level: str):
        self.ready = ctx.Event()
        self.proc = ctx.Process(target=helper_main, args=(settings, os.getpid(), log_level, self.ready),
                                name=name, daemon=True)
        self.started_at = time.monotonic()
        self.proc.start()


class RunProcesses:
    """The helper processes of one serving process."""

    def __init__(self, settings: Settings, count: int):
        self.settings, self.count = settings, count
        self._ctx = multiprocessing.get_context("spawn")  # no fork: the parent holds threads and connections
        self._helpers: list[_Helper] = []
        self._stopping = False
        self.restarts = 0

    def _spawn(self, i: int) -> _Helper:
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        return _Helper(self._ctx, self.settings, f"tradetrail-run-{i + 1}", level)

    def start(self) -> None:
        self._helpers = [self._spawn(i) for i in range(self.count)]
        if self._helpers:
            log.info("embedded mode: %d run process(es) beside this one: %s", self.count,
                     ", ".join(str(p) for p in self.pids()))

    def check(self) -> None:
        """Log and start again a helper that ended while it should be running."""
        for i, helper in enumerate(self._helpers):
            if self._stopping or helper.proc.is_alive():
                continue
            helper.proc.join(0)
            log.error("run process %s ended unexpectedly (exit code %s)", helper.proc.pid, helper.proc.exitcode)
            mark_dead(helper.proc.pid)
            if time.monotonic() - helper.started_at >= RESTART_AFTER_S and not self._stopping:
                self._helpers[i] = self._spawn(i)
                self.restarts += 1
                log.warning("run process started again: %s", self._helpers[i].proc.pid)

    def ready(self) -> int:
        """Helpers running their dispatcher now."""
        return sum(h.proc.is_alive() and h.ready.is_set() for h in self._helpers)

    def starting(self) -> int:
        return sum(h.proc.is_alive() and not h.ready.is_set() for h in self._helpers)

    def pids(self) -> list[int]:
        return [h.proc.pid for h in self._helpers if h.proc.pid is not None]

    def processes(self) -> list[multiprocessing.process.BaseProcess]:
        return [h.proc for h in self._helpers]

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(h.ready.wait(max(0.0, deadline - time.monotonic())) for h in self._helpers)

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        self._stopping = True
        for helper in self._helpers:
            if helper.proc.is_alive():
                helper.proc.terminate()  # SIGTERM: finish what runs, release what has not started
        deadline = time.monotonic() + wait_s  # one deadline for all: they stop side by side
        for helper in self._helpers:
            helper.proc.join(max(0.0, deadline - time.monotonic()))
            if helper.proc.is_alive():  # the sweep marks what it was running as failed
                log.error("run process %d did not stop within %.0f s; killing it", helper.proc.pid, wait_s)
                helper.proc.kill()
                helper.proc.join(5)
