"""Embedded mode (the default): the dispatcher runs every few seconds inside ``tradetrail serve`` and the
executions run in a bounded pool of threads. On shutdown no new slot is claimed and running executions
finish; one killed mid-run is marked interrupted by the next run of its strategy or by the sweep.

The pool is wide because a run mostly waits on the model (seconds per answer): ``TRADETRAIL_EMBEDDED_WORKERS``
threads. The rest of a run is CPU under one GIL, and a hundred threads contending for it made every lock
holder (a SQLite write, an account's books) wait behind the others, so the CPU work goes through a narrow
gate of ``TRADETRAIL_EMBEDDED_CPU_SLOTS`` that a run leaves only while it waits on the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from tradetrail.db.types import utcnow
from tradetrail.schemas.strategy import StrategyConfig
from tradetrail.services.scheduling.scheduler import dispatch, release_slot, run_slot
from tradetrail.services.scheduling.sweep import sweep_interrupted
from tradetrail.workflow.executor import Step
from tradetrail.workflow.pipeline import STEPS

log = logging.getLogger(__name__)

WAITING_STEPS = frozenset({"analyze"})  # seconds on the model's answer against milliseconds of CPU
NOT_STARTED = "the service stopped before this slot started; not run late"


MINUTE_SLACK_S = 0.05  # wake just after the minute turns, so the minute's slots are due when we look


def next_pass_in(now: float, interval: float) -> float:
    """Seconds until the next dispatcher pass: after ``interval``, or at the next minute boundary if that
    comes sooner. Cron fires on whole minutes, so a 09:35 slot is claimed at 09:35:00, not up to an
    interval later."""
    to_minute = 60.0 - now % 60.0 + MINUTE_SLACK_S
    return min(interval, to_minute)


class CpuGate:
    """At most ``slots`` runs do CPU work at once; a run holds a slot except inside a waiting step."""

    def __init__(self, slots: int):
        self._slots = threading.BoundedSemaphore(slots)

    def __enter__(self) -> CpuGate:
        self._slots.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._slots.release()

    def steps(self, steps: Sequence[tuple[str, Step]]) -> list[tuple[str, Step]]:
        """The pipeline with the gate left around each waiting step (the caller holds it otherwise)."""
        return [(name, self._outside(step) if name in WAITING_STEPS else step) for name, step in steps]

    def _outside(self, step: Step) -> Step:
        def run(ctx):
            self._slots.release()
            try:
                return step(ctx)
            finally:
                t0 = time.perf_counter()
                self._slots.acquire()
                # the step's recorded duration includes this wait for a CPU slot; say how much of it it was
                ctx.step_meta["cpu_gate_wait_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        return run


class EmbeddedScheduler:
    """The dispatcher loop and the pool of one process. It claims no more than the pool can start now plus
    one pool's worth waiting, so what it cannot take soon stays unclaimed for another process (or is
    skipped once past the grace window) instead of queueing up here. On stop, runs in progress finish and
    claimed slots not yet started are released as skipped (never run late)."""

    def __init__(self, app, *, sweep: bool = True, accept: Callable[[StrategyConfig], bool] | None = None):
        self.app = app
        settings = app.settings
        self.interval = settings.scheduler_interval_s
        self.sweep_every = max(1, round(settings.sweep_interval_s / self.interval)) if sweep else 0
        self.accept = accept
        self.workers = settings.embedded_workers
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="run")
        self.gate = CpuGate(settings.embedded_cpu_slots)
        self.steps = self.gate.steps(STEPS)
        self._stop = threading.Event()
        self._passes = 0
        self.last_pass: float | None = None  # time.time() of the last pass that completed (for /health)
        self._queued: dict[Future, int] = {}  # claimed here and not yet finished -> slot id
        self._queued_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._queued)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self, strategy, slot_id: int) -> str:
        with self.gate:
            return run_slot(self.app, strategy, slot_id, steps=self.steps)

    def _submit(self, strategy, slot_id: int) -> None:
        with self._queued_lock:
            try:
                future = self.pool.submit(self._run, strategy, slot_id)
            except RuntimeError:  # the pool is shutting down: this slot will not start here
                release_slot(self.app, slot_id, NOT_STARTED)
                return
            self._queued[future] = slot_id
        future.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        with self._queued_lock:
            self._queued.pop(future, None)

    def tick(self) -> dict:
        """One pass: the sweep (on the first pass and every ``sweep_interval_s``), then the dispatcher."""
        if self.sweep_every and self._passes % self.sweep_every == 0:
            self._sweep()
        self._passes += 1
        return dispatch(self.app, utcnow(), self._submit, limit=max(0, 2 * self.workers - self.pending),
                        accept=self.accept, stopping=self._stop.is_set)

    def _sweep(self) -> None:
        try:
            swept = sweep_interrupted(self.app)
        except Exception:  # noqa: BLE001 - a failed sweep must not stop the dispatcher; the next one retries
            log.exception("sweep failed")
            return
        if swept:
            log.warning("sweep: marked %d execution(s) whose process ended as interrupted", len(swept))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.tick()
                self.last_pass = time.time()
                if report["claimed"] or report["skipped"] or report["errors"]:
                    log.info("dispatcher: %s", report)
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("dispatcher pass failed")
            self._stop.wait(next_pass_in(time.time(), self.interval))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=60)  # a pass ends at its next claim once told to stop
        with self._queued_lock:
            queued = dict(self._queued)
        self.pool.shutdown(wait=True, cancel_futures=True)  # running executions finish; queued ones never start
        released = [slot_id for future, slot_id in queued.items() if future.cancelled()]
        for slot_id in released:
            release_slot(self.app, slot_id, NOT_STARTED)
        if released:
            log.info("stopping: %d claimed slot(s) not yet started were released as skipped", len(released))


class EmbeddedService:
    """What ``tradetrail serve`` runs in embedded mode: this process's scheduler and, with
    ``TRADETRAIL_EMBEDDED_PROCESSES`` > 1, helper processes running the same (``services/scheduling/run_processes.py``),
    watched every few seconds (one that ends unexpectedly is logged and started again)."""

    WATCH_S = 5.0

    def __init__(self, app):
        from tradetrail.services.notifications.sender import NotificationSender
        from tradetrail.services.scheduling.run_processes import RunProcesses

        self.scheduler = EmbeddedScheduler(app)
        self.notifier = NotificationSender(app) if app.settings.notify_enabled else None  # this process only
        self.helpers = RunProcesses(app.settings, app.settings.embedded_processes - 1)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="watch-run-processes", daemon=True)

    def start(self) -> None:
        self.helpers.start()
        self.scheduler.start()
        if self.notifier is not None:
            self.notifier.start()
        if self.helpers.count:
            self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.WATCH_S):
            try:
                self.helpers.check()
            except Exception:  # noqa: BLE001 - the watcher must outlive one failed restart
                log.exception("watching the run processes failed")

    def stop(self) -> None:
        self._stop.set()
        stopping = threading.Thread(target=self.helpers.stop, name="stop-run-processes")
        stopping.start()  # they finish their runs while this process finishes its own
        self.scheduler.stop()
        if self.notifier is not None:
            self.notifier.stop()
        stopping.join()

    def status(self) -> dict:
        """``ok`` unless this dispatcher stopped or a helper is down (one still starting is not down);
        ``last_pass_age_s``: seconds since this dispatcher last completed a pass (``/health`` judges it)."""
        alive = self.scheduler.running
        last = self.scheduler.last_pass
        ready, starting = self.helpers.ready(), self.helpers.starting()
        return {"ok": alive and ready + starting == self.helpers.count, "running": alive,
                "processes": 1 + ready, "starting": starting, "processes_configured": 1 + self.helpers.count,
                "helper_pids": self.helpers.pids(), "helper_restarts": self.helpers.restarts,
                "pending_here": self.scheduler.pending,
                "last_pass_age_s": None if last is None else round(time.time() - last, 3)}
