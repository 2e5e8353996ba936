"""The SQLite-mode locks between processes (``trading/locks.py``): one byte of one lock file per name, held
by real processes. A lock excludes another process and only for its own name; a blocking taker waits for the
holder; a SIGKILLed holder frees it; a forked child holds none of its parent's locks and, ending, frees none of
them; any number of names leaves one file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine

from tradetrail.trading import locks

pytestmark = pytest.mark.skipif(locks._OFD_SETLKW is None, reason="open-file-description locks are Linux's")

HOLDER = textwrap.dedent("""
    import sys, time
    from types import SimpleNamespace
    from sqlalchemy import create_engine
    from tradetrail.trading.locks import process_lock
    db, home, name, blocking = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    app = SimpleNamespace(engine=create_engine("sqlite:///" + db), settings=SimpleNamespace(home=home))
    with process_lock(app, name, blocking=blocking) as held:
        print("held" if held else "taken", flush=True)
        if held:
            sys.stdin.readline()  # hold until told
""")


@pytest.fixture
def app(tmp_path):
    return SimpleNamespace(engine=create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"),
                           settings=SimpleNamespace(home=str(tmp_path)))


def _holder(app, name: str, blocking: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, app.engine.url.database, app.settings.home, name,
                             "1" if blocking else "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})


def _first_line(proc: subprocess.Popen) -> str:
    return proc.stdout.readline().strip()


def _try(app, name: str) -> bool:
    with locks.process_lock(app, name, blocking=False) as held:
        return held


def test_a_held_name_is_taken_for_another_process_and_only_that_name(app):
    holder = _holder(app, "strategy:1")
    try:
        assert _first_line(holder) == "held"
        assert _try(app, "strategy:1") is False
        assert _try(app, "strategy:2") is True and _try(app, "submit:acct") is True
    finally:
        holder.communicate("\n", timeout=30)
    assert _try(app, "strategy:1") is True


def test_a_blocking_taker_waits_for_the_holder(app):
    with locks.process_lock(app, "submit:acct", blocking=True):
        waiter = _holder(app, "submit:acct", blocking=True)
        time.sleep(0.5)
        assert waiter.poll() is None  # still waiting: no "held" line yet
    try:
        assert _first_line(waiter) == "held"  # given the lock once it was released
    finally:
        waiter.communicate("\n", timeout=30)


def test_a_killed_holder_frees_its_lock(app):
    holder = _holder(app, "sim:acct")
    assert _first_line(holder) == "held"
    assert _try(app, "sim:acct") is False
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert _try(app, "sim:acct") is True


def test_a_forked_child_holds_none_of_its_parents_locks_and_frees_none(app):
    with locks.process_lock(app, "strategy:7", blocking=False) as held:
        assert held
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: the parent's lock is taken for it too, another name is free
            ok = _try(app, "strategy:7") is False and _try(app, "strategy:8") is True
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.close(write)
        answer = os.read(read, 1)
        os.waitpid(pid, 0)
        os.close(read)
        assert answer == b"1"
        other = _holder(app, "strategy:7")  # the child has ended: the parent still holds it
        try:
            assert _first_line(other) == "taken"
        finally:
            other.communicate("", timeout=30)


def test_any_number_of_names_leaves_one_lock_file(app):
    for i in range(200):
        assert _try(app, f"strategy:{i}") is True
    folder = Path(app.engine.url.database).parent / "locks"
    assert [p.name for p in folder.iterdir()] == ["names.lock"]
