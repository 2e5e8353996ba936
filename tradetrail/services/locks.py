"""One order submission at a time per account, across threads and processes.

PostgreSQL: a session advisory lock keyed by the account. SQLite (one box): an exclusive ``flock`` on a
file under ``TRADETRAIL_HOME/locks``. Both are released if the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def _key(account: str) -> int:
    return int.from_bytes(hashlib.sha256(f"tradetrail-submit:{account}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def submission_lock(app, account: str) -> Iterator[None]:
    with _guard:
        local = _thread_locks.setdefault(account, threading.Lock())
    with local:
        if app.engine.dialect.name == "postgresql":
            with app.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _key(account)})
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(account)})
                    conn.commit()
            return
        folder = app.settings.home / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"submit-{hashlib.sha256(account.encode()).hexdigest()[:16]}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
