"""The executor: runs the ordered step list for one execution, recording every step it runs.

A step is a plain function ``step(ctx) -> StepOutcome``. It succeeds by returning, is skipped by returning
``status="skipped"`` (with ``halt=True`` the run ends there as skipped), and fails by raising. A failure
ends the run: the failing step is recorded with its error and traceback, nothing after it runs, and the
execution is marked failed with that step's name. There is no fallback path.

If the lineage itself cannot be written (the database is locked or gone, the artifact store refuses a large
payload), the run stops there too: the execution is recorded failed with that reason when the database
still takes it, and :class:`ExecutionNotRecorded` is raised when it does not, so no caller mistakes an
unrecorded run for a recorded one.

Each step's duration goes to the step histogram and each finished execution to the executions counter
(``observability/metrics.py``: memory or a mapped file, no SQL); the execution id and the running step are
set in context variables, so every log line written meanwhile carries them (``TRADETRAIL_LOG_FORMAT=json``).
"""

from __future__ import annotations

import logging
import time
import traceback as tb
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tradetrail.db.failure_text import one_line
from tradetrail.db.types import utcnow
from tradetrail.observability.logs import EXECUTION_ID, STEP
from tradetrail.observability.metrics import execution_finished, observe_step
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.recorder import LineageRecorder

log = logging.getLogger(__name__)

Step = Callable[[RunContext], StepOutcome]


class ExecutionNotRecorded(RuntimeError):
    """The run stopped because its lineage could not be written, and neither could its failure: the row
    stays ``running`` until the next run of the strategy or the sweep marks it interrupted."""

    def __init__(self, execution_id: str, reason: str):
        super().__init__(f"{reason} (execution {execution_id} could not be recorded as failed either)")
        self.execution_id, self.reason = execution_id, reason


@dataclass(frozen=True)
class RunSummary:
    execution_id: str
    status: str
    failed_step: str | None
    error: str | None
    duration_ms: float


class _RecordFailed(Exception):
    def __init__(self, step: str | None, cause: Exception):
        super().__init__(str(cause))
        self.step, self.cause = step, cause


def execute(ctx: RunContext, steps: Sequence[tuple[str, Step]], recorder: LineageRecorder) -> RunSummary:
    """Run ``steps`` in order for ``ctx``; record each; finish the execution row."""
    t_run = ctx.started_perf = time.perf_counter()
    token = EXECUTION_ID.set(ctx.execution_id)
    try:
        try:
            summary = _run(ctx, steps, recorder, t_run)
        except _RecordFailed as lost:
            summary = _lineage_lost(ctx, recorder, lost, t_run)
    except ExecutionNotRecorded:
        execution_finished("failed", (time.perf_counter() - t_run))
        raise
    finally:
        EXECUTION_ID.reset(token)
    execution_finished(summary.status, summary.duration_ms / 1000)
    return summary


def _run(ctx: RunContext, steps: Sequence[tuple[str, Step]], recorder: LineageRecorder, t_run: float) -> RunSummary:
    status, failed_step, error = "succeeded", None, None
    for number, (name, step) in enumerate(steps, start=1):
        ctx.step_input, ctx.step_meta, ctx.step_artifacts = {}, {}, {}
        started_at = utcnow()
        t0 = time.perf_counter()
        trace = None
        step_token = STEP.set(name)
        try:
            outcome = step(ctx)
            step_status, output, step_error = outcome.status, outcome.output, None
        except StepError as exc:
            outcome = None
            step_status, output, step_error = "failed", exc.output, str(exc)
            ctx.step_meta.update(exc.meta)
            trace = tb.format_exc()
        except Exception as exc:  # noqa: BLE001 - any failure ends the run, recorded with its traceback
            outcome = None
            step_status, output, step_error = "failed", {}, f"{type(exc).__name__}: {exc}"
            trace = tb.format_exc()
        duration_ms = (time.perf_counter() - t0) * 1000
        observe_step(name, duration_ms / 1000)
        try:
            recorder.record_step(execution_id=ctx.execution_id, number=number, name=name, status=step_status,
                                 input=ctx.step_input, output=output, meta=ctx.step_meta,
                                 artifacts=ctx.step_artifacts, error=step_error, traceback=trace,
                                 started_at=started_at, duration_ms=duration_ms)
        except Exception as exc:  # noqa: BLE001 - the run cannot go on unrecorded
            raise _RecordFailed(name, exc) from exc
        finally:
            STEP.reset(step_token)
        if step_status == "failed":
            status, failed_step, error = "failed", name, step_error
            log.warning("execution %s failed at %s: %s", ctx.execution_id, name, step_error)
            break
        if outcome is not None and outcome.halt:
            status = "skipped"
            break
    total_ms = (time.perf_counter() - t_run) * 1000
    try:
        recorder.finish_execution(ctx.execution_id, status=status, finished_at=utcnow(), duration_ms=total_ms,
                                  failed_step=failed_step, error=error)
    except Exception as exc:  # noqa: BLE001
        raise _RecordFailed(None, exc) from exc
    return RunSummary(ctx.execution_id, status, failed_step, error, total_ms)


def _lineage_lost(ctx: RunContext, recorder: LineageRecorder, lost: _RecordFailed, t_run: float) -> RunSummary:
    """Record the execution failed because its lineage could not be written; raise if even that fails."""
    where = f" of step {lost.step!r}" if lost.step else ""
    reason = f"lineage{where} could not be recorded: {one_line(lost.cause)}"
    total_ms = (time.perf_counter() - t_run) * 1000
    log.error("execution %s: %s", ctx.execution_id, reason)
    try:
        recorder.finish_execution(ctx.execution_id, status="failed", finished_at=utcnow(), duration_ms=total_ms,
                                  failed_step=lost.step, error=reason)
    except Exception:  # noqa: BLE001 - told to the caller: the row could not be settled
        raise ExecutionNotRecorded(ctx.execution_id, reason) from lost.cause
    return RunSummary(ctx.execution_id, "failed", lost.step, reason, total_ms)
