"""Real worker, beat and serve processes for tests, and what they hold.

Every process is started in a session of its own and ended with its whole process group at teardown, so a
worker's pool and control processes go with it. A test's Redis database is one no other client is using:
a worker left over from an interrupted run would otherwise consume this test's tasks.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import redis

BIN = Path(sys.executable).with_name("tradetrail")
REDIS = os.environ.get("TRADETRAIL_TEST_REDIS", "redis://127.0.0.1:6379")


def _clients_by_db(client: redis.Redis) -> dict[int, list[dict]]:
    me = client.client_id()
    out: dict[int, list[dict]] = defaultdict(list)
    for c in client.client_list():
        if int(c["id"]) != me:
            out[int(c["db"])].append(c)
    return out


def free_redis_url() -> str:
    """A Redis database (1-15) no other client is connected to, emptied; fail if every one is in use."""
    admin = redis.Redis.from_url(f"{REDIS}/0")
    try:
        busy = _clients_by_db(admin)
        for db in random.sample(range(1, 16), 15):
            if not busy.get(db):
                redis.Redis.from_url(f"{REDIS}/{db}").flushdb()
                return f"{REDIS}/{db}"
    finally:
        admin.close()
    pytest.fail("every Redis database 1-15 has a client: workers left over from an interrupted run? "
                f"{ {db: [c['addr'] for c in cs] for db, cs in busy.items()} }")


def release_redis_db(url: str) -> None:
    """Empty a test's database and close every connection still on it: the test's processes are gone by then,
    and what remains is this process's own clients nothing closed (a Celery producer's pool, an IBKR budget, a
    heartbeat reader). Left open, they kept the database taken, and after fifteen tests none was free."""
    db = int(url.rsplit("/", 1)[1])
    own = redis.Redis.from_url(url)
    own.flushdb()
    own.close()
    admin = redis.Redis.from_url(f"{REDIS}/0")
    try:
        for c in admin.client_list():
            if int(c["db"]) == db:
                admin.client_kill_filter(_id=c["id"])
    finally:
        admin.close()


def consumers(url: str) -> list[str]:
    """Addresses of clients on ``url``'s database that wait for tasks (BRPOP) or broadcasts (SUBSCRIBE)."""
    db = int(url.rsplit("/", 1)[1])
    admin = redis.Redis.from_url(f"{REDIS}/0")
    try:
        return [c["addr"] for c in _clients_by_db(admin).get(db, [])
                if c.get("cmd", "") in ("brpop", "blpop", "subscribe", "psubscribe", "unsubscribe")]
    finally:
        admin.close()


class Procs:
    """Starts ``tradetrail`` commands; :meth:`stop_all` ends each one's process group."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.started: list[subprocess.Popen] = []

    def start(self, env: dict, *args: str, log: str | None = None) -> subprocess.Popen:
        url = env.get("TRADETRAIL_REDIS_URL")
        if args and args[0] == "worker" and url and not self.started and (others := consumers(url)):
            pytest.fail(f"another consumer is already on {url}: {others}; refusing to start a worker beside it")
        out = open(self.logs / (log or f"{args[0]}-{len(self.started)}.log"), "ab")  # noqa: SIM115
        proc = subprocess.Popen([str(BIN), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        out.close()
        self.started.append(proc)
        return proc

    def start_celery(self, env: dict, app_module: str, *args: str, log: str) -> subprocess.Popen:
        """A Celery worker of a test's own Celery app (``celery -A app_module worker ...``), run from the
        repository root so ``tests.*`` modules import, in a process group of its own like :meth:`start`."""
        root = Path(__file__).resolve().parents[2]
        out = open(self.logs / log, "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", app_module, *args], env=env, cwd=root,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.started.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.logs / name
        return path.read_text(errors="replace") if path.exists() else ""

    @staticmethod
    def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait_s: float = 30) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                return
        try:  # whatever is left of its group (pool or control processes), and the leader if still there
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


def wait_for_log(procs: Procs, name: str, text: str, timeout: float, count: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while procs.log(name).count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in {name} after {timeout} s:\n{procs.log(name)[-3000:]}")
        time.sleep(0.2)


def group_pids(pgid: int) -> list[int]:
    """Processes in process group ``pgid`` (a started command and everything it started)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(") ", 1)[1].split()[1])


def sockets_to(port: int, pids: list[int]) -> dict[int, set[int]]:
    """{socket inode: pids holding it} for the TCP connections to ``port`` that ``pids`` hold (what
    ``ss -tnp`` shows): an inode held by two pids is one connection shared by two processes."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                parts = line.split()
                if int(parts[2].rsplit(":", 1)[1], 16) == port and parts[3] == "01":  # ESTABLISHED
                    inodes.add(int(parts[9]))
    owners: dict[int, set[int]] = defaultdict(set)
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except (FileNotFoundError, PermissionError):
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                owners[int(link[8:-1])].add(pid)
    return dict(owners)
