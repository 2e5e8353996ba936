"""Metrics from several processes: a spawned process (as the embedded helpers are) and a forked one (as a
Celery pool's are) record into the folder the serving process prepared; /metrics's exposition adds them up.
Run in a fresh interpreter, since switching to files is for the life of a process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import json, multiprocessing, os, sys
    from pathlib import Path
    from tradetrail.observability import multiprocess, metrics
    from tradetrail.observability.collectors import Exposition
    from tradetrail.runtime.build import build_app
    from tradetrail.settings import Settings

    def record(step):
        from tradetrail.observability import metrics
        metrics.observe_step(step, 0.02)
        metrics.execution_finished("succeeded", 0.5)
        metrics.notification_delivered("json")
        multiprocess.mark_dead()

    if __name__ == "__main__":
        home = Path(sys.argv[1])
        stale = home / "metrics" / "counter_999999.db"  # left by a process of an earlier start
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_bytes(b"")
        settings = Settings(home=home, database_url=sys.argv[2], embedded_processes=2)
        folder = multiprocess.prepare(settings, clean=True)
        assert not stale.exists()
        metrics.observe_step("analyze", 1.0)  # this process, after prepare
        for method in ("spawn", "fork"):
            p = multiprocessing.get_context(method).Process(target=record, args=(method,))
            p.start(); p.join(30)
            assert p.exitcode == 0, p.exitcode
        text = Exposition(build_app(settings, migrate=False)).render().decode()
        print(json.dumps({"folder": str(folder), "active": multiprocess.active(), "text": text}))
''')


def _sample(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_spawned_and_forked_processes_add_up_in_one_exposition(settings, tmp_path):
    script = tmp_path / "record.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(settings.home), settings.database_url],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["active"] is True and out["folder"] == str((settings.home / "metrics").resolve())
    text = out["text"]
    assert _sample(text, 'tradetrail_step_duration_seconds_count{step="spawn"}') == 1
    assert _sample(text, 'tradetrail_step_duration_seconds_count{step="fork"}') == 1
    assert _sample(text, 'tradetrail_step_duration_seconds_count{step="analyze"}') == 1
    assert _sample(text, 'tradetrail_executions_finished_total{status="succeeded"}') == 2
    assert _sample(text, 'tradetrail_notifications_delivered_total{channel_scheme="json"}') == 2
    assert "tradetrail_database_up 1.0" in text
