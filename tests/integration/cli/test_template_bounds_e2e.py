"""The issue's five templates (issue #11 item 3), end to end.

Against a real ``tradetrail serve``: each is refused with 422 within 1 s, at save or at render (saved, then
rendered by name, and previewed as a body), while ``/health``, asked back to back from another thread, keeps
answering in < 100 ms and the server's peak memory grows by less than 200 MB; also while a template computes
until the render's deadline. Before the fix the first one made
the server build a 10 GB string until the kernel killed it, and ``/health`` took up to 18 s during the nested
loop. And in a run: the analyze step fails with the reason, and no order is placed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.helpers import demo
from tradetrail.db.models import Analysis, Signal
from tradetrail.db.trading_models import Order
from tradetrail.services.prompts.user_prompts import save_user_prompt
from tradetrail.services.runs.executions import get_execution, run_strategy

BIN = Path(sys.executable).with_name("tradetrail")

# (template, what the refusal names)
ISSUE_TEMPLATES = [
    ("{{ 'a' * 10000000000 }}", "'*' would make a value longer than 100,000 characters"),
    ("{{ '%01000000000d'|format(1) }}", "a %-format would make a text longer than 100,000 characters"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "range() of more than 10,000 numbers"),
    ("{{ (bars.daily|string) * 100000000 }}", "'*' would make a value longer than 100,000 characters"),
    ("{% macro r(n) %}{{ r(n+1) }}{% endmacro %}{{ r(0) }}", "calls nest deeper than 20"),
]
# and one that computes until the render's deadline: the worst a template can do to the server's other requests
TO_THE_DEADLINE = ("{% set s = 'ab' * 50000 %}{% for i in range(10000) %}{% if s.islower() %}{% endif %}{% endfor %}",
                   "longer than 0.5 s")
HEALTH_LIMIT_S = 0.1
ANSWER_LIMIT_S = 1.0
RSS_GROWTH_LIMIT_KB = 200 * 1024


# ------------------------------------------------------------------------------------------------------- in a run


@pytest.mark.parametrize(("body", "reason"), ISSUE_TEMPLATES)
def test_in_a_run_the_analyze_step_fails_with_the_reason_and_no_order_is_placed(app, body: str, reason: str):
    user_id, _ = demo(app)
    save_user_prompt(app, user_id, "daily", body)  # the user's own "daily" prompt replaces the built-in one
    data = get_execution(app, run_strategy(app, user_id, "demo").execution_id)
    assert (data["status"], data["failed_step"]) == ("failed", "analyze")
    analyze = data["steps"][-1]
    assert analyze["name"] == "analyze" and analyze["status"] == "failed"
    assert analyze["error"].startswith("prompt: cannot render template: ") and reason in analyze["error"]
    assert analyze["duration_ms"] < ANSWER_LIMIT_S * 1000
    with app.Session() as s:
        for table in (Order, Signal, Analysis):
            assert s.scalar(select(func.count()).select_from(table)
                            .where(table.execution_id == data["id"])) == 0, table.__name__


# ------------------------------------------------------------------------------------------------- a real server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class HealthProbe(threading.Thread):
    """Asks ``/health`` back to back, recording when each answer was asked for and received."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.samples, self.stopping = base, [], threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=30) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            self.samples.append((started, time.monotonic(), status))


@pytest.fixture
def server(cli_env):
    env = {**cli_env, "TRADETRAIL_SCHEDULER_ENABLED": "false"}
    tt = lambda *a: subprocess.run([str(BIN), *a], env=env, capture_output=True, text=True, timeout=180)  # noqa: E731
    assert tt("init").returncode == 0
    token = tt("tokens", "create", "demo").stdout.strip()
    port = _free_port()
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
                time.sleep(0.2)
        yield base, token, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _post(base: str, token: str, path: str, body: dict) -> tuple[int, dict, float, float]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            status, answer = resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, json.loads(exc.read())
    return status, answer, started, time.monotonic()


def _measured(base: str, token: str, path: str, body: dict, probe: HealthProbe) -> tuple[int, dict]:
    """POST ``body`` while ``probe`` asks /health. The answer must come within 1 s and every /health asked
    meanwhile within 100 ms. A loaded test machine (2 cores, other suites running) now and then stalls a whole
    process for longer than that, so an attempt spoiled by timing is made again, up to three times; a template
    that holds the server up does so at every attempt. The answer itself is checked by the caller."""
    attempts = []
    for _ in range(3):
        status, answer, started, finished = _post(base, token, path, body)
        deadline = time.monotonic() + 30
        while not any(begin > finished for begin, _, _ in probe.samples):  # the overlapping ones have ended
            assert time.monotonic() < deadline and probe.is_alive(), "the /health probe stopped"
            time.sleep(0.005)
        during = [(end - begin, code) for begin, end, code in probe.samples if begin < finished and end > started]
        assert during, f"no /health was asked while {path} {body} was handled"
        assert all(code == 200 for _, code in during), during
        took, slowest = finished - started, max(t for t, _ in during)
        attempts.append(f"answer {took * 1000:.0f} ms, /health up to {slowest * 1000:.0f} ms")
        if took < ANSWER_LIMIT_S and slowest < HEALTH_LIMIT_S:
            return status, answer
    raise AssertionError(f"{path} {str(body)[:80]}: {'; '.join(attempts)}")


@pytest.mark.once  # the render limits are the same on either backend
def test_the_issue_templates_are_refused_quickly_while_health_answers_and_memory_stays(server):
    base, token, process = server
    status, answer, *_ = _post(base, token, "/api/prompts/render", {"name": "daily"})  # warm: imports, caches
    assert status == 200, answer
    rss_before = _status_kb(process.pid, "VmRSS")
    try:  # start the peak (VmHWM) afresh, so it measures these requests only
        Path(f"/proc/{process.pid}/clear_refs").write_text("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    probe = HealthProbe(base)
    probe.start()
    try:
        for number, (body, reason) in enumerate(ISSUE_TEMPLATES):
            name = f"issue-{number}"
            status, answer = _measured(base, token, "/api/prompts", {"name": name, "body": body}, probe)
            assert status in (201, 422), answer
            if status == 422:
                assert reason in answer["error"]["message"]
            for request in [{"body": body}] + ([{"name": name}] if status == 201 else []):
                status, answer = _measured(base, token, "/api/prompts/render", request, probe)
                assert status == 422 and answer["error"]["code"] == "invalid_template", answer
                assert reason in answer["error"]["message"], answer
        body, reason = TO_THE_DEADLINE
        status, answer = _measured(base, token, "/api/prompts/render", {"body": body}, probe)
        assert status == 422 and reason in answer["error"]["message"], answer
    finally:
        probe.stopping.set()
        probe.join(timeout=60)
    assert process.poll() is None, "the server died"
    peak = _status_kb(process.pid, "VmHWM" if hwm_reset else "VmRSS")
    assert peak - rss_before < RSS_GROWTH_LIMIT_KB, f"the server grew from {rss_before} kB to {peak} kB"
