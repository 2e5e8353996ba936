""""Run now" for the API: start an execution in the background and hand back its id as soon as it exists.

The execution runs in this process (a small bounded pool of ``TRADETRAIL_RUN_NOW_WORKERS`` threads), under
the same per-strategy lock as scheduled runs, so a manual run never overlaps a scheduled one. When every
thread is busy the request is refused at once (503) rather than queued: a run the caller was told had not
started must not start minutes later.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from tradetrail.services.errors import Busy
from tradetrail.services.runs.executions import AlreadyRunning, run_strategy_row
from tradetrail.services.strategies.configs import get_strategy

log = logging.getLogger(__name__)

_pool_lock = threading.Lock()


def _executor(app) -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
    """The app's run-now pool and its free-thread count (one per App, made on first use)."""
    with _pool_lock:
        if "run_now" not in app._shared:
            size = app.settings.run_now_workers
            app._shared["run_now"] = (ThreadPoolExecutor(max_workers=size, thread_name_prefix="run-now"),
                                      threading.BoundedSemaphore(size))
        return app._shared["run_now"]


def start_run(app, user_id: int, name: str, *, wait_s: float = 30.0) -> str:
    """The id of the execution just started; ``AlreadyRunning`` if the strategy is running now."""
    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
    started = threading.Event()
    box: dict = {}

    def on_start(execution_id: str) -> None:
        box["id"] = execution_id
        started.set()

    def job() -> None:
        try:
            run_strategy_row(app, strategy, trigger="api", on_start=on_start)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller if it has not started yet
            box["error"] = exc
            started.set()
            if "id" in box:
                log.exception("run of %s failed after it started", name)
        finally:
            free.release()

    pool, free = _executor(app)
    if not free.acquire(blocking=False):
        raise Busy(f"{app.settings.run_now_workers} runs started from the API are still running; try again shortly")
    pool.submit(job)
    if not started.wait(wait_s):  # it holds a thread, so it is starting: say so rather than "not started"
        raise Busy(f"the run did not report its start within {wait_s:.0f} s; it may still start: see the "
                   "strategy's executions")
    if "id" in box:
        return box["id"]
    error = box["error"]
    if isinstance(error, AlreadyRunning):
        raise error
    raise RuntimeError(f"the run could not start: {type(error).__name__}: {error}") from error
