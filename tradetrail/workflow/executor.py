"""The executor: runs the ordered step list for one execution, recording every step it runs.

A step is a plain function ``step(ctx) -> StepOutcome``. It succeeds by returning, is skipped by returning
``status="skipped"`` (with ``halt=True`` the run ends there as skipped), and fails by raising. A failure
ends the run: the failing step is recorded with its error and traceback, nothing after it runs, and the
execution is marked failed with that step's name. There is no fallback path.
"""

from __future__ import annotations

import logging
import time
import traceback as tb
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tradetrail.db.types import utcnow
from tradetrail.workflow.context import RunContext, StepError, StepOutcome
from tradetrail.workflow.recorder import LineageRecorder

log = logging.getLogger(__name__)

Step = Callable[[RunContext], StepOutcome]


@dataclass(frozen=True)
class RunSummary:
    execution_id: str
    status: str
    failed_step: str | None
    error: str | None
    duration_ms: float


def execute(ctx: RunContext, steps: Sequence[tuple[str, Step]], recorder: LineageRecorder) -> RunSummary:
    """Run ``steps`` in order for ``ctx``; record each; finish the execution row."""
    t_run = ctx.started_perf = time.perf_counter()
    status, failed_step, error = "succeeded", None, None
    for number, (name, step) in enumerate(steps, start=1):
        ctx.step_input, ctx.step_meta, ctx.step_artifacts = {}, {}, {}
        started_at = utcnow()
        t0 = time.perf_counter()
        trace = None
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
        recorder.record_step(execution_id=ctx.execution_id, number=number, name=name, status=step_status,
                             input=ctx.step_input, output=output, meta=ctx.step_meta,
                             artifacts=ctx.step_artifacts, error=step_error, traceback=trace,
                             started_at=started_at, duration_ms=duration_ms)
        if step_status == "failed":
            status, failed_step, error = "failed", name, step_error
            log.warning("execution %s failed at %s: %s", ctx.execution_id, name, step_error)
            break
        if outcome is not None and outcome.halt:
            status = "skipped"
            break
    total_ms = (time.perf_counter() - t_run) * 1000
    recorder.finish_execution(ctx.execution_id, status=status, finished_at=utcnow(), duration_ms=total_ms,
                              failed_step=failed_step, error=error)
    return RunSummary(ctx.execution_id, status, failed_step, error, total_ms)
