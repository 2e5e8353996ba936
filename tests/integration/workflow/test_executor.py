"""The executor and lineage recorder, driven with plain step functions against the real database."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.support.helpers import demo
from tradetrail.db.models import Execution, LineageStep
from tradetrail.services.runs.executions import create_execution, get_execution
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.executor import execute
from tradetrail.workflow.recorder import SPILL_BYTES, LineageRecorder


def _run(app, steps):
    _, strategy = demo(app)
    ctx = create_execution(app, strategy)
    return ctx, execute(ctx, steps, LineageRecorder(app.engine, app.artifacts))


def _rows(app, execution_id):
    with app.Session() as s:
        return s.scalars(select(LineageStep).where(LineageStep.execution_id == execution_id)
                         .order_by(LineageStep.step_number)).all()


def test_every_step_recorded_in_order_with_input_output_and_timing(app):
    def first(ctx: RunContext) -> StepOutcome:
        ctx.step_input["x"] = 1
        ctx.step_meta["note"] = "m"
        return StepOutcome(output={"y": 2})

    def second(ctx: RunContext) -> StepOutcome:
        ctx.save_artifact("blob", b"hello", "text/plain")
        return StepOutcome(output={"z": 3.5})

    ctx, summary = _run(app, [("first", first), ("second", second)])
    assert summary.status == "succeeded" and summary.failed_step is None
    rows = _rows(app, ctx.execution_id)
    assert [(r.step_number, r.step_name, r.status) for r in rows] == [(1, "first", "succeeded"),
                                                                      (2, "second", "succeeded")]
    assert rows[0].input == {"x": 1} and rows[0].output == {"y": 2} and rows[0].meta == {"note": "m"}
    assert rows[1].output == {"z": 3.5} and rows[0].duration_ms >= 0
    digest = rows[1].artifacts["blob"]
    assert app.artifacts.load(digest) == (b"hello", "text/plain")
    with app.Session() as s:
        execution = s.get(Execution, ctx.execution_id)
        assert execution.status == "succeeded" and execution.finished_at is not None
        assert execution.duration_ms >= rows[0].duration_ms


def test_failing_step_ends_run_and_nothing_after_it_runs(app):
    ran = []

    def ok(ctx):
        ran.append("ok")
        return StepOutcome(output={})

    def broken(ctx):
        ctx.step_input["asked"] = "for bars"
        ran.append("broken")
        raise StepError("not enough daily bars: need at least 252, got 10", output={"count": 10})

    def never(ctx):
        ran.append("never")
        return StepOutcome()

    ctx, summary = _run(app, [("ok", ok), ("broken", broken), ("never", never)])
    assert ran == ["ok", "broken"]
    assert summary.status == "failed" and summary.failed_step == "broken"
    rows = _rows(app, ctx.execution_id)
    assert [r.step_name for r in rows] == ["ok", "broken"]
    assert rows[1].status == "failed" and "need at least 252" in rows[1].error
    assert rows[1].input == {"asked": "for bars"} and rows[1].output == {"count": 10}
    assert "StepError" in rows[1].traceback
    data = get_execution(app, ctx.execution_id)
    assert data["status"] == "failed" and data["failed_step"] == "broken" and data["has_errors"] is True


def test_unexpected_exception_is_recorded_with_type_and_traceback(app):
    def boom(ctx):
        return {}["missing"]

    ctx, summary = _run(app, [("boom", boom)])
    row = _rows(app, ctx.execution_id)[0]
    assert summary.status == "failed" and row.status == "failed"
    assert row.error.startswith("KeyError") and "boom" in row.traceback


def test_skipped_with_halt_ends_run_as_skipped_and_without_halt_continues(app):
    def skip(ctx):
        return StepOutcome(output={"reason": "charts off"}, status="skipped")

    def halt(ctx):
        return StepOutcome(output={"reason": "disabled"}, status="skipped", halt=True)

    def after(ctx):
        raise AssertionError("must not run")

    ctx, summary = _run(app, [("skip", skip), ("halt", halt), ("after", after)])
    assert summary.status == "skipped"
    assert [(r.step_name, r.status) for r in _rows(app, ctx.execution_id)] == [("skip", "skipped"),
                                                                               ("halt", "skipped")]


def test_large_output_spills_to_an_artifact(app):
    big = {"values": list(range(SPILL_BYTES))}

    def large(ctx):
        return StepOutcome(output=big)

    ctx, _ = _run(app, [("large", large)])
    row = _rows(app, ctx.execution_id)[0]
    assert set(row.output) == {"$artifact", "bytes"}
    payload, ctype = app.artifacts.load(row.output["$artifact"])
    assert ctype == "application/json" and json.loads(payload) == big


def test_nan_and_numpy_values_are_stored_as_json(app):
    import numpy as np

    def numeric(ctx):
        return StepOutcome(output={"nan": float("nan"), "np": np.float64(1.5), "i": np.int64(3)})

    ctx, _ = _run(app, [("numeric", numeric)])
    assert _rows(app, ctx.execution_id)[0].output == {"nan": None, "np": 1.5, "i": 3}
