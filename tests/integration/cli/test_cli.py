"""The real ``tradetrail`` command, run as a subprocess against the test database."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.cli import BIN, tt  # noqa: F401
from tradetrail.db.migrate import head_revision
from tradetrail.db.models import Execution


def test_init_then_run_demo_json_then_lineage(cli_env):
    assert "strategy demo" in tt(cli_env, "init").stdout
    data = json.loads(tt(cli_env, "run", "demo", "--json").stdout)
    assert data["status"] == "succeeded"
    steps = data["steps"]
    assert [s["name"] for s in steps][:2] == ["load_strategy", "check_broker"] and steps[-1]["name"] == "complete"
    for step in steps:
        assert {"name", "status", "duration_ms", "input", "output"} <= set(step)
    charts = next(s for s in steps if s["name"] == "render_charts")["artifacts"]
    assert set(charts) == {"chart_daily", "chart_weekly"} and all(len(h) == 64 for h in charts.values())
    again = json.loads(tt(cli_env, "lineage", data["id"], "--json").stdout)
    assert again["id"] == data["id"] and again["steps"] == steps
    table = tt(cli_env, "lineage", data["id"]).stdout
    assert "fetch_market_data" in table and "succeeded" in table


def test_repeated_cli_runs_advance_the_replay_market(cli_env):
    tt(cli_env, "init")
    tt(cli_env, "init")  # idempotent: the second init keeps the replay clock and adds no version
    as_ofs = [json.loads(tt(cli_env, "run", "demo", "--json").stdout)["as_of"] for _ in range(3)]
    assert as_ofs == ["2005-01-03T21:00:00+00:00", "2005-01-04T21:00:00+00:00", "2005-01-05T21:00:00+00:00"]


def test_unknown_strategy_and_execution_are_clear_errors(cli_env):
    tt(cli_env, "init")
    proc = tt(cli_env, "run", "nope", check=False)
    assert proc.returncode == 2 and "no strategy named 'nope'" in proc.stderr
    proc = tt(cli_env, "lineage", "0000", check=False)
    assert proc.returncode == 2 and "no execution" in proc.stderr


def test_bad_setting_is_reported_by_name(cli_env):
    proc = tt({**cli_env, "TRADETRAIL_LLM_BASE_URL": "localhost:1234"}, "init", check=False)
    assert proc.returncode == 2 and "TRADETRAIL_LLM_BASE_URL" in proc.stderr and "http" in proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_answers_health(cli_env):
    port = _free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    body = json.loads(resp.read())
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    output = proc.stdout.read() if proc.poll() is not None else ''
                    raise AssertionError(f"server did not answer: {output}") from None
                time.sleep(0.2)
        assert body["status"] == "ok" and body["checks"]["database"]["revision"] == head_revision()
        assert body["checks"]["broker"]["healthy"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _database_path(cli_env) -> Path:
    return Path(cli_env["TRADETRAIL_DATABASE_URL"].split("///", 1)[1])


@pytest.mark.skipif(not os.environ.get("TRADETRAIL_TEST_DB", "sqlite").startswith("sqlite"),
                    reason="SQLite's file lock")
def test_a_locked_database_ends_run_with_one_line_saying_where_and_exit_1(app, cli_env):
    tt(cli_env, "init")
    path = _database_path(cli_env)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process is writing and does not let go
    try:
        t0 = time.monotonic()
        proc = tt(cli_env, "run", "demo", check=False)
        elapsed = time.monotonic() - t0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [f"error: database is locked: sqlite:///{path}"], proc.stderr[-2000:]
    assert elapsed < 60  # SQLite's busy timeout (10 s), not forever
    with app.Session() as s:  # the lock stopped it before an execution was created: nothing is left "running"
        assert s.scalar(select(func.count(Execution.id))) == 0


def test_an_artifact_path_that_is_not_a_folder_is_one_line_naming_it(app, cli_env):
    tt(cli_env, "init")
    folder = Path(cli_env["TRADETRAIL_HOME"]) / "artifacts"
    shutil.rmtree(folder)
    folder.write_text("a file where the artifact folder should be")
    for args in (("run", "demo"), ("init",)):
        proc = tt(cli_env, *args, check=False)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.splitlines() == [f"error: artifact folder {folder.resolve()} is not a folder "
                                            "(TRADETRAIL_ARTIFACTS_DIR, default TRADETRAIL_HOME/artifacts)"], \
            proc.stderr[-2000:]
    with app.Session() as s:
        assert s.scalar(select(func.count(Execution.id))) == 0  # it stopped before creating an execution


def test_worker_queues_are_checked_by_name(cli_env):
    proc = tt({**cli_env, "TRADETRAIL_EXECUTOR": "celery"}, "worker", "--queues", "runs,bogus", check=False)
    assert proc.returncode == 2 and "--queues must name runs, control or both" in proc.stderr
