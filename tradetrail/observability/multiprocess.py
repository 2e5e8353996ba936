"""Metrics across processes: prometheus_client's multiprocess mode, set up by the processes themselves.

With more than one process recording (embedded helper processes, Celery's worker pools) each process writes
its values to files in one folder (``PROMETHEUS_MULTIPROC_DIR``) and the serving process adds them up when
``/metrics`` is read. :func:`prepare` chooses that folder and switches this process to it; it sets the
variable in ``os.environ``, so the processes this one starts afterwards (spawned helpers, Celery's forked
pool, the worker supervisor's children) write there from their first metric. Where the values live is
fixed per value when it is created; metrics here are all labelled, so their values are created on first
use, after :func:`prepare`.

Cleaning at start removes only the files of processes that are gone (the name holds the pid): a worker
already running beside a restarting ``serve`` keeps its counts. A process ending on purpose calls
:func:`mark_dead` so its live gauges stop counting.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from prometheus_client import values

log = logging.getLogger(__name__)
ENV = "PROMETHEUS_MULTIPROC_DIR"


def wanted(settings) -> bool:
    """Whether this deployment records from more than one process (or the operator chose a folder)."""
    if settings.metrics == "off":
        return False
    return bool(os.environ.get(ENV)) or settings.executor == "celery" or settings.embedded_processes > 1


def directory(settings) -> Path:
    return Path(os.environ.get(ENV) or settings.metrics_dir or settings.home / "metrics").resolve()


def active() -> bool:
    """Values of this process live in the shared folder."""
    return bool(os.environ.get(ENV)) and getattr(values.ValueClass, "_multiprocess", False)


def prepare(settings, *, clean: bool) -> Path | None:
    """Switch this process (and those it starts) to the shared folder when the deployment needs it; with
    ``clean``, first remove the files of processes that are gone. Returns the folder, or None (one process:
    the default registry in memory is all there is)."""
    if not wanted(settings):
        return None
    folder = directory(settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(folder)
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    if clean:
        removed = clean_dead(folder)
        if removed:
            log.info("metrics: removed %d file(s) of ended processes from %s", removed, folder)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_dead(folder: Path) -> int:
    removed = 0
    for path in folder.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def mark_dead(pid: int | None = None) -> None:
    """A process that ended (this one by default): its live gauges no longer count."""
    if not os.environ.get(ENV):
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid or os.getpid(), os.environ[ENV])
    except OSError:  # the folder is gone: nothing to mark
        pass
