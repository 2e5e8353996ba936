"""Locks that span threads and processes and die with their holder.

PostgreSQL: session advisory locks (any number of hosts). SQLite (one box): an exclusive ``flock`` on a
file beside the database file. Either way a crashed holder releases its lock, so a lock never goes stale.
- :func:`submission_lock` (blocking): one order submission at a time per account.
- :func:`strategy_lock` (non-blocking): one execution at a time per strategy.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import text

_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"tradetrail:{name}".encode()).digest()[:8], "big", signed=True)


@lru_cache(maxsize=64)
def _lock_dir(database: str | None, home: str) -> Path:
    folder = Path(database).resolve().parent / "locks" if database and database != ":memory:" else Path(home) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _lock_file(app, name: str) -> Path:
    folder = _lock_dir(app.engine.url.database, str(app.settings.home))
    return folder / f"{hashlib.sha256(name.encode()).hexdigest()[:24]}.lock"


@contextmanager
def process_lock(app, name: str, *, blocking: bool) -> Iterator[bool]:
    """Hold the lock ``name`` for the block; yields False (without holding it) if non-blocking and taken."""
    with _guard:
        local = _thread_locks.setdefault(name, threading.Lock())
    if not local.acquire(blocking=blocking):
        yield False
        return
    try:
        if app.engine.dialect.name == "postgresql":
            with app.engine.connect() as conn:
                fn = "pg_advisory_lock" if blocking else "pg_try_advisory_lock"
                got = conn.execute(text(f"SELECT {fn}(:k)"), {"k": _key(name)}).scalar()
                if got is False:
                    yield False
                    return
                try:
                    yield True
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                    conn.commit()
            return
        with open(_lock_file(app, name), "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        local.release()


@contextmanager
def submission_lock(app, account: str) -> Iterator[None]:
    with process_lock(app, f"submit:{account}", blocking=True):
        yield


def strategy_lock(app, strategy_id: int):
    """``with strategy_lock(app, id) as held:`` — held is False when another execution of it is running."""
    return process_lock(app, f"strategy:{strategy_id}", blocking=False)
