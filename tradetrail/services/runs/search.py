"""Finding executions: by strategy, status, trigger and date, each with the signal it came to, and the
replays of one execution with whether they reproduced it. Every query is scoped to a user."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from tradetrail.db.models import Execution, LineageStep
from tradetrail.domain.errors import NotFound
from tradetrail.services.runs.lineage import execution_row, executions_page

MAX_PAGE = 100
TRIGGERS = ("manual", "api", "schedule", "replay")
STATUSES = ("running", "succeeded", "failed", "skipped")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def search(app, user_id: int, *, strategy: str | None = None, status: str | None = None,
           trigger: str | None = None, started_from: date | None = None, started_to: date | None = None,
           limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Executions newest first; dates are whole UTC days of ``started_at``, both ends included. Each row has
    ``signal``: the action and reason ``decide_signal`` recorded (None when the run did not get there)."""
    where = []
    if trigger is not None:
        where.append(Execution.trigger == trigger)
    if started_from is not None:
        where.append(Execution.started_at >= _day_start(started_from))
    if started_to is not None:
        where.append(Execution.started_at < _day_start(started_to) + timedelta(days=1))
    with app.Session() as s:
        rows, slots = executions_page(s, user_id, strategy=strategy, status=status,
                                      limit=max(1, min(limit, MAX_PAGE + 1)), offset=offset, where=tuple(where))
        ids = [e.id for e, _ in rows]
        found = _signals(s, ids)
    return [{**execution_row(e, name, slots.get(e.id)), "signal": found.get(e.id)} for e, name in rows]


def _signals(s, ids: list[str]) -> dict[str, dict]:
    if not ids:
        return {}
    rows = s.execute(select(LineageStep.execution_id, LineageStep.output)
                     .where(LineageStep.execution_id.in_(ids), LineageStep.step_name == "decide_signal",
                            LineageStep.status == "succeeded")).all()
    return {eid: {"action": (out or {}).get("action"), "reason": (out or {}).get("reason")} for eid, out in rows}


def replays_of(app, user_id: int, execution_id: str) -> list[dict[str, Any]]:
    """The replays of one of the user's executions, oldest first, each with ``matches`` (None while running
    or when the replay failed before comparing) and the differences it found."""
    with app.Session() as s:
        original = s.get(Execution, execution_id)
        if original is None or original.user_id != user_id:
            raise NotFound(f"no execution {execution_id!r}")
        # a replay runs at its original's as-of time: only those are candidates, then their first step says
        candidates = s.scalars(select(Execution).where(Execution.user_id == user_id,
                                                       Execution.strategy_id == original.strategy_id,
                                                       Execution.trigger == "replay",
                                                       Execution.as_of == original.as_of)
                               .order_by(Execution.started_at, Execution.id)).all()
        ids = [e.id for e in candidates]
        steps = s.execute(select(LineageStep.execution_id, LineageStep.step_name, LineageStep.input,
                                 LineageStep.output)
                          .where(LineageStep.execution_id.in_(ids),
                                 LineageStep.step_name.in_(("load_original", "compare_with_original")))
                          ).all() if ids else []
    of, comparison = {}, {}
    for eid, name, inp, out in steps:
        if name == "load_original":
            of[eid] = (inp or {}).get("replay_of")
        else:
            comparison[eid] = out or {}
    return [{"id": e.id, "status": e.status, "started_at": e.started_at.isoformat(),
             "matches": comparison.get(e.id, {}).get("matches"),
             "differences": comparison.get(e.id, {}).get("differences", [])}
            for e in candidates if of.get(e.id) == execution_id]
