"""Schedule slots that did not become a run: skipped (missed while the service was down, past the grace
window, the strategy still running, a newer slot first) or failed (lost with their worker, never started).
The command line's ``runs`` and the web executions page list them beside the executions, so a slot that
never ran is seen, not only the executions that did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tradetrail.db.models import ScheduleSlot, Strategy
from tradetrail.services.strategies.configs import get_strategy

LOST = ("skipped", "failed")
MAX_SLOTS = 100


def lost_slots(app, user_id: int, *, strategy: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The user's skipped and failed slots, latest due time first (at most 100), optionally of one strategy
    (``NotFound`` if the user has none of that name)."""
    with app.Session() as s:
        q = (select(ScheduleSlot, Strategy.name).join(Strategy, Strategy.id == ScheduleSlot.strategy_id)
             .where(Strategy.user_id == user_id, ScheduleSlot.status.in_(LOST)))
        if strategy is not None:
            q = q.where(ScheduleSlot.strategy_id == get_strategy(s, user_id, strategy).id)
        rows = s.execute(q.order_by(ScheduleSlot.scheduled_for.desc(), ScheduleSlot.id.desc())
                         .limit(max(1, min(limit, MAX_SLOTS)))).all()
        return [{"id": slot.id, "strategy": name, "scheduled_for": slot.scheduled_for.isoformat(),
                 "status": slot.status, "reason": slot.reason, "execution_id": slot.execution_id,
                 "claimed_by": slot.claimed_by} for slot, name in rows]
