"""Locks that span threads and processes and die with their holder.

PostgreSQL: session advisory locks (any number of hosts). SQLite (one box): on Linux one byte of one lock
file beside the database file per name (an open-file-description lock at the name's 62-bit hash), elsewhere
an exclusive ``flock`` on a file per name. Either way a crashed holder releases its lock, so a lock never goes
stale. One file for every name: creating a file per name cost about a millisecond of CPU on first use (four
per new strategy on the replay clock) and left a file per strategy and account behind for ever.
- :func:`submission_lock` (blocking): one order submission at a time per account.
- :func:`strategy_lock` (non-blocking): one execution at a time per strategy.

On PostgreSQL a non-blocking lock is held by one connection per process that holds them all (advisory
locks are per session; the thread lock below keeps one holder per name in the process). Holding one
pooled connection per running execution instead exhausted the pool (and the server's 100 connections)
as soon as the embedded pool ran more than a dozen executions at once.

A forked child holds none of its parent's locks and never uses its parent's lock session: two processes
in one session would both "hold" a lock (advisory locks are re-entrant within a session).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ResourceClosedError

log = logging.getLogger(__name__)

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
    return _lock_path(app.engine.url.database, str(app.settings.home), name)


@lru_cache(maxsize=4096)
def _lock_path(database: str | None, home: str, name: str) -> Path:
    return _lock_dir(database, home) / f"{hashlib.sha256(name.encode()).hexdigest()[:24]}.lock"


# --- Linux: one byte of one file per name ------------------------------------------------------------------
# Open-file-description locks (F_OFD_SETLK*): owned by the file's open description, not by the process, so the
# kernel runs no deadlock detection across a process's threads (a POSIX record lock reports a false EDEADLK
# when two processes' threads wait on each other's unrelated names), and closing another descriptor of the
# file releases nothing. This process's threads share one description; the thread lock per name above keeps
# one holder per name in the process.
_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_SETLKW = getattr(fcntl, "F_OFD_SETLKW", None)
_FLOCK = struct.Struct("@hhqqixxxx")  # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
_range_fds: dict[Path, int] = {}  # lock file -> this process's descriptor of it (never closed while it lives)


def _offset(name: str) -> int:
    return _key(name) & (2**62 - 1)


def _range_file(app) -> int:
    path = _lock_dir(app.engine.url.database, str(app.settings.home)) / "names.lock"
    with _guard:
        fd = _range_fds.get(path)
        if fd is None:
            fd = _range_fds[path] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return fd


def _range_lock(fd: int, offset: int, blocking: bool) -> bool:
    request = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, _OFD_SETLKW if blocking else _OFD_SETLK, request)
    except OSError as exc:
        if not blocking and exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _range_unlock(fd: int, offset: int) -> None:
    fcntl.fcntl(fd, _OFD_SETLK, _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, offset, 1, 0))


@contextmanager
def process_lock(app, name: str, *, blocking: bool) -> Iterator[bool]:
    """Hold the lock ``name`` for the block; yields False (without holding it) if non-blocking and taken."""
    with _guard:
        local = _thread_locks.setdefault(name, threading.Lock())
    if not local.acquire(blocking=blocking):
        yield False
        return
    try:
        if app.engine.dialect.name == "postgresql" and not blocking:
            holder = _pg_holder(app.engine)
            if not holder.try_lock(_key(name)):
                yield False
                return
            try:
                yield True
            finally:
                holder.unlock(_key(name))
            return
        if app.engine.dialect.name == "postgresql":  # blocking: short critical sections, own connection
            with app.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _key(name)})
                try:
                    yield True
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                    conn.commit()
            return
        if _OFD_SETLKW is not None:
            fd = _range_file(app)
            if not _range_lock(fd, _offset(name), blocking):
                yield False
                return
            try:
                yield True
            finally:
                _range_unlock(fd, _offset(name))
            return
        # Opened without truncating: the file only names the lock (truncating it was a metadata write per lock).
        fd = os.open(_lock_file(app, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        local.release()


class _PgLockHolder:
    """This process's connection for non-blocking advisory locks (autocommit: it never idles in a
    transaction). Calls on it are serialized; each is one short query."""

    def __init__(self, engine):
        self.engine, self.pid = engine, os.getpid()
        self._conn = None
        self._mutex = threading.Lock()

    def _run(self, sql: str, key: int):
        with self._mutex:
            if self._conn is None:
                self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                return self._conn.execute(text(sql), {"k": key}).scalar()
            except DBAPIError:  # the session is gone, and every lock it held with it: start a new one
                conn, self._conn = self._conn, None
                with suppress(DBAPIError, ResourceClosedError):
                    conn.invalidate()
                raise

    def try_lock(self, key: int) -> bool:
        try:
            return bool(self._run("SELECT pg_try_advisory_lock(:k)", key))
        except DBAPIError:
            return bool(self._run("SELECT pg_try_advisory_lock(:k)", key))  # once more, on a new session

    def unlock(self, key: int) -> None:
        try:
            self._run("SELECT pg_advisory_unlock(:k)", key)
        except DBAPIError:
            log.warning("the lock session ended before unlock: its locks were already released")


_holders: dict[int, _PgLockHolder] = {}
_inherited: list[_PgLockHolder] = []  # a forked child keeps its parent's holders, unused, and never frees them


def _forget_after_fork() -> None:
    """In a forked child: no lock of the parent is ours. The parent's lock session must not be used, closed or
    even collected here (collecting its connection rolls back over the parent's socket), and a thread lock
    held by one of the parent's threads at the fork would stay taken forever in the child."""
    global _guard
    for fd in _range_fds.values():  # the parent's description: holding it open would keep the parent's locks
        with suppress(OSError):
            os.close(fd)
    _range_fds.clear()
    _inherited.extend(_holders.values())
    _holders.clear()
    _thread_locks.clear()
    _guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _pg_holder(engine) -> _PgLockHolder:
    """One holder per engine and process (a forked worker must not share its parent's connection)."""
    with _guard:
        holder = _holders.get(id(engine))
        if holder is None or holder.pid != os.getpid() or holder.engine is not engine:
            holder = _holders[id(engine)] = _PgLockHolder(engine)
        return holder


@contextmanager
def submission_lock(app, account: str) -> Iterator[None]:
    with process_lock(app, f"submit:{account}", blocking=True):
        yield


def strategy_lock(app, strategy_id: int):
    """``with strategy_lock(app, id) as held:`` — held is False when another execution of it is running."""
    return process_lock(app, f"strategy:{strategy_id}", blocking=False)
