"""Running strategies and reading their lineage: the one entry point the CLI, API and workers call."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from tradetrail.db.models import Execution, LineageStep, Strategy
from tradetrail.db.types import utcnow
from tradetrail.services.app import App
from tradetrail.services.locks import strategy_lock
from tradetrail.services.strategies import NotFound, current_version, get_strategy
from tradetrail.workflow.context import RunContext
from tradetrail.workflow.executor import RunSummary, execute
from tradetrail.workflow.pipeline import STEPS
from tradetrail.workflow.recorder import LineageRecorder


def create_execution(app: App, strategy: Strategy, *, trigger: str = "manual") -> RunContext:
    """Persist a new running execution pinned to the strategy's current version."""
    with app.Session() as s:
        version = current_version(s, strategy)
        now = utcnow()
        execution = Execution(id=str(uuid.uuid4()), user_id=strategy.user_id, strategy_id=strategy.id,
                              strategy_version_id=version.id, status="running", trigger=trigger, as_of=now,
                              started_at=now)
        s.add(execution)
        s.commit()
        return RunContext(app=app, execution_id=execution.id, user_id=strategy.user_id, strategy_id=strategy.id,
                          strategy_version_id=version.id, as_of=now, trigger=trigger)


class AlreadyRunning(RuntimeError):
    """Another execution of the same strategy is running (in this process or another)."""


def run_strategy(app: App, user_id: int, name: str, *, trigger: str = "manual") -> RunSummary:
    """One execution of the named strategy, now, in this process; never two of one strategy at once."""
    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
    return run_strategy_row(app, strategy, trigger=trigger)


def run_strategy_row(app: App, strategy: Strategy, *, trigger: str = "manual",
                     on_start: Callable[[str], None] | None = None) -> RunSummary:
    with strategy_lock(app, strategy.id) as held:
        if not held:
            raise AlreadyRunning(f"strategy {strategy.name!r} is already running")
        return execute_locked(app, strategy, trigger=trigger, on_start=on_start)


def execute_locked(app: App, strategy: Strategy, *, trigger: str,
                   on_start: Callable[[str], None] | None = None) -> RunSummary:
    """Run the strategy; the caller holds its strategy lock."""
    mark_interrupted(app, strategy.id)
    ctx = create_execution(app, strategy, trigger=trigger)
    if on_start is not None:
        on_start(ctx.execution_id)
    return execute(ctx, STEPS, LineageRecorder(app.engine, app.artifacts))


def mark_interrupted(app: App, strategy_id: int) -> int:
    """Executions of the strategy still marked running while we hold its lock: their process ended."""
    with app.Session() as s:
        rows = s.scalars(select(Execution).where(Execution.strategy_id == strategy_id,
                                                 Execution.status == "running")).all()
        for row in rows:
            row.status, row.finished_at = "failed", utcnow()
            row.error = "interrupted: the process running it ended before it finished"
        s.commit()
        return len(rows)


def step_dict(row: LineageStep) -> dict[str, Any]:
    return {"number": row.step_number, "name": row.step_name, "status": row.status,
            "started_at": row.started_at.isoformat(), "duration_ms": row.duration_ms, "input": row.input,
            "output": row.output, "metadata": row.meta, "artifacts": row.artifacts, "error": row.error,
            "traceback": row.traceback}


def get_execution(app: App, execution_id: str, *, user_id: int | None = None) -> dict[str, Any]:
    """An execution with all its steps in order; NotFound if absent (or another user's)."""
    with app.Session() as s:
        execution = s.get(Execution, execution_id)
        if execution is None or (user_id is not None and execution.user_id != user_id):
            raise NotFound(f"no execution {execution_id!r}")
        strategy = s.get(Strategy, execution.strategy_id)
        steps = s.scalars(select(LineageStep).where(LineageStep.execution_id == execution_id)
                          .order_by(LineageStep.step_number)).all()
        return {
            "id": execution.id, "strategy": strategy.name if strategy else None,
            "strategy_id": execution.strategy_id, "strategy_version_id": execution.strategy_version_id,
            "status": execution.status, "trigger": execution.trigger, "as_of": execution.as_of.isoformat(),
            "started_at": execution.started_at.isoformat(),
            "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
            "duration_ms": execution.duration_ms, "failed_step": execution.failed_step, "error": execution.error,
            "has_errors": any(st.status == "failed" for st in steps),
            "steps": [step_dict(st) for st in steps],
        }
