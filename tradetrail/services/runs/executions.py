"""Running strategies and reading their lineage: the one entry point the CLI, API and workers call."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from tradetrail.app_context import App
from tradetrail.db.models import Execution, LineageStep, Strategy, StrategyVersion
from tradetrail.db.types import utcnow
from tradetrail.domain.errors import NotFound
from tradetrail.notify import outbox
from tradetrail.services.errors import AlreadyRunning
from tradetrail.services.strategies.configs import get_strategy
from tradetrail.trading.locks import strategy_lock
from tradetrail.workflow.context import RunContext
from tradetrail.workflow.executor import RunSummary, Step, execute
from tradetrail.workflow.jsonable import to_jsonable
from tradetrail.workflow.pipeline import STEPS
from tradetrail.workflow.recorder import LineageRecorder

log = logging.getLogger(__name__)


_E, _V = Execution.__table__, StrategyVersion.__table__
# Built once: every run starts with them (the ORM's unit of work cost more than the statements).
_CURRENT_VERSION = select(_V.c.id).where(_V.c.strategy_id == bindparam("strategy"),
                                         _V.c.version == bindparam("version"))
_INSERT_EXECUTION = insert(_E)


def create_execution(app: App, strategy: Strategy, *, trigger: str = "manual") -> RunContext:
    """Persist a new running execution pinned to the strategy's current version."""
    with app.engine.begin() as conn:
        version_id = conn.execute(_CURRENT_VERSION, {"strategy": strategy.id,
                                                     "version": strategy.current_version}).scalar_one()
        now, execution_id = utcnow(), str(uuid.uuid4())
        conn.execute(_INSERT_EXECUTION, dict(id=execution_id, user_id=strategy.user_id, strategy_id=strategy.id,
                                             strategy_version_id=version_id, status="running", trigger=trigger,
                                             as_of=now, started_at=now))
    return RunContext(app=app, execution_id=execution_id, user_id=strategy.user_id, strategy_id=strategy.id,
                      strategy_version_id=version_id, as_of=now, trigger=trigger)


class _ReportingRecorder(LineageRecorder):
    """Records as usual, then hands each recorded step to ``on_step`` (a face showing steps as they end)."""

    def __init__(self, engine, artifacts, on_step: Callable[[dict[str, Any]], None]):
        super().__init__(engine, artifacts)
        self.on_step = on_step

    def record_step(self, **step) -> None:
        super().record_step(**step)
        try:  # a display that fails must not fail the run (the executor would take it for lost lineage)
            self.on_step({"number": step["number"], "name": step["name"], "status": step["status"],
                          "duration_ms": step["duration_ms"], "output": to_jsonable(step["output"]),
                          "error": step["error"]})
        except Exception:  # noqa: BLE001
            log.warning("showing step %s of execution %s failed", step["name"], step["execution_id"],
                        exc_info=True)


def run_strategy(app: App, user_id: int, name: str, *, trigger: str = "manual",
                 on_step: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """One execution of the named strategy, now, in this process; never two of one strategy at once.
    ``on_step`` is called with each step (number, name, status, duration_ms, output, error) once recorded."""
    with app.Session() as s:
        strategy = get_strategy(s, user_id, name)
    return run_strategy_row(app, strategy, trigger=trigger, on_step=on_step)


def run_strategy_row(app: App, strategy: Strategy, *, trigger: str = "manual",
                     on_start: Callable[[str], None] | None = None,
                     on_step: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    with strategy_lock(app, strategy.id) as held:
        if not held:
            raise AlreadyRunning(f"strategy {strategy.name!r} is already running")
        return execute_locked(app, strategy, trigger=trigger, on_start=on_start, on_step=on_step)


def execute_locked(app: App, strategy: Strategy, *, trigger: str,
                   on_start: Callable[[str], None] | None = None,
                   steps: Sequence[tuple[str, Step]] | None = None,
                   on_step: Callable[[dict[str, Any]], None] | None = None) -> RunSummary:
    """Run the strategy (``steps``: the pipeline, possibly wrapped by the caller); the caller holds its
    strategy lock."""
    mark_interrupted(app, strategy.id)
    ctx = create_execution(app, strategy, trigger=trigger)
    if on_start is not None:
        on_start(ctx.execution_id)
    recorder = LineageRecorder(app.engine, app.artifacts) if on_step is None else \
        _ReportingRecorder(app.engine, app.artifacts, on_step)
    return execute(ctx, STEPS if steps is None else steps, recorder)


# Replays, backtests and their sessions' re-runs hold no lock; built once: every run asks
_RUNNING = select(_E.c.id).where(_E.c.strategy_id == bindparam("strategy"), _E.c.status == "running",
                                 _E.c.trigger.notin_(("replay", "backtest", "backtest-session")))
_INTERRUPTED = update(_E).where(_E.c.id == bindparam("execution")).values(
    status="failed", finished_at=bindparam("now"), error=bindparam("error"))
INTERRUPTED = "interrupted: the process running it ended before it finished"


def mark_interrupted(app: App, strategy_id: int) -> int:
    """Executions of the strategy still marked running while we hold its lock: their process ended. A read
    only, when there are none (every run asks)."""
    with app.engine.connect() as conn:
        ids = conn.execute(_RUNNING, {"strategy": strategy_id}).scalars().all()
        if not ids:
            return 0
        now = utcnow()
        for execution_id in ids:
            conn.execute(_INTERRUPTED, {"execution": execution_id, "now": now, "error": INTERRUPTED})
            outbox.execution_failed(conn, execution_id, None, INTERRUPTED)  # committed with the failure
        conn.commit()
        return len(ids)


def step_dict(row) -> dict[str, Any]:
    """A lineage step (ORM object or Core row with the table's column names) for the faces."""
    return {"number": row.step_number, "name": row.step_name, "status": row.status,
            "started_at": row.started_at.isoformat(), "duration_ms": row.duration_ms, "input": row.input,
            "output": row.output, "metadata": row.metadata if not isinstance(row, LineageStep) else row.meta,
            "artifacts": row.artifacts, "error": row.error, "traceback": row.traceback}


_STEPS = LineageStep.__table__
_EXECUTION_QUERY = (select(Execution.__table__, Strategy.name.label("strategy_name"))
                    .outerjoin(Strategy, Strategy.id == Execution.strategy_id)
                    .where(Execution.id == bindparam("id")))
_STEPS_QUERY = select(_STEPS).where(_STEPS.c.execution_id == bindparam("id")).order_by(_STEPS.c.step_number)


def get_execution(app: App, execution_id: str, *, user_id: int | None = None) -> dict[str, Any]:
    """An execution with all its steps in order; NotFound if absent (or another user's).

    Two Core queries, no ORM: the API serves this on every lineage view."""
    with app.engine.connect() as conn:
        execution = conn.execute(_EXECUTION_QUERY, {"id": execution_id}).first()
        if execution is None or (user_id is not None and execution.user_id != user_id):
            raise NotFound(f"no execution {execution_id!r}")
        steps = conn.execute(_STEPS_QUERY, {"id": execution_id}).all()
    return {
        "id": execution.id, "strategy": execution.strategy_name,
        "strategy_id": execution.strategy_id, "strategy_version_id": execution.strategy_version_id,
        "status": execution.status, "trigger": execution.trigger, "as_of": execution.as_of.isoformat(),
        "started_at": execution.started_at.isoformat(),
        "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
        "duration_ms": execution.duration_ms, "failed_step": execution.failed_step, "error": execution.error,
        "has_errors": any(st.status == "failed" for st in steps),
        "steps": [step_dict(st) for st in steps],
    }


def replay_execution(app: App, user_id: int, execution_id: str) -> dict[str, Any]:
    """Replay one of the user's executions from its artifacts (see ``workflow/rerun.py``); the replay is an
    execution of its own (trigger ``replay``) and is returned whole, ending in ``compare_with_original``."""
    from tradetrail.workflow.rerun import REPLAY_STEPS

    with app.Session() as s:
        original = s.get(Execution, execution_id)
        if original is None or original.user_id != user_id:
            raise NotFound(f"no execution {execution_id!r}")
        now = utcnow()
        replay = Execution(id=str(uuid.uuid4()), user_id=user_id, strategy_id=original.strategy_id,
                           strategy_version_id=original.strategy_version_id, status="running", trigger="replay",
                           as_of=original.as_of, started_at=now)
        s.add(replay)
        s.commit()
        ctx = RunContext(app=app, execution_id=replay.id, user_id=user_id, strategy_id=original.strategy_id,
                         strategy_version_id=original.strategy_version_id, as_of=original.as_of, trigger="replay",
                         replay_of=original.id)
    execute(ctx, REPLAY_STEPS, LineageRecorder(app.engine, app.artifacts))
    return get_execution(app, ctx.execution_id, user_id=user_id)
