"""When the lineage itself cannot be written (#11 item 9): the run stops, and the execution is recorded failed
with the reason if the database still takes it; if not, the caller is told it is unrecorded."""

from __future__ import annotations

import os
import sqlite3

import pytest

from tests.support.helpers import demo
from tradetrail.db.models import Execution
from tradetrail.services.runs.executions import create_execution, mark_interrupted
from tradetrail.workflow.context import StepOutcome
from tradetrail.workflow.executor import ExecutionNotRecorded, execute
from tradetrail.workflow.recorder import SPILL_BYTES, LineageRecorder


def _execution(app, execution_id: str) -> Execution:
    with app.Session() as s:
        return s.get(Execution, execution_id)


def test_lineage_the_artifact_store_refuses_fails_the_execution_with_the_reason(app, settings):
    _, strategy = demo(app)
    root = settings.resolved_artifacts_dir
    for i in range(256):  # every shard of the store is a file where a folder should be
        (root / f"{i:02x}").write_text("not a folder")
    ran = []

    def small(ctx):
        ran.append("small")
        return StepOutcome(output={"ok": True})

    def large(ctx):  # its output is spilled to the artifact store by the recorder, outside the step
        ran.append("large")
        return StepOutcome(output={"text": "x" * (SPILL_BYTES + 1)})

    def after(ctx):
        ran.append("after")
        return StepOutcome()

    ctx = create_execution(app, strategy)
    summary = execute(ctx, [("small", small), ("large", large), ("after", after)],
                      LineageRecorder(app.engine, app.artifacts))
    assert ran == ["small", "large"]  # nothing runs unrecorded
    assert summary.status == "failed" and summary.failed_step == "large"
    assert summary.error.startswith("lineage of step 'large' could not be recorded: FileExistsError")
    row = _execution(app, ctx.execution_id)
    assert (row.status, row.failed_step, row.error) == ("failed", "large", summary.error)
    assert row.finished_at is not None


@pytest.mark.skipif(os.environ.get("TRADETRAIL_TEST_DB", "sqlite") != "sqlite", reason="SQLite's file lock")
def test_when_not_even_the_failure_can_be_written_the_caller_is_told(app, settings):
    _, strategy = demo(app)
    ctx = create_execution(app, strategy)
    holder = sqlite3.connect(app.engine.url.database, isolation_level=None)

    def lock_the_database(ctx):  # another process takes the write lock and keeps it
        holder.execute("BEGIN EXCLUSIVE")
        return StepOutcome()

    try:
        with pytest.raises(ExecutionNotRecorded) as caught:
            execute(ctx, [("lock", lock_the_database)], LineageRecorder(app.engine, app.artifacts))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.execution_id == ctx.execution_id
    assert "lineage of step 'lock' could not be recorded: OperationalError: database is locked" in str(caught.value)
    assert _execution(app, ctx.execution_id).status == "running"  # as the caller was told
    assert mark_interrupted(app, strategy.id) == 1  # what the next run of the strategy (or the sweep) does
