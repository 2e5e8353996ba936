"""Shared set-up for benchmarks: a throw-away app on SQLite or a fresh PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

from tradetrail.app_context import App
from tradetrail.runtime.build import build_app
from tradetrail.settings import Settings

PG_ADMIN_URL = os.environ.get("TRADETRAIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _default_settings(home: Path, database_url: str | None) -> Settings:
    return Settings(home=home, database_url=database_url)


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark, dropped afterwards; yields its URL."""
    name = f"tradetrail_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def bench_app(backend: str, settings: Callable[[Path, str | None], Settings] = _default_settings
              ) -> Iterator[App]:
    """A migrated app in a temporary home; ``settings(home, database_url)`` may add to the defaults."""
    with tempfile.TemporaryDirectory(prefix="tradetrail-bench-") as home:
        if backend == "sqlite":
            yield build_app(settings(Path(home), None))
            return
        with pg_database() as url:
            app = build_app(settings(Path(home), url))
            try:
                yield app
            finally:
                app.engine.dispose()


def postgres_available() -> bool:
    try:
        with create_engine(PG_ADMIN_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - benchmark just skips the backend
        return False


def median(values: list[float]) -> float:
    return statistics.median(values)


def reference_loop_ms(repeats: int = 5) -> float:
    """The machine's speed right now: median milliseconds of a fixed pure-Python loop (one core). Shared
    virtual machines run the same work at different speeds from day to day and even minute to minute; a
    figure taken beside this one can be compared with another taken on a different day."""
    import time

    def work() -> int:
        total = 0
        for i in range(300_000):
            total += i * i % 7
        return total

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def stolen_s() -> float | None:
    """CPU seconds the hypervisor gave to other guests so far, all vCPUs (Linux ``/proc/stat`` steal); on a
    shared virtual machine this is time our processes were ready to run and could not. None elsewhere."""
    import os

    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
