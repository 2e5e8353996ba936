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

from tradetrail.services.app import App, build_app
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
