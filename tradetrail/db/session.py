"""Engines and sessions. SQLite gets WAL and ``synchronous=NORMAL``: commits survive a process crash and
stay cheap enough that recording lineage never becomes the bottleneck.

A process that forks must not hand its open connections to the child: two processes writing to one socket
corrupt each other's session (PostgreSQL then sees "a transaction already in progress", a prepared statement
defined twice, advisory locks of two processes in one session). So a forked child forgets every inherited
connection without touching it (``os.register_at_fork``), and a parent about to fork a pool disposes of its
own first (:func:`dispose_all`); each process then opens its own connections on first use.
"""

from __future__ import annotations

import os
import weakref
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder if needed."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _engines.add(engine)
    return engine


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process."""
    return make_engine(url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def dispose_all(*, close: bool = True) -> None:
    """Drop the pooled connections of every engine of this process; the next use opens new ones.

    ``close=True`` (a parent before it forks): close them, so the children inherit none. ``close=False`` (a
    forked child): forget them without closing or rolling back, since the sockets still belong to the parent."""
    for engine in list(_engines):
        engine.dispose(close=close)


os.register_at_fork(after_in_child=lambda: dispose_all(close=False))
