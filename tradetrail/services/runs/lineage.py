"""Reading the lineage: recent executions, one step, per-step statistics. Every query is scoped to a user."""

from __future__ import annotations

from collections import Counter
from statistics import median
from typing import Any

from sqlalchemy import select

from tradetrail.db.models import Execution, LineageStep, ScheduleSlot, Strategy
from tradetrail.domain.errors import NotFound
from tradetrail.services.runs.executions import step_dict
from tradetrail.services.strategies.configs import get_strategy

MAX_RECENT = 100


def execution_row(e: Execution, strategy: str | None, scheduled_for=None) -> dict[str, Any]:
    return {"id": e.id, "strategy": strategy, "strategy_id": e.strategy_id, "status": e.status,
            "trigger": e.trigger, "as_of": e.as_of.isoformat(), "started_at": e.started_at.isoformat(),
            "finished_at": e.finished_at.isoformat() if e.finished_at else None, "duration_ms": e.duration_ms,
            "failed_step": e.failed_step, "error": e.error,
            "scheduled_for": scheduled_for.isoformat() if scheduled_for else None}


def recent(app, user_id: int, *, strategy: str | None = None, status: str | None = None,
           limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    """Executions newest first (at most 100 per page), optionally of one strategy or one status."""
    with app.Session() as s:
        rows, slots = executions_page(s, user_id, strategy=strategy, status=status,
                                      limit=max(1, min(limit, MAX_RECENT)), offset=offset)
        return [execution_row(e, name, slots.get(e.id)) for e, name in rows]


def executions_page(s, user_id: int, *, strategy: str | None, status: str | None, limit: int, offset: int,
                    where: tuple = ()) -> tuple[list, dict]:
    """One page of the user's executions newest first, as (execution, strategy name) rows, and the slot each
    scheduled one ran for; ``where`` adds conditions on ``Execution``."""
    q = (select(Execution, Strategy.name).join(Strategy, Strategy.id == Execution.strategy_id)
         .where(Execution.user_id == user_id, *where))
    if strategy is not None:
        q = q.where(Execution.strategy_id == get_strategy(s, user_id, strategy).id)
    if status is not None:
        q = q.where(Execution.status == status)
    rows = s.execute(q.order_by(Execution.started_at.desc(), Execution.id).limit(limit)
                     .offset(max(0, offset))).all()
    ids = [e.id for e, _ in rows]
    slots = dict(s.execute(select(ScheduleSlot.execution_id, ScheduleSlot.scheduled_for)
                           .where(ScheduleSlot.execution_id.in_(ids))).all()) if ids else {}
    return rows, slots


def step(app, user_id: int, execution_id: str, number: int) -> dict[str, Any]:
    with app.Session() as s:
        owner = s.scalar(select(Execution.user_id).where(Execution.id == execution_id))
        if owner is None or owner != user_id:
            raise NotFound(f"no execution {execution_id!r}")
        row = s.scalar(select(LineageStep).where(LineageStep.execution_id == execution_id,
                                                 LineageStep.step_number == number))
        if row is None:
            raise NotFound(f"execution {execution_id!r} has no step {number}")
        return {"execution_id": execution_id, **step_dict(row)}


def step_stats(app, user_id: int, *, strategy: str | None = None, last: int = 1000) -> dict[str, Any]:
    """Per step over the user's ``last`` executions: counts by status, success rate, durations, common errors."""
    last = max(1, min(last, 10_000))
    with app.Session() as s:
        eq = select(Execution.id).where(Execution.user_id == user_id)
        if strategy is not None:
            eq = eq.where(Execution.strategy_id == get_strategy(s, user_id, strategy).id)
        ids = s.scalars(eq.order_by(Execution.started_at.desc()).limit(last)).all()
        rows = s.execute(select(LineageStep.step_number, LineageStep.step_name, LineageStep.status,
                                LineageStep.duration_ms, LineageStep.error)
                         .where(LineageStep.execution_id.in_(ids))).all() if ids else []
    by_step: dict[str, dict] = {}
    for number, name, status, duration, error in rows:
        entry = by_step.setdefault(name, {"step": name, "number": number, "count": 0, "succeeded": 0,
                                          "failed": 0, "skipped": 0, "_durations": [], "_errors": Counter()})
        entry["count"] += 1
        entry[status] = entry.get(status, 0) + 1
        entry["_durations"].append(duration)
        if error:
            entry["_errors"][_error_kind(error)] += 1
    steps = []
    for entry in sorted(by_step.values(), key=lambda e: e["number"]):
        durations = sorted(entry.pop("_durations"))
        errors = entry.pop("_errors")
        ran = entry["succeeded"] + entry["failed"]
        entry.update(success_rate=round(entry["succeeded"] / ran, 4) if ran else None,
                     duration_ms={"mean": round(sum(durations) / len(durations), 3),
                                  "median": round(median(durations), 3),
                                  "p95": round(durations[min(len(durations) - 1, int(0.95 * len(durations)))], 3),
                                  "max": round(durations[-1], 3)},
                     common_errors=[{"error": k, "count": v} for k, v in errors.most_common(5)])
        steps.append(entry)
    return {"executions": len(ids), "strategy": strategy, "steps": steps}


def _error_kind(error: str) -> str:
    """The first line, cut short: similar failures group together."""
    first = error.strip().splitlines()[0] if error.strip() else error
    return first[:200]

