"""Embedded mode (the default): the dispatcher runs every few seconds inside ``tradetrail serve`` and the
executions run in a bounded pool of threads. On shutdown no new slot is claimed and running executions
finish; one killed mid-run is marked interrupted by the next run of its strategy."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from tradetrail.db.types import utcnow
from tradetrail.services.scheduler import dispatch, run_slot

log = logging.getLogger(__name__)


class EmbeddedScheduler:
    def __init__(self, app):
        self.app = app
        self.interval = app.settings.scheduler_interval_s
        self.pool = ThreadPoolExecutor(max_workers=app.settings.embedded_workers, thread_name_prefix="run")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def tick(self) -> dict:
        return dispatch(self.app, utcnow(), lambda strategy, slot_id: self.pool.submit(
            run_slot, self.app, strategy, slot_id))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.tick()
                if report["claimed"] or report["skipped"] or report["errors"]:
                    log.info("dispatcher: %s", report)
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("dispatcher pass failed")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.pool.shutdown(wait=True)  # running executions finish
